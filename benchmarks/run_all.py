"""Run every benchmark module in ``benchmarks/`` (``bench_*.py``) and print one summary table.

Each module's ``run()`` is called with its defaults and prints its own details; the table then
lists the headline numbers of every module: those named by the module's ``summary(result)`` (a
list of ``(metric, value)``) when it has one, else every ratio / rate / goal entry of its result.
A module that fails is reported in the table and does not stop the others. ``make bench`` runs
this. Run: ``python -m benchmarks.run_all [name ...]`` (names like ``training_step`` select).
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path

HEADLINE = ("ratio", "per_min", "tokens_per_s", "speedup", "meets_goal", "peak_mib")


def modules(selected: list[str] | None = None) -> list[str]:
    """Names of the benchmark modules present (``benchmarks.bench_*``), sorted."""
    names = sorted(p.stem for p in Path(__file__).resolve().parent.glob("bench_*.py"))
    if selected:
        names = [n for n in names if any(s in n for s in selected)]
    return [f"benchmarks.{n}" for n in names]


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def headline(result: object, prefix: str = "") -> list[tuple[str, str]]:
    """Ratio / rate / goal entries of a (nested) result, as ``(dotted key, value)``."""
    rows: list[tuple[str, str]] = []
    if isinstance(result, dict):
        for key, value in result.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict | list):
                rows += headline(value, name)
            elif any(h in str(key) for h in HEADLINE) and value is not None:
                rows.append((name, _fmt(value)))
    elif isinstance(result, list):
        for i, item in enumerate(result):
            rows += headline(item, f"{prefix}[{i}]")
    return rows


def run(selected: list[str] | None = None) -> list[tuple[str, str, str]]:
    """Run the modules; returns and prints the ``(benchmark, metric, value)`` table."""
    table: list[tuple[str, str, str]] = []
    for name in modules(selected):
        short = name.split(".")[-1].removeprefix("bench_")
        print(f"\n=== {short} ===", flush=True)
        start = time.time()
        try:
            module = importlib.import_module(name)
            result = module.run()
            rows = module.summary(result) if hasattr(module, "summary") else headline(result)
        except Exception as err:  # noqa: BLE001 - one failing benchmark must not hide the others
            traceback.print_exc()
            rows = [("FAILED", f"{type(err).__name__}: {err}")]
        rows.append(("benchmark seconds", f"{time.time() - start:.0f}"))
        table += [(short, metric, value) for metric, value in rows]
    width = max((len(m) for _, m, _ in table), default=10)
    print(f"\n{'benchmark':<16}{'metric':<{width + 2}}value")
    for bench, metric, value in table:
        print(f"{bench:<16}{metric:<{width + 2}}{value}")
    return table


if __name__ == "__main__":
    run(sys.argv[1:] or None)
