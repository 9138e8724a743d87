"""Where a subnetwork's mask bites: fraction of weights removed per layer and module (table +
heatmap), overlap (Jaccard of the removed weights) between masks, and a Markdown report with PNGs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from plmstruct.io import atomic_write, atomic_write_text

MODULE_ORDER = ("query", "key", "value", "output", "intermediate", "ffn_output")


def _parse(key: str) -> tuple[int, str]:
    layer, module = key.split(".", 1)
    return int(layer.removeprefix("layer")), module


def removed_table(binary: Mapping[str, torch.Tensor]) -> tuple[list[int], list[str], np.ndarray]:
    """(layers, modules, fractions[layer, module]) of removed weights; NaN where not masked."""
    keys = [_parse(k) for k in binary]
    layers = sorted({layer for layer, _ in keys})
    modules = [m for m in MODULE_ORDER if any(mod == m for _, mod in keys)]
    table = np.full((len(layers), len(modules)), np.nan)
    for key, keep in binary.items():
        layer, module = _parse(key)
        table[layers.index(layer), modules.index(module)] = 1.0 - float(keep.float().mean())
    return layers, modules, table


def jaccard(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    """|removed(a) ∩ removed(b)| / |removed(a) ∪ removed(b)| over the weights both mask (1.0 when
    neither removes anything)."""
    inter = union = 0
    for key in set(a) & set(b):
        ra, rb = ~a[key], ~b[key]
        inter += int((ra & rb).sum())
        union += int((ra | rb).sum())
    return 1.0 if union == 0 else inter / union


def jaccard_matrix(masks: Mapping[str, Mapping[str, torch.Tensor]]) -> tuple[list[str], np.ndarray]:
    names = list(masks)
    m = np.ones((len(names), len(names)))
    for i, x in enumerate(names):
        for j in range(i + 1, len(names)):
            m[i, j] = m[j, i] = jaccard(masks[x], masks[names[j]])
    return names, m


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def fmt(v: object) -> str:
        if isinstance(v, float):
            return "–" if np.isnan(v) else f"{v:.4g}"
        return "–" if v is None else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))
    plt.close(fig)


def heatmap(matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], title: str, path: Path, *,
            label: str = "", vmin: float | None = 0.0, vmax: float | None = None) -> Path:
    """A labelled heatmap PNG (values written in the cells)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(cols), 1.0 + 0.5 * len(rows)))
    im = ax.imshow(matrix, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    for i in range(len(rows)):
        for j in range(len(cols)):
            if not np.isnan(matrix[i, j]):
                ax.text(j, i, f"{matrix[i, j]:.3f}", ha="center", va="center", color="w", fontsize=8)
    fig.colorbar(im, ax=ax, label=label)
    ax.set_title(title)
    _save(fig, path)
    return path


def bar_chart(groups: Mapping[str, Mapping[str, float]], title: str, ylabel: str, path: Path) -> Path:
    """Grouped bars: ``{group: {series: value}}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(groups)
    series = list(dict.fromkeys(s for g in groups.values() for s in g))
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(names), 3.5))
    width = 0.8 / max(1, len(series))
    for k, s in enumerate(series):
        ax.bar([i + k * width for i in range(len(names))], [groups[n].get(s, np.nan) for n in names], width, label=s)
    ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(names))], names, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(fig, path)
    return path


def mask_section(masks: Mapping[str, Mapping[str, torch.Tensor]], out_dir: Path) -> str:
    """Markdown (+ PNGs in ``out_dir``): the removed-fraction table and heatmap of every mask and,
    for two or more masks, their Jaccard matrix."""
    out_dir = Path(out_dir)
    parts = ["### Where the mask bites (fraction of weights removed)", ""]
    for name, binary in masks.items():
        layers, modules, table = removed_table(binary)
        total = 1.0 - sum(int(b.sum()) for b in binary.values()) / max(1, sum(b.numel() for b in binary.values()))
        png = heatmap(table, [f"layer {i}" for i in layers], modules, f"{name}: removed fraction",
                      out_dir / f"removed_{name}.png", label="removed", vmax=max(0.05, float(np.nanmax(table))))
        parts += [f"**{name}** — {total:.2%} of the masked weights removed", "",
                  markdown_table(["layer", *modules], [[i, *table[r]] for r, i in enumerate(layers)]), "",
                  f"![{name}]({png.name})", ""]
    if len(masks) > 1:
        names, m = jaccard_matrix(masks)
        png = heatmap(m, names, names, "Jaccard overlap of removed weights", out_dir / "jaccard.png",
                      label="Jaccard", vmax=1.0)
        parts += ["### Overlap between masks (Jaccard of removed weights)", "",
                  markdown_table(["", *names], [[n, *m[i]] for i, n in enumerate(names)]), "", f"![jaccard]({png.name})", ""]
    return "\n".join(parts)


def write_report(path: Path, text: str) -> Path:
    atomic_write_text(Path(path), text)
    return Path(path)
