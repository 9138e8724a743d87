"""Building run configurations from short target specs, and sweeps: train a list of targets (and
their random controls), evaluate them together, write one report (Markdown + PNGs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from plmstruct.backbone.model import ATTENTION_MODULES
from plmstruct.cli.common import train_config
from plmstruct.data.cath import level_name
from plmstruct.errors import InputError
from plmstruct.subnetworks.artifact import SubnetworkArtifact, load_artifact
from plmstruct.subnetworks.config import (
    RESIDUE_TARGETS,
    MaskConfig,
    ObjectiveConfig,
    SubnetworkConfig,
    TargetConfig,
)
from plmstruct.subnetworks.evaluate import EvaluationConfig, evaluate_artifacts, write_evaluation
from plmstruct.subnetworks.train import train_subnetwork


def parse_target(spec: str) -> tuple[str, str | None]:
    """``helix`` | ``strand`` | ``coil`` | ``LEVEL:LABEL`` (e.g. ``class:1``, ``architecture:3.30``)."""
    if spec in RESIDUE_TARGETS:
        return spec, None
    level, _, label = spec.partition(":")
    try:
        level = level_name(level)
    except ValueError:
        raise InputError(f"unknown target {spec!r}: use helix, strand, coil or LEVEL:LABEL "
                         "(class:1, architecture:3.30, topology:..., superfamily:...)") from None
    if not label:
        raise InputError(f"target {spec!r} needs a label, e.g. {level}:1")
    return level, label


def make_config(target: str = "helix", *, random_control: bool = False, backbone: str = "default",
                out_dir: Path = Path("runs/subnetwork"), steps: int = 300, batch_size: int = 16,
                targets_per_batch: int = 4, crop: int = 128, lr: float = 0.1, tau_start: float = 3.2,
                tau_end: float = 0.01, layers: list[int] | None = None, modules: list[str] | None = None,
                top_fraction: float = 0.8, init_prob: float = 0.96, suppression: float | None = None,
                maintenance: float | None = None, mlm: float | None = None, sparsity: float | None = None,
                kl_positions: str | None = None, chains: str = "all", limit_train: int | None = None,
                limit_eval: int | None = None,
                seed: int = 0, resume: bool = False, threads: int | None = None, devices: str = "auto",
                strategy: str = "auto", num_nodes: int = 1, checkpoint_every: int = 50,
                progress: bool = True) -> SubnetworkConfig:
    """A :class:`SubnetworkConfig` from command-line style options (``target``: see :func:`parse_target`)."""
    kind, label = parse_target(target)
    known = ("query", "key", "value", "output", "intermediate", "ffn_output")
    for m in modules or ():
        if m not in known:
            raise InputError(f"unknown module {m!r}; choose from {', '.join(known)}")
    tcfg = TargetConfig(kind=kind, label=label, random_control=random_control, limit_train=limit_train, seed=seed,
                        chains=chains)
    if limit_eval is not None:
        tcfg.limit_eval = limit_eval
    weights = ObjectiveConfig.for_level(tcfg.level)
    for name, value in (("suppression", suppression), ("maintenance", maintenance), ("mlm", mlm),
                        ("sparsity", sparsity)):
        if value is not None:
            setattr(weights, name, value)
    if kl_positions is not None:
        weights.kl_positions = kl_positions
    cfg = SubnetworkConfig(backbone=backbone, target=tcfg, objective=weights, batch_size=batch_size,
                           targets_per_batch=targets_per_batch, crop=crop, tau_start=tau_start, tau_end=tau_end,
                           mask=MaskConfig(modules=tuple(modules or ATTENTION_MODULES),
                                           layers=tuple(layers) if layers else None, top_fraction=top_fraction,
                                           init_probability=init_prob))
    cfg.optim.lr = lr
    cfg.optim.warmup_steps = max(1, steps // 20)
    cfg.train = train_config(out_dir, max_steps=steps, batch_size=batch_size, seed=seed, resume=resume,
                             devices=devices, strategy=strategy, num_nodes=num_nodes, threads=threads,
                             checkpoint_every=checkpoint_every, progress=progress)
    cfg.train.gradient_clip_val = None
    cfg.train.limit_val_batches = 0
    return cfg


@dataclass
class SweepConfig:
    targets: list[str] = field(default_factory=lambda: ["helix", "strand", "coil"])
    random_control: bool = True
    backbone: str = "default"
    steps: int = 300
    batch_size: int = 16
    crop: int = 128
    lr: float = 0.1
    chains: str = "all"
    kl_positions: str | None = None  # None: the objective's default (masked positions)
    limit_train: int | None = None
    limit_eval: int | None = None
    seed: int = 0
    resume: bool = True
    threads: int | None = None
    progress: bool = True
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)


def run_name(spec: str, random_control: bool) -> str:
    return ("random-" if random_control else "") + spec.replace(":", "-")


def run_sweep(cfg: SweepConfig, out_dir: Path, *, title: str | None = None) -> tuple[Path, dict]:
    """Train every target (+ controls) under ``out_dir/NAME``, evaluate, write ``out_dir/REPORT.md``."""
    out_dir = Path(out_dir)
    arts: dict[str, SubnetworkArtifact] = {}
    for spec in cfg.targets:
        for rnd in ((False, True) if cfg.random_control else (False,)):
            name = run_name(spec, rnd)
            run = make_config(spec, random_control=rnd, backbone=cfg.backbone, out_dir=out_dir / name,
                              steps=cfg.steps, batch_size=cfg.batch_size, crop=cfg.crop, lr=cfg.lr,
                              chains=cfg.chains, kl_positions=cfg.kl_positions, limit_train=cfg.limit_train,
                              limit_eval=cfg.limit_eval, seed=cfg.seed,
                              resume=cfg.resume, threads=cfg.threads, progress=cfg.progress)
            path, _ = train_subnetwork(run)
            arts[name] = load_artifact(path)
    results = evaluate_artifacts(arts, cfg.evaluation)
    report = write_evaluation(results, arts, out_dir, title=title or f"Subnetwork sweep: {', '.join(cfg.targets)}")
    return report, results
