"""The shared trainer's progress bar labels step-bounded runs with their step budget."""

from __future__ import annotations

from plmstruct.training import TrainConfig
from plmstruct.training.trainer import build_trainer, train_description


def test_step_bounded_runs_show_the_step_budget_not_a_negative_epoch_count():
    assert train_description(3, 96, 300, -1) == "Epoch 3 · step 96/300"
    assert train_description(0, 0, 300, None) == "Epoch 0 · step 0/300"
    assert train_description(2, 40, -1, 10) == "Epoch 2/9"
    assert train_description(1, 5, -1, -1) == "Epoch 1"


def test_trainer_uses_the_step_label(tmp_path):
    trainer = build_trainer(TrainConfig(out_dir=tmp_path, max_steps=7, progress=True, accelerator="cpu"))
    bar = trainer.progress_bar_callback
    assert bar is not None
    bar._trainer = trainer  # what Lightning sets when a fit starts
    assert bar._get_train_description(0).startswith("Epoch 0 · step 0/7")
