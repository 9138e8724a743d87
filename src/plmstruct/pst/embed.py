"""Embeddings from a PST (or, untrained / without structures, from its backbone).

Per-residue ``(L, D)`` or mean-pooled per-protein ``(D,)`` arrays, from the last layer or all
transformer layers concatenated (``D = layers * hidden``). Structure pass (with the residue
graph), optionally averaged with the sequence pass; a FASTA input runs in sequence mode. Chains
longer than the model limit are split into overlapping windows (graph cropped per window) and
stitched back residue by residue. Output: ``.npz`` (arrays keyed by id, metadata in a ``.json``
beside it) or ``.parquet`` (one row per id; metadata in the schema).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from plmstruct.backbone.device import autocast
from plmstruct.data.fasta import fit_to_length, read_fasta, window_owner
from plmstruct.errors import InputError
from plmstruct.io import atomic_write, atomic_write_text
from plmstruct.pst.data import GraphItem, encode_items, load_graph_items
from plmstruct.pst.model import PSTModel, residue_positions

LAYER_CHOICES = ("last", "all")
FASTA_SUFFIXES = (".fa", ".fasta", ".faa", ".fas")


@dataclass
class EmbedConfig:
    """What to compute: ``layers`` last/all, per-residue or pooled, structure+sequence average."""

    layers: str = "last"
    per_residue: bool = False
    average_sequence: bool = False
    batch_size: int = 8
    max_len: int | None = None  # None: the backbone limit
    overlap: int = 64


def _representation(hidden_states: Sequence[torch.Tensor], layers: str) -> torch.Tensor:
    if layers == "last":
        return hidden_states[-1]
    return torch.cat(list(hidden_states[1:]), dim=-1)


def _forward(pst: PSTModel, items: Sequence[GraphItem], layers: str, use_graph: bool) -> list[torch.Tensor]:
    enc = encode_items(pst.backbone, items)
    device = next(pst.parameters()).device
    ids, attn = enc["input_ids"].to(device), enc["attention_mask"].to(device)
    graph = enc["graph"].to(device) if use_graph and enc["graph"] is not None else None
    with torch.no_grad(), autocast(device):
        out = pst(ids, attn, graph, output_hidden_states=True)
    rep = _representation(out.hidden_states, layers).float()
    mask = residue_positions(attn)
    return [rep[row][mask[row]].cpu() for row in range(len(items))]


def embed_items(pst: PSTModel, items: Sequence[GraphItem], cfg: EmbedConfig | None = None) -> dict[str, np.ndarray]:
    """Per-residue embeddings ``{id: (L, D) float32}`` (long chains split and stitched)."""
    cfg = cfg or EmbedConfig()
    if cfg.layers not in LAYER_CHOICES:
        raise InputError(f"layers must be one of {', '.join(LAYER_CHOICES)}, not {cfg.layers!r}")
    max_len = min(cfg.max_len or pst.backbone.max_residues, pst.backbone.max_residues)
    overlap = min(cfg.overlap, max_len // 2)
    pst.eval()
    jobs: list[tuple[int, int, GraphItem]] = []  # (item index, window index, window item)
    windows_of: list[list] = []
    for i, item in enumerate(items):
        windows = fit_to_length(item.id, item.sequence, max_len, policy="split", overlap=overlap)
        windows_of.append(windows)
        jobs += [(i, w, item.crop(win.start, len(win.sequence))) for w, win in enumerate(windows)]
    jobs.sort(key=lambda job: len(job[2]))
    outputs: dict[tuple[int, int], torch.Tensor] = {}
    for s in range(0, len(jobs), cfg.batch_size):
        chunk = jobs[s: s + cfg.batch_size]
        batch = [job[2] for job in chunk]
        has_graph = all(it.edge_index is not None for it in batch)
        reps = _forward(pst, batch, cfg.layers, use_graph=has_graph)
        if has_graph and cfg.average_sequence:
            seq = _forward(pst, batch, cfg.layers, use_graph=False)
            reps = [(a + b) / 2 for a, b in zip(reps, seq, strict=True)]
        for (i, w, _), rep in zip(chunk, reps, strict=True):
            outputs[(i, w)] = rep
    result: dict[str, np.ndarray] = {}
    for i, item in enumerate(items):
        owner = window_owner(windows_of[i], len(item))
        rows = [outputs[(i, w)][off] for w, off in owner]
        result[item.id] = torch.stack(rows).numpy().astype(np.float32)
    return result


def pool(per_residue: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Mean over residues: ``{id: (D,)}``."""
    return {k: v.mean(axis=0).astype(np.float32) for k, v in per_residue.items()}


