"""Export / reload / apply: the reloaded mask reproduces the evaluation exactly, and the applied
(ordinary) model equals the parametrized one; training resumes exactly."""

from __future__ import annotations

import json

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from safetensors.torch import load_file

from plmstruct.backbone import load_backbone, tiny_esm
from plmstruct.errors import InputError
from plmstruct.evaluation.perplexity import PerplexityConfig, evaluate_perplexity
from plmstruct.subnetworks.artifact import (
    MASK_FILE,
    apply_mask,
    attach_artifact,
    load_artifact,
    save_artifact,
)
from plmstruct.subnetworks.config import MaskConfig, TargetConfig
from plmstruct.subnetworks.mask import MaskSet
from plmstruct.subnetworks.sweep import make_config
from plmstruct.subnetworks.targets import load_targets
from plmstruct.subnetworks.train import train_subnetwork


def _scramble(masks: MaskSet, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for s in masks.scores():
            s.copy_(torch.randn(s.shape, generator=g) * 2 + 1.5)


@pytest.fixture(scope="module")
def helix_eval(data_dir):
    from plmstruct.backbone.model import ESM_RESIDUE_LETTERS

    return load_targets(TargetConfig(kind="helix", limit_train=1, limit_eval=12), ESM_RESIDUE_LETTERS,
                        data_dir=data_dir).eval


def test_round_trip_reproduces_evaluation_on_default_model(tmp_path, helix_eval):
    cfg = PerplexityConfig(draws=1, passes=2, max_len=128)
    bb = load_backbone("default")
    masks = MaskSet(bb, MaskConfig(modules=("query", "value", "intermediate")))
    _scramble(masks)
    before = {m: evaluate_perplexity(bb, helix_eval, cfg, masks, m) for m in ("deterministic", "stochastic")}
    save_artifact(tmp_path / "a", masks, {"name": "x", "backbone": "default"})
    assert (tmp_path / "a" / MASK_FILE).stat().st_size < sum(b.numel() for b in masks.binary().values()) / 8 + 4096
    art = load_artifact(tmp_path / "a")
    assert art.binary.keys() == masks.binary().keys()
    assert all(torch.equal(art.binary[k], v) for k, v in masks.binary().items())
    assert art.removed_fraction() == pytest.approx(masks.removed_fraction()) and 0.1 < art.removed_fraction() < 0.5
    fresh = load_backbone("default")
    again = attach_artifact(art, fresh)
    after = {m: evaluate_perplexity(fresh, helix_eval, cfg, again, m) for m in ("deterministic", "stochastic")}
    assert after == before  # exactly, including the stochastic average
    assert before["deterministic"]["target"] != evaluate_perplexity(fresh, helix_eval, cfg, again, "off")["target"]


def test_apply_equals_parametrized_model(tmp_path):
    bb = tiny_esm(seed=1)
    masks = MaskSet(bb, MaskConfig())
    _scramble(masks, 1)
    save_artifact(tmp_path / "m", masks, {"name": "t", "backbone": "tiny-esm"})
    ids = bb.encode(["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLE"])
    with torch.no_grad(), masks.mode("deterministic"):
        want = bb.model(**ids).logits
    plain = apply_mask(load_artifact(tmp_path / "m"), tiny_esm(seed=1))
    assert not any(p.__class__.__name__ == "ParametrizationList" for p in plain.model.modules())
    with torch.no_grad():
        got = plain.model(**ids).logits
    assert torch.equal(got, want)
    with torch.no_grad():
        assert not torch.equal(tiny_esm(seed=1).model(**ids).logits, want)


def test_mask_of_another_backbone_is_refused(tmp_path, antiberty):
    bb = tiny_esm(seed=0)
    save_artifact(tmp_path / "m", MaskSet(bb, MaskConfig()), {"name": "t", "backbone": "tiny-esm"})
    art = load_artifact(tmp_path / "m")
    with pytest.raises(InputError, match="another backbone|layers"):
        apply_mask(art, antiberty)
    with pytest.raises(InputError, match="not a subnetwork artifact"):
        load_artifact(tmp_path)
    (tmp_path / "m" / MASK_FILE).write_bytes(b"garbage")
    with pytest.raises(InputError):
        load_artifact(tmp_path / "m")


class _Killed(Exception):
    pass


class _KillAfter(Callback):
    """Dies after training step ``step`` (the checkpoint of step 4 is on disk, step 5 is lost)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            raise _Killed


def test_training_changes_scores_and_resumes_exactly(tmp_path, recwarn):
    full = make_config("helix", backbone="tiny-esm", out_dir=tmp_path / "full", steps=6, batch_size=4, crop=48,
                       lr=0.5, limit_train=24, limit_eval=4, checkpoint_every=2, progress=False)
    path, metrics = train_subnetwork(full)
    assert metrics["steps"] == 6
    assert not [w for w in recwarn if "in eval mode" in str(w.message)]  # the frozen backbone is eval on purpose
    scores = load_file(str(path / "scores.safetensors"))
    assert any(not torch.allclose(v, torch.full_like(v, MaskConfig().init_score)) for v in scores.values())
    # the same run killed after step 4 (its last checkpoint) and resumed
    part = make_config("helix", backbone="tiny-esm", out_dir=tmp_path / "part", steps=6, batch_size=4, crop=48,
                       lr=0.5, limit_train=24, limit_eval=4, checkpoint_every=2, progress=False)
    with pytest.raises(_Killed):
        train_subnetwork(part, callbacks=[_KillAfter(5)])
    ckpt = torch.load(tmp_path / "part" / "checkpoints" / "last.ckpt", weights_only=True)
    assert all(k.endswith("scores") for k in ckpt["state_dict"])  # no frozen weights in checkpoints
    resumed = make_config("helix", backbone="tiny-esm", out_dir=tmp_path / "part", steps=6, batch_size=4, crop=48,
                          lr=0.5, limit_train=24, limit_eval=4, checkpoint_every=2, progress=False, resume=True)
    path2, m2 = train_subnetwork(resumed)
    assert m2["steps"] == 6
    again = load_file(str(path2 / "scores.safetensors"))
    assert all(torch.equal(scores[k], again[k]) for k in scores)
    meta = json.loads((path2 / "subnetwork.json").read_text())
    assert meta["name"] == "helix" and meta["backbone"] == "tiny-esm" and meta["run"]["target"]["kind"] == "helix"
