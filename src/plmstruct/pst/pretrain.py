"""PST pretraining: masked-LM on structures through the shared loop, and the small export.

Modes: ``extractors-only`` (the backbone is frozen; only extractors and ``W^s`` train — the
checkpoints then hold only those weights) and ``full`` (everything trains). AdamW, linear warmup
then inverse-sqrt decay. The export is a folder with ``pst.json`` (backbone reference, its
fingerprint, the PST config, metrics), ``extractors.safetensors`` and, in ``full`` mode only,
``backbone.safetensors``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from safetensors.torch import load_file, save_file

from plmstruct.backbone.loader import check_finite, load_backbone
from plmstruct.data.secondary_structure import IGNORE_INDEX
from plmstruct.errors import InputError
from plmstruct.io import atomic_write, atomic_write_text
from plmstruct.pst.data import GraphItem, StructureMLMDataModule, load_graph_items, split_items
from plmstruct.pst.extractor import ExtractorConfig
from plmstruct.pst.model import MODES, PSTConfig, PSTModel, backbone_fingerprint
from plmstruct.training.config import OptimConfig, TrainConfig
from plmstruct.training.mlm import masked_lm_loss
from plmstruct.training.optim import configure_adamw
from plmstruct.training.trainer import fit

EXPORT_CONFIG = "pst.json"
EXTRACTOR_WEIGHTS = "extractors.safetensors"
BACKBONE_WEIGHTS = "backbone.safetensors"
VAL_IDS = "val_ids.txt"  # chains held out from pretraining (a clean test set for probes)


def default_structures() -> Path:
    """The bundled real structures (``../shared/data/structures_collection``)."""
    from plmstruct.data.paths import data_file

    return data_file("structures_collection")


@dataclass
class PSTPretrainConfig:
    """One PST pretraining run (defaults: extractors-only on the bundled structures)."""

    backbone: str = "default"
    structures: Path | None = None  # None: the bundled structures_collection
    mode: str = "extractors-only"
    pst: PSTConfig = field(default_factory=PSTConfig)
    crop: int = 512
    val_fraction: float = 0.1
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        out_dir=Path("runs/pst"), max_steps=300, batch_size=8, val_every_n_steps=50,
        checkpoint_every_n_steps=50, gradient_clip_val=1.0))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        lr=1e-3, weight_decay=0.01, warmup_steps=30, schedule="inverse_sqrt"))


class PSTMLMModule(L.LightningModule):
    """Masked-LM training of a :class:`PSTModel` with its graph."""

    def __init__(self, pst: PSTModel, optim: OptimConfig | None = None, total_steps: int = 1000) -> None:
        super().__init__()
        self.pst = pst
        self.optim = optim or OptimConfig(lr=1e-3, warmup_steps=30, schedule="inverse_sqrt")
        self.total_steps = total_steps
        # extractors-only checkpoints leave out the frozen backbone (it is reloaded by reference)
        self.strict_loading = pst.mode == "full"

    def on_fit_start(self) -> None:
        self.pst.train()  # loaders hand out eval-mode models; extractors-only keeps the backbone in eval

    @property
    def frozen_parts_in_eval_mode(self) -> bool:
        """Extractors-only training keeps the frozen backbone in eval mode on purpose (see
        :func:`~plmstruct.training.trainer.fit`)."""
        return self.pst.mode == "extractors-only"

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.pst(batch["input_ids"], batch["attention_mask"], batch.get("graph")).logits

    def _loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
        return masked_lm_loss(self(batch), batch["labels"]), int((batch["labels"] != IGNORE_INDEX).sum())

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, n = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss, n = self._loss(batch)
        self.log("val/loss", loss, prog_bar=True, batch_size=n, sync_dist=True)

    def configure_optimizers(self) -> dict:
        return configure_adamw(self.pst.trainable_parameters(), self.optim, self.total_steps)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.pst.mode == "extractors-only":
            state = checkpoint["state_dict"]
            for key in [k for k in state if k.startswith("pst.model.")]:
                del state[key]


def heldout_mlm_loss(pst: PSTModel, items: list[GraphItem], *, crop: int, batch_size: int = 8,
                     seeds: tuple[int, ...] = (101, 102, 103, 104, 105), use_graph: bool = True) -> float:
    """Mean masked-token cross-entropy on ``items`` over several fixed crop/mask draws (``seeds``;
    the same draws every call, so before/after and structure/sequence compare like for like);
    with ``use_graph=False`` the same batches run in sequence mode (= the backbone when
    extractors-only)."""
    was_training = pst.training
    pst.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for seed in seeds:
            dm = StructureMLMDataModule(pst.backbone, items[:1], items, batch_size=batch_size, max_len=crop,
                                        seed=seed)
            for batch in dm.val_dataloader():
                graph = batch["graph"] if use_graph else None
                logits = pst(batch["input_ids"], batch["attention_mask"], graph).logits
                mask = batch["labels"] != IGNORE_INDEX
                total += float(torch.nn.functional.cross_entropy(logits[mask], batch["labels"][mask],
                                                                 reduction="sum"))
                count += int(mask.sum())
    pst.train(was_training)
    return total / max(1, count)


def backbone_reference(spec: str) -> str:
    """What to store as the backbone reference: a name/hub id as given, a local path made absolute."""
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


def pretrain_pst(cfg: PSTPretrainConfig, export_dir: Path | None = None) -> dict:
    """Run PST pretraining (resumable) and optionally export; returns metrics including the held-out
    MLM loss of the backbone (sequence mode), of PST at zero init and of PST after training."""
    if cfg.mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}, not {cfg.mode!r}")
    backbone = load_backbone(cfg.backbone)
    source = cfg.structures or default_structures()
    items, skipped = load_graph_items(source, radius=cfg.pst.radius, alphabet=backbone.alphabet)
    train, val = split_items(items, cfg.val_fraction, seed=cfg.train.seed)
    if not train or not val:
        raise InputError(f"need at least 2 usable distinct chains to train and validate, got {len(items)}",
                         path=source)
    torch.manual_seed(cfg.train.seed)
    pst = PSTModel(backbone, cfg.pst)
    pst.set_mode(cfg.mode)
    before = heldout_mlm_loss(pst, val, crop=cfg.crop)
    seq_loss = heldout_mlm_loss(pst, val, crop=cfg.crop, use_graph=False)
    dm = StructureMLMDataModule(backbone, train, val, batch_size=cfg.train.batch_size, max_len=cfg.crop,
                                seed=cfg.train.seed)
    module = PSTMLMModule(pst, cfg.optim, total_steps=cfg.train.max_steps)
    start = time.time()
    trainer = fit(module, dm, cfg.train)
    seconds = time.time() - start
    pst.eval()
    after = heldout_mlm_loss(pst, val, crop=cfg.crop)
    metrics = {
        "backbone": backbone_reference(cfg.backbone), "mode": cfg.mode, "steps": int(trainer.global_step),
        "train_seconds_this_run": round(seconds, 1),
        "train_chains": len(train), "val_chains": len(val), "skipped": skipped,
        "heldout_loss_backbone_sequence": round(seq_loss, 4),
        "heldout_loss_pst_zero_init": round(before, 4),
        "heldout_loss_pst_trained": round(after, 4),
        "heldout_perplexity_backbone_sequence": round(math.exp(seq_loss), 3),
        "heldout_perplexity_pst_trained": round(math.exp(after), 3),
        "trainable_parameters": sum(p.numel() for p in pst.trainable_parameters()),
        "extractor_parameters": sum(p.numel() for p in pst.blocks.parameters()),
        "crop": cfg.crop, "structures": str(source),
        "optim": asdict(cfg.optim), "batch_size": cfg.train.batch_size, "torch_threads": torch.get_num_threads(),
    }
    if export_dir is not None and trainer.is_global_zero:
        export_pst(pst, export_dir, backbone_reference(cfg.backbone), metrics)
        atomic_write_text(Path(export_dir) / VAL_IDS, "".join(f"{it.id}\n" for it in val))
    return metrics


def export_pst(pst: PSTModel, folder: Path, backbone_ref: str, metrics: dict | None = None) -> None:
    """Write ``pst.json`` + ``extractors.safetensors`` (+ ``backbone.safetensors`` in full mode)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ext = pst.extractor_state_dict()
    atomic_write(folder / EXTRACTOR_WEIGHTS, lambda tmp: save_file(ext, str(tmp), metadata={"format": "pt"}))
    if pst.mode == "full":
        bb = {k: v for k, v in pst.backbone_state_dict().items()
              if not k.endswith(("inv_freq", "position_ids")) and "contact_head" not in k
              and not k.endswith("decoder.weight")}
        atomic_write(folder / BACKBONE_WEIGHTS, lambda tmp: save_file(bb, str(tmp), metadata={"format": "pt"}))
    else:
        (folder / BACKBONE_WEIGHTS).unlink(missing_ok=True)
    config = {"backbone": backbone_ref, "backbone_fingerprint": pst.fingerprint, "mode": pst.mode,
              "extractor": asdict(pst.cfg.extractor), "radius": pst.cfg.radius, "metrics": metrics or {}}
    atomic_write_text(folder / EXPORT_CONFIG, json.dumps(config, indent=2))


