"""``plmstruct pretrain``: MLM-pretrain a small ESM-2-architecture model from scratch (or continue an
existing ESM model, ``--init``) on the bundled real sequences (ESM-2 recipe) and export it with a
model card."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import EsmForMaskedLM

from plmstruct.backbone.loader import default_model_dir, esm_config, esm_tokenizer
from plmstruct.backbone.model import ESM_RESIDUE_LETTERS, Backbone
from plmstruct.data.corpus import pretraining_corpus
from plmstruct.errors import InputError
from plmstruct.io import atomic_write, atomic_write_text
from plmstruct.training.config import OptimConfig, TrainConfig
from plmstruct.training.mlm import MLMModule, SequenceMLMDataModule
from plmstruct.training.trainer import checkpoint_step, fit, last_checkpoint


@dataclass
class PretrainConfig:
    """Size of the model and of the run (defaults: the embedded default model)."""

    num_layers: int = 6
    hidden_size: int = 320
    num_heads: int = 20
    max_residues: int = 1024
    crop: int = 512
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        out_dir=Path("runs/pretrain"), max_steps=6000, batch_size=16, val_every_n_steps=500,
        checkpoint_every_n_steps=100, gradient_clip_val=1.0))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        lr=1e-3, weight_decay=0.01, warmup_steps=300, schedule="linear", min_lr_ratio=0.1))
    val_fraction: float = 0.02
    limit_sequences: int | None = None
    #: continue pretraining this ESM-family backbone (name, folder, hub id) instead of starting from
    #: scratch; its size replaces ``num_layers``/``hidden_size``/``num_heads``
    init: str | None = None


def evaluate_mlm(backbone: Backbone, sequences: list[str], *, crop: int, batch_size: int = 16, seed: int = 1) -> float:
    """Masked-token perplexity of ``backbone`` on ``sequences``: 15% of the residues (fixed seeds), every
    one replaced by ``<mask>`` (the validation batches of :class:`SequenceMLMDataModule`)."""
    dm = SequenceMLMDataModule(backbone, sequences[:1], sequences, batch_size=batch_size, max_len=crop, seed=seed)
    total, count = 0.0, 0
    model = backbone.model.eval()
    with torch.no_grad():
        for batch in dm.val_dataloader():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            mask = batch["labels"] != -100
            total += float(torch.nn.functional.cross_entropy(logits[mask], batch["labels"][mask], reduction="sum"))
            count += int(mask.sum())
    return math.exp(total / max(1, count))


def initial_backbone(cfg: PretrainConfig) -> Backbone:
    """A fresh ESM-2 of the configured size, or the ``cfg.init`` backbone to continue from."""
    if cfg.init is None:
        model = EsmForMaskedLM(esm_config(cfg.num_layers, cfg.hidden_size, cfg.num_heads,
                                          max_residues=cfg.max_residues))
        return Backbone(model=model, tokenizer=esm_tokenizer(), family="esm", name="default")
    from plmstruct.backbone.loader import load_backbone

    backbone = load_backbone(cfg.init)
    if backbone.family != "esm":
        raise InputError(f"--init {cfg.init}: only ESM-family models can continue MLM pretraining here "
                         f"(got {backbone.family})")
    return backbone


def pretrain(cfg: PretrainConfig, export_dir: Path | None = None) -> dict:
    """Train from scratch (or from ``cfg.init``), then (optionally) export ``config.json`` + ``model.safetensors`` +
    ``README.md`` (model card) + ``metrics.json`` to ``export_dir``. Returns the metrics."""
    if cfg.train.resume and (ckpt := last_checkpoint(cfg.train)) is not None:
        checkpoint_step(ckpt)  # an unreadable checkpoint fails now, not after loading the corpus
    torch.manual_seed(cfg.train.seed)
    backbone = initial_backbone(cfg)  # a bad --init fails now, not after loading the corpus
    model = backbone.model
    c = model.config  # the size actually trained (that of --init when given), for metrics and the card
    cfg = replace(cfg, num_layers=c.num_hidden_layers, hidden_size=c.hidden_size, num_heads=c.num_attention_heads)
    corpus = pretraining_corpus(val_fraction=cfg.val_fraction, seed=cfg.train.seed, alphabet=ESM_RESIDUE_LETTERS)
    train = corpus.train[: cfg.limit_sequences] if cfg.limit_sequences else corpus.train
    dm = SequenceMLMDataModule(backbone, train, corpus.val, batch_size=cfg.train.batch_size, max_len=cfg.crop,
                               seed=cfg.train.seed)
    module = MLMModule(backbone, cfg.optim, total_steps=cfg.train.max_steps)
    start = time.time()
    trainer = fit(module, dm, cfg.train)
    seconds = time.time() - start
    model.eval()
    metrics = {
        "val_perplexity": evaluate_mlm(backbone, corpus.val, crop=cfg.crop),
        "unigram_perplexity": corpus.unigram_perplexity(),
        "steps": int(trainer.global_step),
        "train_seconds_this_run": round(seconds, 1),
        "train_sequences": len(train), "val_sequences": len(corpus.val),
        "train_residues": sum(len(s) for s in train),
        "removed_test_overlap": corpus.removed_test_overlap, "removed_duplicates": corpus.removed_duplicates,
        "sources": corpus.sources,
        "parameters": sum(p.numel() for p in model.parameters()),
        "init": cfg.init,
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("train", "optim")},
        "train": {k: str(v) for k, v in asdict(cfg.train).items()},
        "optim": asdict(cfg.optim),
        "torch_threads": torch.get_num_threads(),
    }
    if export_dir is not None and trainer.is_global_zero:
        export_model(backbone, export_dir, metrics)
    return metrics


def export_model(backbone: Backbone, folder: Path, metrics: dict) -> None:
    """Write the model as safetensors + config + model card, atomically per file."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in backbone.model.state_dict().items()
             if not k.endswith(("inv_freq", "lm_head.decoder.weight")) and "contact_head" not in k}
    atomic_write(folder / "model.safetensors", lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"}))
    atomic_write_text(folder / "config.json", backbone.model.config.to_json_string())
    atomic_write_text(folder / "metrics.json", json.dumps(metrics, indent=2))
    load_as = "default" if folder.resolve() == default_model_dir().resolve() else str(folder)
    atomic_write_text(folder / "README.md", model_card(metrics, load_as))


def model_card(m: dict, load_as: str = "default") -> str:
    """The model card (README.md) of an exported model; ``load_as`` is what to pass to ``load_backbone``."""
    c = m["config"]
    hours = float(m["train"].get("total_seconds", m["train_seconds_this_run"])) / 3600 \
        if isinstance(m["train"], dict) else m["train_seconds_this_run"] / 3600
    init = m.get("init")
    if init:
        title = f"plmstruct model (ESM-2 architecture, continued pretraining of `{init}`)"
        origin = (f"`{init}` ({c['num_layers']} layers, width {c['hidden_size']}, {c['num_heads']} heads, "
                  f"{m['parameters']:,} parameters)\npretrained further with `plmstruct pretrain --init`")
        steps_note = " more, from the weights of the initial model"
        closing = (f"How much it knows beyond `{init}` is measured by the validation perplexity above; compare it\n"
                   f"with the initial model's own card.")
    else:
        title = "plmstruct default model (ESM-2 architecture, pretrained from scratch)"
        origin = (f"A small ESM-2 ({c['num_layers']} layers, width {c['hidden_size']}, {c['num_heads']} heads,\n"
                  f"{m['parameters']:,} parameters, rotary positions, up to {c['max_residues']} residues) trained with\n"
                  f"`plmstruct pretrain`")
        steps_note = ""
        closing = ("This model is small and trained on ~5M residues: it knows far less than ESM-2 8M; it exists so\n"
                   "that every plmstruct method runs end to end offline on a model with real, learned knowledge.")
    return f"""# {title}

{origin} on CPU with the ESM-2 masked-LM recipe (15% masking, 80/10/10, AdamW,
warmup then linear decay, random crops of {c['crop']} residues).

| | |
|---|---|
| training data | {m['train_sequences']:,} real chains, {m['train_residues']:,} residues: CATH S20 v4.3.0 domains, the CB634/PISCES/SPOT-1D secondary-structure pools, NetSurfP-2.0 training chains |
| held out | every chain of CASP12, CB433, CB634, TEST2016, CB513 (and any chain sharing an exact 30-residue stretch with one: {m['removed_test_overlap']:,} removed; {m['removed_duplicates']:,} duplicates removed) |
| validation | {m['val_sequences']:,} random chains (2%) never trained on |
| steps | {m['steps']:,}{steps_note} (batch {m['train']['batch_size']}) |
| training time | {hours:.2f} h on 2 CPU cores ({m['torch_threads']} threads) |
| **validation perplexity** | **{m['val_perplexity']:.2f}** (15% of residues replaced by `<mask>`, fixed seed) |
| unigram baseline perplexity | {m['unigram_perplexity']:.2f} (residue frequencies of the training set) |

Licences of the data: CATH (CC BY 4.0), LIFT_SS pools (GPL-2.0), NetSurfP-2.0 via FLIP (CC BY 4.0 / AFL-3.0).
{closing}
Load it with `plmstruct.backbone.load_backbone("{load_as}")`.
"""
