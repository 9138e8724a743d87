"""DDP on the CPU: TrainConfig(strategy="ddp", devices=2, accelerator="cpu") runs two gloo
processes that train on disjoint shards of the data and keep identical weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from plmstruct.data.paths import data_file
from plmstruct.data.secondary_structure import read_three_line

RUN = Path(__file__).with_name("mlm_run.py")


@pytest.mark.ddp
def test_ddp_two_cpu_processes_shard_the_data(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(RUN), str(out), "--devices", "2", "--steps", "12"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    train = [r.sequence for r in read_three_line(data_file("secondary_structure", "CASP12.txt"))][:36]
    seen = [(out / f"seen-rank{r}.txt").read_text().split() for r in (0, 1)]
    # 36 chains in batches of 3 = 12 batches per epoch, 6 per rank: 12 steps = 2 epochs per rank
    assert [len(s) for s in seen] == [36, 36]
    for epoch in (0, 1):
        part = [s[epoch * 18:(epoch + 1) * 18] for s in seen]
        assert not set(part[0]) & set(part[1])  # disjoint shards
        assert sorted(part[0] + part[1]) == sorted(train)  # together: the whole epoch
    assert seen[0][:18] != seen[0][18:]  # a new order in the second epoch

    a, b = (load_file(str(out / f"final-rank{r}.safetensors")) for r in (0, 1))
    for key in a:  # gradients were averaged: both replicas end with the same weights
        assert (a[key] == b[key]).all(), key
    assert (out / "checkpoints" / "last.ckpt").exists()
    assert "val/loss" in (out / "metrics.csv").read_text()
