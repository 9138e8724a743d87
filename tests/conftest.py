"""Shared fixtures: real data paths, the real AntiBERTy backbone, tiny random ESM models."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(int(os.environ.get("PLMSTRUCT_TEST_THREADS", "2")))


@pytest.fixture(scope="session")
def data_dir():
    """Root of the real shared data (../shared/data)."""
    from plmstruct.data.paths import shared_data_dir

    return shared_data_dir()


@pytest.fixture(scope="session")
def antiberty():
    """AntiBERTy with its real pretrained weights (loaded once per session; do not train it in place)."""
    from plmstruct.backbone import load_antiberty

    return load_antiberty()


@pytest.fixture()
def tiny():
    """A fresh tiny random ESM-2 (2 layers, width 32) for shape-only tests."""
    from plmstruct.backbone import tiny_esm

    return tiny_esm(seed=0)


@pytest.fixture()
def tiny_with_contact_head():
    """A factory of tiny random ESM-2s whose contact-regression head stands in for a trained one
    (its own seeded random weights, ``contact_head=True``), as the HF ESM-2 checkpoints have."""
    import torch

    from plmstruct.backbone import tiny_esm

    def make(seed: int, **kw):
        backbone = tiny_esm(seed=seed, **kw)
        with torch.no_grad():
            backbone.model.esm.contact_head.regression.weight.normal_(generator=torch.Generator().manual_seed(seed))
        backbone.contact_head = True
        return backbone

    return make


@pytest.fixture(scope="session")
def default_backbone():
    """The embedded default model (real, pretrained by `plmstruct pretrain`)."""
    from plmstruct.backbone import load_backbone

    return load_backbone("default")


@pytest.fixture(scope="session")
def antibody_heavy() -> list[str]:
    """Real antibody heavy chains for real-weight checks."""
    return list(ANTIBODY_HEAVY)


# Antibody heavy chains (public sequences: trastuzumab / a murine VH) for real-weight checks.
ANTIBODY_HEAVY = [
    "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAVYYCSRWGGDGFYAMDYWGQGTLVTVSS",
    "QVQLQQSGAELARPGASVKMSCKASGYTFTRYTMHWVKQRPGQGLEWIGYINPSRGYTNYNQKFKDKATLTTDKSSSTAYMQLSSLTSEDSAVYYCARYYDDHYCLDYWGQGTTLTVSS",
]
