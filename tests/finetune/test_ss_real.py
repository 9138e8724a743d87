"""Real weights + real data: a short adapter training beats the majority-class baseline on a
held-out real test file (CASP12). Training: real chains of the PISCES_25 pool (3-state labels
from DSSP), with chains similar to CASP12 removed first (the Python method: fast for 400 chains)."""

from __future__ import annotations

from pathlib import Path

import pytest

from plmstruct.data.secondary_structure import read_three_line
from plmstruct.evaluation.ss_metrics import majority_accuracy
from plmstruct.finetune import load_ss_model
from plmstruct.finetune.head import HeadConfig
from plmstruct.finetune.predict import evaluate_records
from plmstruct.finetune.train import SSTrainConfig, train_ss
from plmstruct.finetune.tuners import TunerConfig
from plmstruct.training.config import OptimConfig, TrainConfig

# (backbone, tuner, steps, batch, crop, every n-th CASP12 chain): AntiBERTy (8 x 512) is ~8x the
# default model's cost per residue, so it gets shorter crops and a smaller test sample.
CASES = [("default", "adapter", 50, 8, 160, 2), ("antiberty", "lora", 40, 6, 80, 4)]


@pytest.mark.parametrize(("backbone", "method", "steps", "batch", "crop", "stride"), CASES)
def test_short_training_beats_majority_on_held_out_casp12(backbone, method, steps, batch, crop, stride,
                                                          tmp_path: Path, data_dir):
    cfg = SSTrainConfig(
        n_states=3, source=str(data_dir / "secondary_structure" / "PISCES_25_valid.txt"), backbone=backbone, tuner=TunerConfig(method=method),
        head=HeadConfig(channels=32), optim=OptimConfig(lr=3e-3, warmup_steps=5, schedule="cosine"),
        train=TrainConfig(out_dir=tmp_path / "run", max_steps=steps, batch_size=batch, val_every_n_steps=None,
                          checkpoint_every_n_steps=1000, progress=False, num_threads=None),
        max_len=crop, filter_against=("CASP12",), redundancy_method="python", limit_train=400, limit_val=16)
    summary = train_ss(cfg)
    assert summary["steps"] == steps
    assert "against 47 test chains" in summary["redundancy"]
    assert summary["trainable_backbone_parameters"] > 0
    test = read_three_line(data_dir / "secondary_structure" / "CASP12.txt")[::stride]
    model = load_ss_model(tmp_path / "run" / "model")
    model.merge()
    reports, predicted = evaluate_records(model, test, max_len=crop)
    q3 = reports[-1]
    assert q3.n_states == 3 and q3.residues > 3000
    baseline = majority_accuracy([r.labels for r in test], 3)
    assert q3.accuracy > baseline + 3, (q3.accuracy, baseline)
    assert len({c for p in predicted for c in p}) >= 2  # not a constant predictor
