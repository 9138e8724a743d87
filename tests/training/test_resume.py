"""Crashes lose nothing: a training run SIGKILLed mid-epoch (twice) and resumed reaches the same
weights and metrics, bit for bit, as an uninterrupted run of the same seed (CPU).

The run (``mlm_run.py``): tiny ESM with dropout, real CASP12 sequences, 40 steps over 3+ epochs of
12 batches, validation every 10 steps, a checkpoint every 4 steps. The kills are chosen to hit
the two cases Lightning resumes badly on its own: right after the checkpoint on the last batch of
an epoch (step 12) and after a checkpoint that coincides with a validation (step 20/28)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlm_run
import pytest
import torch
from safetensors.torch import load_file

RUN = Path(__file__).with_name("mlm_run.py")
STEPS = 40


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}


def _run_and_kill(out: Path, at_step: int, *args: str) -> int:
    """Start a run, SIGKILL it once it has done ``at_step`` steps; returns the step it had reached."""
    proc = subprocess.Popen([sys.executable, str(RUN), str(out), *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=_env())
    progress = out / "progress"
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            text = progress.read_text() if progress.exists() else ""
            if text and int(text) >= at_step:
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return int(progress.read_text())


def _checkpoint_step(out: Path) -> int:
    return int(torch.load(out / "checkpoints" / "last.ckpt", weights_only=True, mmap=True)["global_step"])


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_sigkill_mid_epoch_and_resume_is_bit_exact(tmp_path):
    ref, run = tmp_path / "ref", tmp_path / "run"
    mlm_run.run(ref)  # the uninterrupted run (in this process: the same single-thread arithmetic)

    killed_at = _run_and_kill(run, 13)
    saved = _checkpoint_step(run)
    assert saved == 12 and 12 < killed_at < STEPS  # checkpoint on the last batch of epoch 0, killed in epoch 1
    killed_at = _run_and_kill(run, 29, "--resume")
    saved = _checkpoint_step(run)
    assert saved in (28, 32) and saved <= killed_at < STEPS and killed_at % 12 != 0  # mid-epoch
    mlm_run.run(run, resume=True)

    a, b = load_file(str(ref / "final-rank0.safetensors")), load_file(str(run / "final-rank0.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the same metrics: every training and validation row, same values, no duplicates, none lost
    ref_rows, run_rows = _rows(ref), _rows(run)
    assert len([r for r in ref_rows if r["train/loss"]]) == STEPS
    assert len([r for r in ref_rows if r["val/loss"]]) == STEPS // 10
    assert run_rows == ref_rows


def test_resume_without_checkpoint_starts_fresh_and_dropout_matters(tmp_path):
    """``resume=True`` with no checkpoint trains from scratch; the run's dropout really draws from
    the RNG (a run without dropout ends elsewhere), so the test above exercises RNG restoring."""
    mlm_run.run(tmp_path / "a", resume=True, steps=6)
    mlm_run.run(tmp_path / "b", steps=6, dropout=0.0)
    a = load_file(str(tmp_path / "a" / "final-rank0.safetensors"))
    b = load_file(str(tmp_path / "b" / "final-rank0.safetensors"))
    assert any(not torch.equal(a[k], b[k]) for k in a)
    assert [r["step"] for r in _rows(tmp_path / "a") if r["train/loss"]] == [str(i) for i in range(6)]
