"""ESMFold with a masked trunk (TM-score to the unmasked prediction, pLDDT) — only when a GPU and
the ``EsmForProteinFolding`` weights (``facebook/esmfold_v1``) in the local HF cache are present;
otherwise :func:`esmfold_evaluation` returns ``{"skipped": reason}`` without touching the network."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

ESMFOLD_ID = "facebook/esmfold_v1"


def esmfold_unavailable() -> str | None:
    """Why ESMFold cannot run here (None when it can)."""
    if not torch.cuda.is_available():
        return "no GPU (torch.cuda.is_available() is False)"
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return "huggingface_hub missing"
    found = try_to_load_from_cache(ESMFOLD_ID, "config.json")
    if not isinstance(found, str):
        return f"{ESMFOLD_ID} weights not in the local HF cache"
    return None


def tm_score(a: np.ndarray, b: np.ndarray) -> float:
    """TM-score of Cα coordinates ``a`` onto ``b`` (same residues; Kabsch superposition on all
    residues, then on the residues within d0, twice)."""
    n = len(b)
    d0 = max(0.5, 1.24 * np.cbrt(max(n, 19) - 15) - 1.8)
    sel = np.ones(n, bool)
    best = 0.0
    for _ in range(3):
        pa, pb = a[sel] - a[sel].mean(0), b[sel] - b[sel].mean(0)
        u, _, vt = np.linalg.svd(pa.T @ pb)
        d = np.sign(np.linalg.det(u @ vt))
        rot = u @ np.diag([1, 1, d]) @ vt
        moved = (a - a[sel].mean(0)) @ rot + b[sel].mean(0)
        dist = np.linalg.norm(moved - b, axis=1)
        best = max(best, float(np.mean(1 / (1 + (dist / d0) ** 2))))
        sel = dist < d0
        if sel.sum() < 3:
            break
    return best


def esmfold_evaluation(binary: Mapping[str, torch.Tensor], sequences: Sequence[str]) -> dict:
    """Mean pLDDT of the original and masked trunk and the TM-score between their predictions.
    The mask must have been trained on ESMFold's own trunk (ESM-2 3B); keys ``layerN.module``."""
    reason = esmfold_unavailable()
    if reason:
        return {"skipped": reason}
    from transformers import EsmForProteinFolding, EsmTokenizer

    model = EsmForProteinFolding.from_pretrained(ESMFOLD_ID).cuda().eval()
    tok = EsmTokenizer.from_pretrained(ESMFOLD_ID)
    table = {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
             "output": "attention.output.dense", "intermediate": "intermediate.dense", "ffn_output": "output.dense"}

    def predict() -> list[tuple[np.ndarray, float]]:
        out = []
        for s in sequences:
            ids = tok([s], return_tensors="pt", add_special_tokens=False)["input_ids"].cuda()
            with torch.no_grad():
                o = model(ids)
            out.append((o.positions[-1, 0, :, 1].float().cpu().numpy(), float(o.plddt[0, :, 1].mean())))
        return out

    original = predict()
    layers = model.esm.encoder.layer
    with torch.no_grad():
        for key, keep in binary.items():
            layer, module = key.split(".", 1)
            lin = layers[int(layer.removeprefix("layer"))].get_submodule(table[module])
            if tuple(lin.weight.shape) != tuple(keep.shape):
                return {"skipped": "the mask was not trained on ESMFold's ESM-2 trunk"}
            lin.weight.mul_(keep.to(lin.weight.device, lin.weight.dtype))
    masked = predict()
    return {"plddt_original": float(np.mean([p for _, p in original])),
            "plddt_masked": float(np.mean([p for _, p in masked])),
            "tm_masked_vs_original": float(np.mean([tm_score(m, o) for (m, _), (o, _) in zip(masked, original, strict=True)]))}
