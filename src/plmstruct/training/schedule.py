"""Learning-rate schedules: warmup then decay, as a multiplier of the base lr."""

from __future__ import annotations

import math
from collections.abc import Callable

SCHEDULES = ("linear", "cosine", "inverse_sqrt", "constant", "onecycle")


def lr_multiplier(schedule: str, warmup: int, total: int, min_ratio: float = 0.0) -> Callable[[int], float]:
    """``f(step)``: linear warmup over ``warmup`` steps, then ``schedule`` decay to ``min_ratio``
    at ``total`` (``inverse_sqrt`` decays as sqrt(warmup/step); ``onecycle`` is a cosine up and
    down, warmup being the rising part)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}")
    warmup = max(0, warmup)
    total = max(total, warmup + 1)

    def f(step: int) -> float:
        if schedule == "onecycle":
            if step < warmup:
                return min_ratio + (1 - min_ratio) * 0.5 * (1 - math.cos(math.pi * (step + 1) / warmup))
            frac = min(1.0, (step - warmup) / max(1, total - warmup))
            return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * frac))
        if step < warmup:
            return (step + 1) / warmup
        frac = min(1.0, (step - warmup) / max(1, total - warmup))
        if schedule == "linear":
            return max(min_ratio, 1.0 - frac * (1.0 - min_ratio))
        if schedule == "cosine":
            return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * frac))
        if schedule == "inverse_sqrt":
            return max(min_ratio, math.sqrt(max(1, warmup) / max(step + 1, 1)))
        return 1.0

    return f


def cosine_anneal(start: float, end: float, step: int, total: int) -> float:
    """Cosine interpolation from ``start`` to ``end`` over ``total`` steps (temperature annealing)."""
    frac = min(1.0, max(0.0, step / max(1, total)))
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * frac))