def load_inputs(source: Path, pst: PSTModel, *, radius: float | None = None) -> tuple[list[GraphItem], list[str], str]:
    """A folder/file of structures (structure mode) or a FASTA file (sequence mode).

    Returns ``(items, skipped, mode)``."""
    source = Path(source)
    name = source.name.lower().removesuffix(".gz")
    if source.is_file() and name.endswith(FASTA_SUFFIXES):
        records = read_fasta(source, alphabet=pst.backbone.alphabet)
        return [GraphItem(r.id, r.sequence, None) for r in records], [], "sequence"
    if not source.exists():
        raise InputError("no such file or directory", path=source)
    items, skipped = load_graph_items(source, radius=radius or pst.cfg.radius, alphabet=pst.backbone.alphabet)
    return items, skipped, "structure"


# ---- files ------------------------------------------------------------------------------------
def meta_path(path: Path) -> Path:
    """Sidecar metadata of a ``.npz`` embedding file."""
    return Path(path).with_suffix(".json")


def write_embeddings(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write ``.npz`` (+ ``.json`` sidecar) or ``.parquet``, atomically."""
    path = Path(path)
    if path.suffix == ".npz":
        atomic_write(path, lambda tmp: _save_npz(tmp, arrays))
        atomic_write_text(meta_path(path), json.dumps(meta, indent=1))
    elif path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        ids = list(arrays)
        seqs = meta.get("sequences", {})
        table = pa.table({
            "id": ids,
            "sequence": [seqs.get(i, "") for i in ids],
            "length": [int(arrays[i].shape[0]) if arrays[i].ndim == 2 else len(seqs.get(i, "")) for i in ids],
            "embedding": [arrays[i].tolist() for i in ids],
        })
        table = table.replace_schema_metadata({"plmstruct": json.dumps(meta)})
        atomic_write(path, lambda tmp: pq.write_table(table, str(tmp)))
    else:
        raise InputError("output must end in .npz or .parquet", path=path)


def _save_npz(tmp: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def read_embeddings(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read what :func:`write_embeddings` wrote: ``({id: array}, metadata)``."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except ValueError as err:  # object arrays need pickle: refused
            raise InputError(f"holds Python objects, not plain arrays (refused: loading them would unpickle "
                             f"code): {err}", path=path) from err
        except (OSError, zipfile.BadZipFile, EOFError) as err:
            raise InputError(f"not a readable .npz file ({type(err).__name__}: {err})", path=path) from err
        _check_arrays(arrays, path)
        meta = json.loads(meta_path(path).read_text()) if meta_path(path).exists() else {}
        return arrays, meta
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise InputError(f"not a readable .parquet file ({type(err).__name__}: {err})", path=path) from err
        raw = (table.schema.metadata or {}).get(b"plmstruct")
        meta = json.loads(raw) if raw else {}
        cols = table.to_pydict()
        arrays = {i: np.asarray(e, dtype=np.float32) for i, e in zip(cols["id"], cols["embedding"], strict=True)}
        _check_arrays(arrays, path)
        return arrays, meta
    raise InputError("embeddings must be a .npz or .parquet file", path=path)


def _check_arrays(arrays: dict[str, np.ndarray], path: Path) -> None:
    """Embeddings are finite numbers: refuse NaN/inf (naming the id and the first bad row)."""
    for key, arr in arrays.items():
        if not np.issubdtype(arr.dtype, np.number):
            raise InputError(f"array of dtype {arr.dtype} is not numeric", path=path, record=key)
        bad = ~np.isfinite(arr)
        if bad.any():
            row = int(np.argwhere(bad)[0][0]) + 1
            raise InputError("embedding contains NaN or infinite values", path=path, record=key,
                             position=row if arr.ndim == 2 else None)


def embed_to_file(source: Path, pst: PSTModel, out: Path, cfg: EmbedConfig | None = None,
                  *, model_ref: dict | None = None, resume: bool = False) -> dict:
    """Embed every chain of ``source`` and write ``out``; returns the metadata written.

    ``resume`` keeps the arrays already in ``out`` (made with the same settings) and embeds only
    the other ids."""
    cfg = cfg or EmbedConfig()
    model_ref = model_ref or {}
    items, skipped, mode = load_inputs(source, pst)
    done: dict[str, np.ndarray] = {}
    if resume and Path(out).exists():
        done, old = read_embeddings(out)
        if old.get("config") != asdict(cfg) or old.get("model") != model_ref:
            raise InputError("--resume: the existing output was made with other settings; remove it or "
                             "choose another output", path=out)
    per_residue = embed_items(pst, [it for it in items if it.id not in done], cfg)
    arrays = {**done, **(per_residue if cfg.per_residue else pool(per_residue))}
    meta = {"source": str(source), "mode": mode, "config": asdict(cfg), "model": model_ref,
            "dim": int(next(iter(arrays.values())).shape[-1]), "count": len(arrays),
            "per_residue": cfg.per_residue, "skipped": skipped,
            "sequences": {it.id: it.sequence for it in items if it.id in arrays}}
    write_embeddings(out, arrays, meta)
    return meta
