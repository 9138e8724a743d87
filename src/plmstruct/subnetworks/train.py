"""One subnetwork run end to end: load backbone and targets, train the mask on the shared loop,
export the artifact (``OUT/mask``)."""

from __future__ import annotations

import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from plmstruct.backbone import load_backbone
from plmstruct.subnetworks.artifact import save_artifact
from plmstruct.subnetworks.config import SubnetworkConfig
from plmstruct.subnetworks.module import SubnetworkDataModule, SubnetworkModule
from plmstruct.subnetworks.targets import TargetData, load_targets
from plmstruct.training.trainer import fit

ARTIFACT_DIR = "mask"


def train_subnetwork(cfg: SubnetworkConfig, *, data: TargetData | None = None,
                     callbacks: list[Callback] | None = None) -> tuple[Path, dict]:
    """Train (or, with ``cfg.train.resume``, continue) and export; returns (artifact folder, metrics)."""
    backbone = load_backbone(cfg.backbone)
    data = data or load_targets(cfg.target, backbone.alphabet)
    module = SubnetworkModule(backbone, cfg)
    dm = SubnetworkDataModule(backbone, data, batch_size=cfg.batch_size, targets_per_batch=cfg.targets_per_batch,
                              crop=cfg.crop, seed=cfg.train.seed)
    start = time.time()
    trainer = fit(module, dm, cfg.train, callbacks=callbacks)
    metrics = {k.removeprefix("train/"): float(v) for k, v in trainer.callback_metrics.items()
               if k.startswith("train/")}
    metrics.update(steps=int(trainer.global_step), train_seconds_this_run=round(time.time() - start, 1),
                   train_examples=len(data.train), train_targets=sum(e.is_target for e in data.train)
                   if data.level == "sequence" else sum(e.target.count("1") for e in data.train),
                   removed_fraction=module.masks.removed_fraction())
    config = {"name": data.name, "backbone": cfg.backbone, "level": data.level, "run": cfg.to_dict(),
              "metrics": metrics}
    out = save_artifact(Path(cfg.train.out_dir) / ARTIFACT_DIR, module.masks, config)
    return out, metrics
