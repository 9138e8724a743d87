"""Targets of a subnetwork: which residues (or whole sequences) the mask should make unpredictable.

Every example carries a per-residue target string over ``1`` (target), ``0`` (non-target) and
``-`` (unlabelled: in neither set), so residue-level targets (DSSP helix/strand/coil, 3-state
mapping H/G/I, E/B, rest) and sequence-level targets (all domains of one CATH class, architecture,
topology or superfamily: every residue ``1``) share one batch format. A random control replaces the
target by a random subset of the same size: per chain for residues, over domains for sequences.
Training batches hold a fixed number of target examples (sequence level; the paper: 4 of 16)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from plmstruct.backbone.model import Backbone
from plmstruct.data.antibody import antibody_variable_domains
from plmstruct.data.cath import level_name, read_cath_labeled_tsv, split_by_label
from plmstruct.data.mlm import MaskingConfig, mask_tokens, random_crop
from plmstruct.data.paths import data_file
from plmstruct.data.secondary_structure import IGNORE_INDEX, SSRecord, read_flip_ss, read_three_line
from plmstruct.errors import InputError
from plmstruct.subnetworks.config import RESIDUE_TARGETS, TargetConfig
from plmstruct.training.sampling import ResumableBatchSampler, item_seed

#: residue target -> its 3-state letter
STATE_OF = {"helix": "H", "strand": "E", "coil": "C"}
#: the 3-line DSSP files an antibody pool is gathered from (then the NetSurfP-2.0 set)
ANTIBODY_SOURCES = ("CB634_valid.txt", "PISCES_25_valid.txt", "SPOT_1D_Valid.txt", "CB433.txt", "CB634.txt",
                    "Test2016.txt", "CASP12.txt")


@dataclass(frozen=True)
class Example:
    """One chain: ``target`` has one of ``1``/``0``/``-`` per residue; ``states`` the 3-state DSSP
    letters (``X`` unlabelled) when known; ``is_target`` marks a target example (sequence level)."""

    id: str
    sequence: str
    target: str
    states: str | None = None
    is_target: bool = False


@dataclass
class TargetData:
    train: list[Example]
    eval: list[Example]
    level: str
    name: str


def _rng(seed: int, key: str) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(key.encode()))


def random_residue_target(target: str, seed: int, key: str) -> str:
    """As many ``1`` as ``target`` has, at random labelled positions (seeded by ``seed`` and ``key``)."""
    labelled = [i for i, t in enumerate(target) if t != "-"]
    pick = torch.randperm(len(labelled), generator=_rng(seed, key))[: target.count("1")].tolist()
    chosen = {labelled[j] for j in pick}
    return "".join("-" if t == "-" else "1" if i in chosen else "0" for i, t in enumerate(target))


def random_control_examples(examples: Sequence[Example], level: str, seed: int = 0) -> list[Example]:
    """The same chains with a random target of the same size (what a random control suppresses)."""
    if level == "residue":
        return [replace(e, target=random_residue_target(e.target, seed, e.id)) for e in examples]
    perm = torch.randperm(len(examples), generator=_rng(seed, "eval-control")).tolist()
    chosen = set(perm[: sum(e.is_target for e in examples)])
    return [replace(e, target=("1" if i in chosen else "0") * len(e.sequence), is_target=i in chosen)
            for i, e in enumerate(examples)]


def residue_examples(records: Sequence[SSRecord], kind: str, *, alphabet: str, random_control: bool = False,
                     seed: int = 0) -> list[Example]:
    """Examples with per-residue targets for ``kind`` (helix/strand/coil); chains with a letter
    outside ``alphabet`` or without any labelled target residue are left out."""
    if kind not in STATE_OF:
        raise InputError(f"unknown residue target {kind!r}; choose from {', '.join(RESIDUE_TARGETS)}")
    state = STATE_OF[kind]
    out = []
    allowed = set(alphabet)
    for rec in records:
        if not rec.sequence or not set(rec.sequence) <= allowed:
            continue
        states = rec.states(3)
        target = "".join("-" if s == "X" else "1" if s == state else "0" for s in states)
        k = target.count("1")
        if k == 0 or target.count("0") == 0:
            continue
        if random_control:
            target = random_residue_target(target, seed, rec.id)
        out.append(Example(rec.id, rec.sequence, target, states, is_target=True))
    return out


def sequence_examples(domains: Sequence, level: str, label: str, *, alphabet: str, random_control: bool = False,
                      seed: int = 0) -> list[Example]:
    """Domains as examples: every residue of a target domain is target (CATH ``level`` == ``label``);
    with ``random_control`` the targets are a random set of as many domains."""
    allowed = set(alphabet)
    domains = [d for d in domains if d.sequence and set(d.sequence) <= allowed]
    chosen, _ = split_by_label(domains, level, label)
    target_ids = {d.domain_id for d in chosen}
    if random_control:
        perm = torch.randperm(len(domains), generator=_rng(seed, f"{level}:{label}")).tolist()
        target_ids = {domains[i].domain_id for i in perm[: len(target_ids)]}
    return [Example(d.domain_id, d.sequence, ("1" if d.domain_id in target_ids else "0") * len(d.sequence),
                    None, d.domain_id in target_ids) for d in domains]


def _limit(items: list, n: int | None, seed: int, key: str) -> list:
    if n is None or n >= len(items):
        return items
    perm = torch.randperm(len(items), generator=_rng(seed, key))[:n].tolist()
    return [items[i] for i in sorted(perm)]


def load_targets(cfg: TargetConfig, alphabet: str, *, data_dir: Path | None = None) -> TargetData:
    """Train and held-out evaluation examples for ``cfg`` from the bundled real data.

    Residue level: train on ``cfg.train_files`` (3-line DSSP files), evaluate on ``cfg.eval_file``
    (chains identical to an evaluation chain are dropped from training); the evaluation examples
    always carry the real target (a random control is judged on the real target). Sequence level:
    the CATH table, split per label into a held-out ``eval_fraction``."""
    def path(*parts: str) -> Path:
        p = Path(parts[-1])
        if p.is_absolute() or p.exists():
            return p
        return (data_dir.joinpath(*parts) if data_dir else data_file(*parts))

    if cfg.level == "residue" and cfg.chains == "antibody":
        records = [r for name in ANTIBODY_SOURCES for r in read_three_line(path("secondary_structure", name))]
        flip = read_flip_ss(path("ss_netsurfp2_flip", "splits"))
        domains = antibody_variable_domains(records + flip["train"] + flip["valid"])
        if len(domains) < 2:
            raise InputError(f"only {len(domains)} antibody variable domain(s) in the DSSP data: need 2 or more")
        order = torch.randperm(len(domains), generator=_rng(cfg.seed, "antibody")).tolist()
        n_eval = min(len(domains) - 1, max(1, round(cfg.holdout_fraction * len(domains))))
        held, rest = sorted(order[:n_eval]), sorted(order[n_eval:])
        evals = residue_examples([domains[i] for i in held], cfg.kind, alphabet=alphabet)
        train = residue_examples([domains[i] for i in rest], cfg.kind, alphabet=alphabet,
                                 random_control=cfg.random_control, seed=cfg.seed)
        return TargetData(train, evals, "residue", cfg.name)
    if cfg.level == "residue":
        evals = residue_examples(read_three_line(path("secondary_structure", cfg.eval_file)), cfg.kind,
                                 alphabet=alphabet)
        evals = _limit(evals, cfg.limit_eval, cfg.seed, "eval")
        held = {e.sequence for e in evals}
        records: dict[str, SSRecord] = {}
        for name in cfg.train_files:
            for rec in read_three_line(path("secondary_structure", name)):
                if rec.sequence not in held:
                    records.setdefault(rec.id, rec)
        train = residue_examples(list(records.values()), cfg.kind, alphabet=alphabet,
                                 random_control=cfg.random_control, seed=cfg.seed)
        train = _limit(train, cfg.limit_train, cfg.seed, "train")
        return TargetData(train, evals, "residue", cfg.name)
    level = level_name(cfg.kind)
    if not cfg.label:
        raise InputError(f"a CATH {level} target needs a label (e.g. --label 1 for mainly-alpha)")
    domains = read_cath_labeled_tsv(path("cath", cfg.cath_table))
    real = sequence_examples(domains, level, cfg.label, alphabet=alphabet)
    chosen = sequence_examples(domains, level, cfg.label, alphabet=alphabet, random_control=cfg.random_control,
                               seed=cfg.seed)
    eval_ids: set[str] = set()
    for flag in (True, False):
        group = [e for e in real if e.is_target == flag]
        n = max(1, round(cfg.eval_fraction * len(group)))
        if cfg.limit_eval:
            n = min(n, max(1, cfg.limit_eval // 2))
        eval_ids |= {e.id for e in _limit(group, n, cfg.seed, f"eval{flag}")}
    if len(eval_ids) >= len(real):
        raise InputError(f"CATH {level} {cfg.label}: too few domains to hold out an evaluation set")
    evals = [e for e in real if e.id in eval_ids]
    train = [e for e in chosen if e.id not in eval_ids]
    train = _limit(train, cfg.limit_train, cfg.seed, "train")
    if not any(e.is_target for e in train):
        raise InputError(f"CATH {level} {cfg.label}: no target domain left for training")
    return TargetData(train, evals, "sequence", cfg.name)


class TargetBatchSampler(ResumableBatchSampler):
    """Batches with exactly ``targets_per_batch`` target examples (drawn from the shuffled targets,
    recycled when they run out) and the rest non-target; an epoch is one pass over the non-targets."""

    def __init__(self, is_target: Sequence[bool], batch_size: int, targets_per_batch: int, *, seed: int = 0) -> None:
        super().__init__([1] * len(is_target), batch_size, seed=seed, shuffle=True)
        self.targets = [i for i, t in enumerate(is_target) if t]
        self.others = [i for i, t in enumerate(is_target) if not t]
        self.per_batch = targets_per_batch
        if not self.targets or not self.others or not 0 < targets_per_batch < batch_size:
            raise ValueError("need target and non-target examples and 0 < targets_per_batch < batch_size")

    def _all_batches(self) -> list[list[int]]:
        g = torch.Generator().manual_seed(item_seed(self.seed, self.epoch, 2))
        rest = [self.others[i] for i in torch.randperm(len(self.others), generator=g).tolist()]
        n_rest = self.batch_size - self.per_batch
        n_batches = max(1, len(rest) // n_rest)
        need = n_batches * self.per_batch
        tgt: list[int] = []
        while len(tgt) < need:
            tgt += [self.targets[i] for i in torch.randperm(len(self.targets), generator=g).tolist()]
        batches = [tgt[b * self.per_batch:(b + 1) * self.per_batch] + rest[b * n_rest:(b + 1) * n_rest]
                   for b in range(n_batches)]
        rank, world = self._world()
        if world > 1:
            batches = batches[rank: len(batches) - len(batches) % world: world]
        return batches


class SubnetworkCollator:
    """``[(Example, seed), ...]`` -> a masked-LM batch plus per-token ``target`` / ``other`` flags
    (cropped at random to ``crop`` residues; deterministic per item seed)."""

    def __init__(self, backbone: Backbone, crop: int, masking: MaskingConfig | None = None) -> None:
        self.backbone = backbone
        self.crop = min(crop, backbone.max_residues)
        self.masking = masking or MaskingConfig()

    def __call__(self, items: Sequence[tuple[Example, int]]) -> dict[str, torch.Tensor]:
        seqs, targets, gens = [], [], []
        for ex, seed in items:
            g = torch.Generator().manual_seed(seed)
            start, seq = random_crop(ex.sequence, self.crop, g)
            seqs.append(seq)
            targets.append(ex.target[start: start + len(seq)])
            gens.append(g)
        enc = self.backbone.tokenize(seqs)
        ids = enc["input_ids"]
        target = torch.zeros_like(ids, dtype=torch.bool)
        other = torch.zeros_like(ids, dtype=torch.bool)
        for row, t in enumerate(targets):
            flags = torch.tensor([ord(c) for c in t])
            target[row, 1: 1 + len(t)] = flags == ord("1")
            other[row, 1: 1 + len(t)] = flags == ord("0")
        maskable = ~self.backbone.special_tokens_mask(ids)
        inputs, labels = ids.clone(), torch.full_like(ids, IGNORE_INDEX)
        for row, g in enumerate(gens):
            inputs[row], labels[row] = mask_tokens(
                ids[row], maskable[row], mask_token_id=self.backbone.tokenizer.mask_token_id,
                residue_token_ids=self.backbone.residue_token_ids, generator=g, cfg=self.masking)
        return {"input_ids": inputs, "attention_mask": enc["attention_mask"], "labels": labels,
                "target": target, "other": other}
