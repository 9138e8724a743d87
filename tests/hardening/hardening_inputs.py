"""Builders of bad (and awkward) user inputs for the hardening matrix, made in a temp folder from
real data: real FASTA/3-line records, real PDB/mmCIF files, real weights layouts.

Every builder takes the work folder and returns ``(path, fragments)``: the input to hand to a
command or loader, and the pieces the error message must contain (file name, record, position).
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

Built = tuple[Path, tuple[str, ...]]


def _data() -> Path:
    from plmstruct.data.paths import shared_data_dir

    return shared_data_dir()


def real_ss_records(n: int = 3):
    """The first ``n`` real records of CASP12 (3-line format: id, sequence, DSSP labels)."""
    from plmstruct.data.secondary_structure import read_three_line

    return read_three_line(_data() / "secondary_structure" / "CASP12.txt")[:n]


def _fasta(tmp: Path, name: str, records: list[tuple[str, str]], *, prefix: str = "") -> Path:
    path = tmp / name
    path.write_text(prefix + "".join(f">{rid}\n{seq}\n" for rid, seq in records))
    return path


def _real_fasta_records() -> list[tuple[str, str]]:
    return [(r.id, r.sequence) for r in real_ss_records(3)]


def fasta_with_letter(letter: str, position: int = 5) -> Callable[[Path], Built]:
    """A real FASTA whose second record has ``letter`` at 1-based ``position``."""
    def build(tmp: Path) -> Built:
        recs = _real_fasta_records()
        rid, seq = recs[1]
        recs[1] = (rid, seq[: position - 1] + letter + seq[position:])
        name = f"bad_{'lower' if letter.islower() else {'-': 'gap', '*': 'stop'}.get(letter, letter)}.fasta"
        return _fasta(tmp, name, recs), (name, rid, f"position {position}")
    return build


def fasta_empty_record(tmp: Path) -> Built:
    recs = _real_fasta_records()
    recs[1] = (recs[1][0], "")
    return _fasta(tmp, "empty_record.fasta", recs), ("empty_record.fasta", recs[1][0], "empty")


def fasta_duplicate_ids(tmp: Path) -> Built:
    recs = _real_fasta_records()
    recs[2] = (recs[0][0], recs[2][1])
    return _fasta(tmp, "duplicates.fasta", recs), ("duplicates.fasta", recs[0][0], "duplicate")


def fasta_without_header(tmp: Path) -> Built:
    path = tmp / "no_header.fasta"
    path.write_text("\n".join(seq for _, seq in _real_fasta_records()) + "\n")
    return path, ("no_header.fasta", "line 1", "header")


def fasta_binary(tmp: Path) -> Built:
    path = tmp / "binary.fasta"
    path.write_bytes(gzip.compress(b">x\nACDE\n") + bytes(range(256)))
    return path, ("binary.fasta", "binary")


def fasta_long_chain(length: int) -> Callable[[Path], Built]:
    """A valid FASTA with one real chain repeated to ``length`` residues (over a model limit)."""
    def build(tmp: Path) -> Built:
        recs = _real_fasta_records()
        seq = (recs[0][1] * (length // len(recs[0][1]) + 1))[:length]
        return _fasta(tmp, "long.fasta", [(recs[0][0], seq), recs[1]]), (recs[0][0],)
    return build


def three_line_label_mismatch(tmp: Path) -> Built:
    recs = real_ss_records(3)
    path = tmp / "mismatch.txt"
    bad = recs[1]
    path.write_text("".join(f">{r.id}\n{r.sequence}\n{r.labels[:-3] if r is bad else r.labels}\n" for r in recs))
    return path, ("mismatch.txt", bad.id, "label string has")


def three_line_bad_label(tmp: Path) -> Built:
    recs = real_ss_records(3)
    path = tmp / "badlabel.txt"
    bad = recs[2]
    path.write_text("".join(f">{r.id}\n{r.sequence}\n{('Q' + r.labels[1:]) if r is bad else r.labels}\n"
                            for r in recs))
    return path, ("badlabel.txt", bad.id, "position 1")


# ---- structures ---------------------------------------------------------------------------------
REAL_PDB = "structures_collection/ts50_pdb/1ahsA.pdb.gz"
REAL_CIF = "structures_collection/afdb_models/AF-P00520-F1-model_v3.cif.gz"


def real_pdb_text() -> str:
    return gzip.decompress((_data() / REAL_PDB).read_bytes()).decode()


def _folder_with(tmp: Path, name: str, content: str | bytes) -> Path:
    folder = tmp / f"structures_{Path(name).stem}"
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return folder / name


def pdb_truncated(tmp: Path) -> Built:
    text = real_pdb_text()
    cut = text.index("ATOM", len(text) // 2) + 40  # in the middle of a coordinate record
    return _folder_with(tmp, "truncated.pdb", text[:cut]), ("truncated.pdb", "truncated")


def pdb_binary(tmp: Path) -> Built:
    return _folder_with(tmp, "binary.pdb", bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8))), \
        ("binary.pdb", "binary")


def cif_truncated(tmp: Path) -> Built:
    text = gzip.decompress((_data() / REAL_CIF).read_bytes()).decode()
    cut = text.index("_atom_site.") + 200  # the atom_site loop header is cut off
    return _folder_with(tmp, "truncated.cif", text[:cut]), ("truncated.cif",)


def cif_binary_gz(tmp: Path) -> Built:
    raw = (_data() / REAL_CIF).read_bytes()
    return _folder_with(tmp, "broken.cif.gz", raw[: len(raw) // 3]), ("broken.cif.gz", "gzip")


def pdb_without_some_ca(tmp: Path) -> Built:
    """Real PDB with the CA atoms of residues 10-14 (file order) removed."""
    lines, seen, drop = real_pdb_text().splitlines(), [], set()
    for line in lines:
        if line.startswith("ATOM"):
            key = line[22:27]
            if key not in seen:
                seen.append(key)
    drop = set(seen[9:14])
    kept = [ln for ln in lines if not (ln.startswith("ATOM") and ln[12:16].strip() == "CA" and ln[22:27] in drop)]
    return _folder_with(tmp, "no_ca.pdb", "\n".join(kept) + "\n"), ("no_ca.pdb",)


def pdb_with_insertion_codes(tmp: Path) -> Built:
    """Real PDB whose residues 20-22 become 19A, 19B, 19C (insertion codes, as in antibodies)."""
    out, order = [], []
    for line in real_pdb_text().splitlines():
        if line.startswith(("ATOM", "HETATM", "ANISOU")):
            key = line[22:27]
            if key not in order:
                order.append(key)
            k = order.index(key)
            if 19 <= k <= 21:
                num = int(order[18][:4])
                line = f"{line[:22]}{num:4d}{'ABC'[k - 19]}{line[27:]}"
        out.append(line)
    return _folder_with(tmp, "icodes.pdb", "\n".join(out) + "\n"), ("icodes.pdb",)


def pdb_two_models(tmp: Path) -> Built:
    """Real PDB as an NMR-style file with two models (the second shifted by 5 Å in x)."""
    atoms = [ln for ln in real_pdb_text().splitlines() if ln.startswith(("ATOM", "TER"))]

    def shifted(line: str) -> str:
        if not line.startswith("ATOM"):
            return line
        return f"{line[:30]}{float(line[30:38]) + 5.0:8.3f}{line[38:]}"
    text = "\n".join(["MODEL        1", *atoms, "ENDMDL", "MODEL        2", *map(shifted, atoms), "ENDMDL", "END"])
    return _folder_with(tmp, "models.pdb", text + "\n"), ("models.pdb",)


def missing_path(name: str, *, says: str = "no such") -> Callable[[Path], Built]:
    """A path that does not exist; the message must name it (and say ``says``)."""
    def build(tmp: Path) -> Built:
        return tmp / name, (name, says)
    return build


# ---- weights --------------------------------------------------------------------------------------
def _tiny_folder(tmp: Path, name: str, *, hidden: int = 32, seed: int = 0) -> Path:
    from plmstruct.backbone import tiny_esm
    from plmstruct.backbone.loader import save_backbone

    folder = tmp / name
    save_backbone(tiny_esm(seed, hidden_size=hidden), folder)
    return folder


def hf_folder_with_nan(tmp: Path) -> Built:
    from safetensors.torch import load_file, save_file

    folder = _tiny_folder(tmp, "nan_model")
    state = load_file(str(folder / "model.safetensors"))
    key = next(k for k in state if k.endswith("intermediate.dense.weight"))
    state[key][0, 0] = float("nan")
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder, ("nan_model", "NaN", key)


def hf_folder_other_backbone(tmp: Path) -> Built:
    """config.json of one tiny ESM with the weights of a wider one."""
    folder = _tiny_folder(tmp, "mixed_model")
    other = _tiny_folder(tmp, "wider_model", hidden=64)
    shutil.copy(other / "model.safetensors", folder / "model.safetensors")
    return folder, ("mixed_model", "another backbone")


def _fair_esm_state(hidden: int = 32) -> dict[str, torch.Tensor]:
    """A fair-esm-layout state dict (names as in esm2_t*_UR50D.pt) of a tiny random ESM-2."""
    from plmstruct.backbone import tiny_esm
    from plmstruct.backbone.fair_esm import _LAYER_MAP

    sd = tiny_esm(0, hidden_size=hidden).model.state_dict()
    back = {v: k for k, v in _LAYER_MAP.items()}
    out: dict[str, torch.Tensor] = {"encoder.sentence_encoder.embed_tokens.weight":
                                    sd["esm.embeddings.word_embeddings.weight"]}
    for key, t in sd.items():
        if key.startswith("esm.encoder.layer.") and not key.endswith("inv_freq"):
            parts = key.split(".")
            layer, inner, kind = parts[3], ".".join(parts[4:-1]), parts[-1]
            out[f"encoder.sentence_encoder.layers.{layer}.{back[inner]}.{kind}"] = t
    for k in ("emb_layer_norm_after.weight", "emb_layer_norm_after.bias"):
        out[f"encoder.sentence_encoder.{k}"] = sd[f"esm.encoder.{k}"]
    for k in ("dense.weight", "dense.bias", "layer_norm.weight", "layer_norm.bias"):
        out[f"encoder.lm_head.{k}"] = sd[f"lm_head.{k}"]
    out["encoder.lm_head.bias"] = sd["lm_head.bias"]
    return out


def fair_esm_pt_with_inf(tmp: Path) -> Built:
    state = _fair_esm_state()
    key = "encoder.sentence_encoder.layers.0.fc1.weight"
    state[key][1, 2] = float("inf")
    path = tmp / "esm2_inf.pt"
    torch.save({"model": state, "cfg": {"model": {"encoder_attention_heads": 4}}}, path)
    return path, ("esm2_inf.pt", "NaN or infinite")


class Payload:
    """An arbitrary object: unpickling it must be refused (a weights-only load never runs it)."""

    def __reduce__(self):
        return (print, ("pickled code ran",))


def pt_with_pickled_object(tmp: Path) -> Built:
    path = tmp / "esm2_evil.pt"
    torch.save({"model": _fair_esm_state(), "extra": Payload()}, path)
    return path, ("esm2_evil.pt", "weights-only")


def pt_garbage(tmp: Path) -> Built:
    path = tmp / "esm2_garbage.pt"
    path.write_bytes(b"PK\x03\x04" + bytes(range(200)))
    return path, ("esm2_garbage.pt", "weights-only")


def lone_safetensors(tmp: Path) -> Built:
    folder = _tiny_folder(tmp, "lone")
    return folder / "model.safetensors", ("model.safetensors",)


def pst_export(tmp: Path, name: str = "pst_export") -> Path:
    """A real (untrained) PST export of the tiny backbone."""
    from plmstruct.backbone import tiny_esm
    from plmstruct.pst.model import PSTModel
    from plmstruct.pst.pretrain import export_pst

    folder = tmp / name
    export_pst(PSTModel(tiny_esm(0)), folder, "tiny-esm")
    return folder


def pst_export_with_nan(tmp: Path) -> Built:
    from safetensors.torch import load_file, save_file

    folder = pst_export(tmp, "pst_nan")
    weights = next(p for p in folder.glob("*.safetensors"))
    state = load_file(str(weights))
    key = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[key].view(-1)[0] = float("nan")
    save_file(state, str(weights))
    return folder, ("pst_nan", weights.name, "NaN")


def pst_export_other_backbone(tmp: Path) -> Built:
    folder = pst_export(tmp, "pst_other")
    cfg = json.loads((folder / "pst.json").read_text())
    cfg["backbone"] = "default"
    (folder / "pst.json").write_text(json.dumps(cfg))
    return folder, ("pst_other", "not the one")


# ---- embeddings / labels for `probe` -------------------------------------------------------------
def npz_with_object_array(tmp: Path) -> Built:
    path = tmp / "evil.npz"
    np.savez(path, a=np.array([{"x": 1}], dtype=object), b=np.zeros(3, dtype=np.float32))
    return path, ("evil.npz",)


def npz_garbage(tmp: Path) -> Built:
    path = tmp / "garbage.npz"
    path.write_bytes(b"PK\x03\x04" + bytes(range(100)))
    return path, ("garbage.npz",)


def npz_with_nan(tmp: Path) -> Built:
    path = tmp / "nan_emb.npz"
    arrays = {f"p{i}": np.random.default_rng(i).normal(size=8).astype(np.float32) for i in range(12)}
    arrays["p3"][2] = np.nan
    np.savez(path, **arrays)
    return path, ("nan_emb.npz", "p3")


# ---- runs -------------------------------------------------------------------------------------------
def pretrain_run_with_corrupt_checkpoint(tmp: Path) -> Built:
    """A run folder whose ``last.ckpt`` was cut short (e.g. copied off a full disk)."""
    run = tmp / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    return run, ("last.ckpt", "cannot resume")


def tiny_ss_model(tmp: Path) -> Path:
    """A saved (untrained) `plmstruct ss` model on the tiny backbone: LoRA + conv head, 3 states."""
    from plmstruct.backbone import tiny_esm
    from plmstruct.finetune.checkpoint import save_ss_model
    from plmstruct.finetune.model import SSModel

    folder = tmp / "ss_model"
    save_ss_model(SSModel(tiny_esm(0), 3), folder, backbone_spec="tiny-esm")
    return folder


def empty_folder(name: str) -> Callable[[Path], Built]:
    def build(tmp: Path) -> Built:
        (tmp / name).mkdir()
        return tmp / name, (name,)
    return build
