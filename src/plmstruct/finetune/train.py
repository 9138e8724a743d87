"""One fine-tuning run: data (test look-alikes removed), tuner + head, the shared loop, save."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from plmstruct.data.redundancy import RedundancyReport
from plmstruct.data.secondary_structure import SSRecord
from plmstruct.finetune.data import (
    TEST_SETS,
    SSDataModule,
    load_test_sets,
    remove_test_similar,
    training_records,
)
from plmstruct.finetune.head import HeadConfig
from plmstruct.finetune.tuners import TunerConfig
from plmstruct.io import atomic_write_text
from plmstruct.training.config import OptimConfig, TrainConfig


@dataclass
class SSTrainConfig:
    """A fine-tuning run. ``backbone_lr``: learning rate of trainable backbone weights (default:
    ``optim.lr`` for tuners, ``optim.lr / 10`` for full fine-tuning)."""

    n_states: int = 3
    source: str = "netsurfp"
    backbone: str = "default"
    tuner: TunerConfig = field(default_factory=TunerConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, warmup_steps=50, schedule="cosine",
                                                                   min_lr_ratio=0.05))
    backbone_lr: float | None = None
    train: TrainConfig = field(default_factory=lambda: TrainConfig(max_steps=500, batch_size=8,
                                                                   val_every_n_steps=None,
                                                                   checkpoint_every_n_steps=100))
    max_len: int = 512
    filter_against: tuple[str, ...] = tuple(TEST_SETS)
    extra_test_files: tuple[Path, ...] = ()
    redundancy_method: str = "auto"
    limit_train: int | None = None
    limit_val: int | None = 256
    max_minutes: float | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["train"]["out_dir"] = str(self.train.out_dir)
        d["extra_test_files"] = [str(p) for p in self.extra_test_files]
        return d


def subsample(records: list, limit: int | None) -> list:
    """Every n-th chain so that at most ``limit`` remain (deterministic, spread over the file)."""
    if limit is None or len(records) <= limit:
        return records
    step = len(records) / limit
    return [records[int(i * step)] for i in range(limit)]


def prepare_data(cfg: SSTrainConfig, report_path: Path | None = None
                 ) -> tuple[list[SSRecord], list[SSRecord], RedundancyReport]:
    """Training and validation chains of ``cfg.source`` with every chain identical or similar to a
    test chain (``cfg.filter_against`` + extra files) removed."""
    train, val = training_records(cfg.source, cfg.n_states)
    train = subsample(train, cfg.limit_train)
    val = subsample(val, cfg.limit_val)
    tests = load_test_sets(cfg.filter_against, cfg.extra_test_files)
    kept, report = remove_test_similar(train + val, tests, method=cfg.redundancy_method,
                                       threads=cfg.train.num_threads, report_path=report_path)
    kept_ids = {r.id for r in kept}
    return [r for r in train if r.id in kept_ids], [r for r in val if r.id in kept_ids], report


def train_ss(cfg: SSTrainConfig, data: tuple[list[SSRecord], list[SSRecord], RedundancyReport] | None = None
             ) -> dict:
    """Train, save the model to ``<out_dir>/model`` and return a summary (also ``summary.json``).
    ``data``: the result of :func:`prepare_data` when already computed (same source and filter)."""
    from plmstruct.backbone import load_backbone
    from plmstruct.finetune.checkpoint import save_ss_model
    from plmstruct.finetune.model import SSModel
    from plmstruct.finetune.module import SSModule
    from plmstruct.training.trainer import fit

    out = Path(cfg.train.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if data is None:
        data = prepare_data(cfg, out / "redundancy.tsv")
    else:
        data[2].to_tsv(out / "redundancy.tsv")
    train, val, report = data
    batches = max(1, len(train) // cfg.train.batch_size)
    if cfg.train.val_every_n_steps and cfg.train.val_every_n_steps > batches:
        cfg.train.val_every_n_steps = batches  # Lightning validates at most once per epoch's batches
    backbone = load_backbone(cfg.backbone)
    model = SSModel(backbone, cfg.n_states, cfg.tuner, cfg.head)
    backbone_lr = cfg.backbone_lr or (cfg.optim.lr / 10 if cfg.tuner.method == "full" else None)
    module = SSModule(model, cfg.optim, cfg.train.max_steps, backbone_lr=backbone_lr)
    dm = SSDataModule(backbone, train, val, cfg.n_states, batch_size=cfg.train.batch_size, max_len=cfg.max_len,
                      seed=cfg.train.seed)
    callbacks = []
    if cfg.max_minutes:
        from lightning.pytorch.callbacks import Timer

        callbacks.append(Timer(duration={"minutes": cfg.max_minutes}, interval="step"))
    start = time.perf_counter()
    trainer = fit(module, dm, cfg.train, callbacks=callbacks)
    seconds = time.perf_counter() - start
    if val:
        trainer.validate(module, datamodule=dm, verbose=False)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_backbone = sum(p.numel() for p in model.trainable_backbone_parameters())
    summary = {
        "method": cfg.tuner.method, "n_states": cfg.n_states, "backbone": cfg.backbone, "source": str(cfg.source),
        "train_chains": len(train), "val_chains": len(val), "steps": int(trainer.global_step),
        "train_seconds": round(seconds, 1), "trainable_parameters": n_trainable,
        "trainable_backbone_parameters": n_backbone,
        "head_parameters": sum(p.numel() for p in model.head.parameters()),
        "val_acc": float(trainer.callback_metrics.get("val/acc", float("nan"))),
        "redundancy": report.summary(), "config": cfg.to_dict(),
    }
    save_ss_model(model, out / "model", backbone_spec=cfg.backbone, extra={"train_summary": {
        k: v for k, v in summary.items() if k != "config"}})
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    return summary