def load_pst(folder: Path, *, device: str | torch.device | None = None, backbone: str | None = None) -> PSTModel:
    """Load an exported PST: the referenced backbone (or ``backbone`` to override the reference),
    checked against the stored fingerprint, plus the extractor (and, in full mode, backbone) weights."""
    folder = Path(folder)
    cfg_path = folder / EXPORT_CONFIG
    if not folder.exists():
        raise InputError("no such PST export folder", path=folder)
    if not cfg_path.is_file():
        raise InputError(f"not a PST export (no {EXPORT_CONFIG})", path=folder)
    config = json.loads(cfg_path.read_text())
    bb = load_backbone(backbone or config["backbone"])
    if backbone_fingerprint(bb) != config["backbone_fingerprint"]:
        raise InputError(f"backbone {backbone or config['backbone']!r} is not the one these extractors were "
                         "trained on (fingerprint differs)", path=cfg_path)
    pst = PSTModel(bb, PSTConfig(extractor=ExtractorConfig(**config["extractor"]), radius=config["radius"]))
    extractors = load_file(str(folder / EXTRACTOR_WEIGHTS))
    check_finite(extractors, path=folder / EXTRACTOR_WEIGHTS)
    missing, unexpected = pst.blocks.load_state_dict(extractors, strict=False)
    if missing or unexpected:
        raise InputError(f"extractor weights do not match: missing={missing[:3]} unexpected={unexpected[:3]}",
                         path=folder / EXTRACTOR_WEIGHTS)
    if (folder / BACKBONE_WEIGHTS).exists():
        weights = load_file(str(folder / BACKBONE_WEIGHTS))
        check_finite(weights, path=folder / BACKBONE_WEIGHTS)
        pst.load_backbone_state_dict(weights)
    pst.mode = config["mode"]
    if device is not None:
        pst.to(device)
    return pst.eval()
