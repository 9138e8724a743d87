"""Loading rules for untrusted files (issue 3): no pickle, no remote code, weights-only torch.load.

A static check over every module in ``src/plmstruct`` (by syntax tree, so comments and docs do not
count), and behavioural checks: files carrying a pickled object whose unpickling would create a
marker file are refused with an :class:`InputError` — and the marker never appears. A control shows
that the same files do run their payload under a plain (unsafe) ``torch.load``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

import plmstruct
from plmstruct.errors import InputError

SRC = Path(plmstruct.__file__).resolve().parent
FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal", "joblib"}
UNPICKLING_CALLS = {"read_pickle", "load_pickle"}  # pandas.read_pickle and friends


def _modules() -> list[Path]:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 30, f"expected the package sources under {SRC}"
    return files


def _name(node: ast.AST) -> str:
    """Dotted name of a call target (``torch.load``, ``np.load``, ``load``)."""
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def violations(path: Path) -> list[str]:
    """Every breach of the loading rules in one source file, as ``file:line: what``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    torch_aliases = {"torch"}
    found: list[str] = []
    where = f"{path.relative_to(SRC.parent)}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN_MODULES:
                    found.append(f"{where}:{node.lineno}: import {alias.name}")
                if alias.name == "torch" and alias.asname:
                    torch_aliases.add(alias.asname)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in FORBIDDEN_MODULES:
            found.append(f"{where}:{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            target = _name(node.func)
            remote = _keyword(node, "trust_remote_code")
            if remote is not None and not (isinstance(remote, ast.Constant) and remote.value is False):
                found.append(f"{where}:{node.lineno}: trust_remote_code={ast.unparse(remote)}")
            if target.split(".")[0] in torch_aliases and target.endswith(".load") and target.count(".") == 1:
                weights_only = _keyword(node, "weights_only")
                if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                    found.append(f"{where}:{node.lineno}: {target}(...) without weights_only=True")
            if target.endswith("load") and target.split(".")[0] in ("np", "numpy"):
                allow = _keyword(node, "allow_pickle")
                if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                    found.append(f"{where}:{node.lineno}: {target}(allow_pickle={ast.unparse(allow)})")
            if target.split(".")[-1] in UNPICKLING_CALLS:
                found.append(f"{where}:{node.lineno}: {target}(...) unpickles")
    return found


def test_sources_follow_the_loading_rules() -> None:
    found = [v for path in _modules() for v in violations(path)]
    assert found == [], "\n".join(found)


def test_the_static_check_catches_each_breach(tmp_path: Path) -> None:
    """The checker itself finds every kind of breach (so the check above can fail)."""
    bad = tmp_path / "plmstruct_bad" / "mod.py"
    bad.parent.mkdir()
    bad.write_text("import pickle\nfrom dill import loads\nimport torch as T\nimport numpy as np\n"
                   "T.load('x')\ntorch.load('x', weights_only=False)\nnp.load('x', allow_pickle=True)\n"
                   "AutoModel.from_pretrained('x', trust_remote_code=True)\npd.read_pickle('x')\n"
                   "torch.load('ok', weights_only=True)\n")
    global SRC
    saved, SRC = SRC, tmp_path
    try:
        found = violations(bad)
    finally:
        SRC = saved
    lines = sorted(int(v.split(":")[1]) for v in found)
    assert lines == [1, 2, 5, 6, 7, 8, 9], found


# ---- behaviour: pickled payloads are refused before they run ---------------------------------------
class Payload:
    """Unpickling this creates ``marker`` (a harmless stand-in for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _fair_esm_like_state() -> dict[str, torch.Tensor]:
    from plmstruct.backbone import tiny_esm

    return {f"encoder.sentence_encoder.{k}": v for k, v in list(tiny_esm(0).model.state_dict().items())[:3]}


def test_control_the_payload_runs_under_an_unsafe_load(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"model": _fair_esm_like_state(), "x": Payload(marker)}, path)
    torch.load(path, weights_only=False)  # what the project must never do
    assert marker.exists()


@pytest.mark.parametrize("where", ["inside", "top"])
def test_pt_checkpoint_with_pickled_object_is_refused(tmp_path: Path, where: str) -> None:
    from plmstruct.backbone import load_backbone

    marker = tmp_path / "ran"
    path = tmp_path / "esm2_t6_8M_UR50D.pt"
    torch.save({"model": _fair_esm_like_state(), "x": Payload(marker)} if where == "inside" else Payload(marker), path)
    with pytest.raises(InputError, match="weights-only") as info:
        load_backbone(str(path))
    assert path.name in str(info.value)
    assert not marker.exists()


def test_training_checkpoint_with_pickled_object_is_refused_on_resume(tmp_path: Path) -> None:
    from plmstruct.training.trainer import AtomicCheckpointIO, checkpoint_step

    marker = tmp_path / "ran"
    path = tmp_path / "last.ckpt"
    torch.save({"global_step": 3, "state_dict": {}, "callbacks": Payload(marker)}, path)
    with pytest.raises(InputError, match="last.ckpt.*cannot resume"):
        checkpoint_step(path)
    with pytest.raises(Exception, match="Weights only load failed"):
        AtomicCheckpointIO().load_checkpoint(path)
    assert not marker.exists()


def test_embeddings_with_pickled_objects_are_refused(tmp_path: Path) -> None:
    from plmstruct.pst.embed import read_embeddings

    marker = tmp_path / "ran"
    path = tmp_path / "emb.npz"
    np.savez(path, p1=np.zeros(4, dtype=np.float32), p2=np.array([Payload(marker)], dtype=object))
    with pytest.raises(InputError, match="emb.npz.*Python objects"):
        read_embeddings(path)
    assert not marker.exists()


def test_safetensors_weights_cannot_carry_code(tmp_path: Path) -> None:
    """The project's own weights are safetensors: a header + raw tensors, read without unpickling."""
    from safetensors.torch import load_file

    from plmstruct.backbone import default_model_dir

    weights = default_model_dir() / "model.safetensors"
    header_len = int.from_bytes(weights.read_bytes()[:8], "little")
    header = weights.read_bytes()[8: 8 + header_len]
    assert header.startswith(b"{") and b"\x80" not in header[:2]  # JSON header, no pickle protocol byte
    state = load_file(str(weights))
    assert state and all(isinstance(v, torch.Tensor) for v in state.values())
