"""Configuration of a subnetwork run: which weights are masked, what is suppressed, the loss
weights and the schedules. Every field has a working default (the paper's where it gives one)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from plmstruct.backbone.model import ATTENTION_MODULES
from plmstruct.errors import InputError
from plmstruct.training.config import OptimConfig, TrainConfig

#: residue-level targets (3-state DSSP classes) and sequence-level CATH levels
RESIDUE_TARGETS = ("helix", "strand", "coil")
SEQUENCE_LEVELS = ("class", "architecture", "topology", "superfamily")
#: which chains residue-level targets use (see :attr:`TargetConfig.chains`)
CHAIN_SETS = ("all", "antibody")


@dataclass
class MaskConfig:
    """Which linear weights carry a learned mask and how the scores start.

    ``layers=None`` means the top ``top_fraction`` of the blocks (the paper: top 80%)."""

    modules: tuple[str, ...] = ATTENTION_MODULES
    layers: tuple[int, ...] | None = None
    top_fraction: float = 0.8
    init_probability: float = 0.96

    def chosen_layers(self, num_layers: int) -> list[int]:
        """The masked block indices for a backbone of ``num_layers`` blocks."""
        if self.layers is not None:
            bad = [i for i in self.layers if not 0 <= i < num_layers]
            if bad:
                raise ValueError(f"layers {bad} outside 0..{num_layers - 1}")
            return sorted(set(self.layers))
        keep = min(num_layers, max(1, round(self.top_fraction * num_layers)))
        return list(range(num_layers - keep, num_layers))

    @property
    def init_score(self) -> float:
        p = self.init_probability
        return math.log(p / (1 - p))


@dataclass
class ObjectiveConfig:
    """Loss weights: suppression KL(p_sub||uniform) on the target; maintenance KL(p_sub||p_orig)
    and masked-LM cross-entropy (``mlm``) on the rest; optional sparsity = mean mask probability
    (the paper's results use 0: with Adam even a tiny sparsity weight prunes steadily)."""

    suppression: float = 50.0
    maintenance: float = 100.0
    mlm: float = 1.2
    sparsity: float = 0.0
    #: where the KL terms are taken: ``masked`` (the masked-LM positions, what perplexity measures)
    #: or ``all`` (every labelled position, as the published code does on the unmasked sequence)
    kl_positions: str = "masked"

    @classmethod
    def for_level(cls, level: str) -> ObjectiveConfig:
        """Paper defaults (suppression / maintenance KL / maintenance MLM): 10 / 7 / 1 for
        sequence-level targets, 50 / 100 / 1.2 for residue-level ones."""
        return cls(50.0, 100.0, 1.2) if level == "residue" else cls(10.0, 7.0, 1.0)


@dataclass
class TargetConfig:
    """What to suppress.

    ``kind``: ``helix``/``strand``/``coil`` (residue level, DSSP 3-state) or a CATH level
    (``class``/``architecture``/``topology``/``superfamily``) with ``label`` (e.g. ``1`` or ``3.30``).
    ``random_control``: replace the target by a random subset of the same size (per chain for
    residues, over domains for sequences)."""

    kind: str = "helix"
    label: str | None = None
    random_control: bool = False
    train_files: tuple[str, ...] = ("CB634_valid.txt", "PISCES_25_valid.txt", "SPOT_1D_Valid.txt")
    eval_file: str = "CB433.txt"
    cath_table: str = "cath_S20_v4_3_0_labeled.tsv"
    limit_train: int | None = None
    limit_eval: int | None = 120
    eval_fraction: float = 0.1
    #: residue level: ``all`` chains, or ``antibody`` = only antibody variable domains (for antibody
    #: backbones such as AntiBERTy), gathered from every bundled DSSP source with ``holdout_fraction``
    #: of them held out for evaluation (instead of ``train_files`` / ``eval_file``)
    chains: str = "all"
    holdout_fraction: float = 0.4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.chains not in CHAIN_SETS:
            raise InputError(f"unknown chain set {self.chains!r}; choose from {', '.join(CHAIN_SETS)}")
        if self.chains != "all" and self.level != "residue":
            raise InputError(f"--chains {self.chains} applies to residue-level targets (helix, strand, coil) only")

    @property
    def level(self) -> str:
        return "residue" if self.kind in RESIDUE_TARGETS else "sequence"

    @property
    def name(self) -> str:
        base = self.kind if self.level == "residue" else f"{self.kind}-{self.label}"
        if self.chains != "all":
            base = f"{self.chains}-{base}"
        return f"random-{base}" if self.random_control else base


@dataclass
class SubnetworkConfig:
    """A complete run: backbone, mask, target, objective, batching, schedules, shared-loop set-up."""

    backbone: str = "default"
    mask: MaskConfig = field(default_factory=MaskConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    objective: ObjectiveConfig | None = None  # None: the paper defaults for the target level
    batch_size: int = 16
    targets_per_batch: int = 4
    crop: int = 128
    tau_start: float = 3.2
    tau_end: float = 0.01
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        lr=0.1, weight_decay=0.0, betas=(0.9, 0.999), warmup_steps=10, schedule="onecycle", min_lr_ratio=1 / 30))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        out_dir=Path("runs/subnetwork"), max_steps=300, val_every_n_steps=None, limit_val_batches=0,
        checkpoint_every_n_steps=50, gradient_clip_val=None))

    def objective_weights(self) -> ObjectiveConfig:
        return self.objective or ObjectiveConfig.for_level(self.target.level)

    def to_dict(self) -> dict:
        """JSON-ready description (paths as strings)."""
        d = asdict(self)
        d["objective"] = asdict(self.objective_weights())
        d["train"]["out_dir"] = str(self.train.out_dir)
        return d
