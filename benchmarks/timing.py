"""Interleaved timing shared by the benchmarks: on a shared machine, calling the variants in turn
(a, b, c, a, b, c, ...) lets drifts in load hit every variant alike."""

from __future__ import annotations

import time
from collections.abc import Callable


def interleaved_samples(fns: dict[str, Callable[[], object]], repeats: int
                        ) -> dict[str, tuple[list[float], list[float]]]:
    """Process-CPU and wall seconds of every call of each ``fn()`` (``name -> (cpu, wall)``),
    after one warm-up call of each, calls interleaved ``repeats`` times."""
    for fn in fns.values():
        fn()
    samples: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            c, w = time.process_time(), time.perf_counter()
            fn()
            samples[name][0].append(time.process_time() - c)
            samples[name][1].append(time.perf_counter() - w)
    return samples
