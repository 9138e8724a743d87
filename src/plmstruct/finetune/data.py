"""Secondary-structure data for fine-tuning: the standard test sets, the training sets with test
look-alikes removed, and the resumable data module of the shared loop."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from plmstruct.backbone.model import Backbone
from plmstruct.data.paths import shared_data_dir
from plmstruct.data.redundancy import RedundancyReport, filter_similar
from plmstruct.data.secondary_structure import (
    IGNORE_INDEX,
    SSRecord,
    label_indices,
    read_flip_ss,
    read_netsurfp_csv,
    read_three_line,
)
from plmstruct.errors import InputError
from plmstruct.finetune.model import lenient_tokenize
from plmstruct.training.sampling import ResumableBatchSampler, SeededDataset
from plmstruct.training.trainer import ResumableDataModule

#: the standard test sets (folder under the shared data, file)
TEST_SETS: dict[str, tuple[str, str]] = {
    "CASP12": ("secondary_structure", "CASP12.txt"),
    "CB433": ("secondary_structure", "CB433.txt"),
    "CB634": ("secondary_structure", "CB634.txt"),
    "TEST2016": ("secondary_structure", "Test2016.txt"),
    "CB513": ("ss_netsurfp2_prottrans", "CB513_HHblits.csv"),
}
#: 8/9-state training pools (3-line files)
POOLS = ("CB634_valid.txt", "PISCES_25_valid.txt", "SPOT_1D_Valid.txt")
TRAIN_SOURCES = ("pools", "netsurfp")


def read_ss_file(path: str | Path) -> list[SSRecord]:
    """A labelled file of either format: NetSurfP/ProtTrans CSV (``.csv``, 8-state letters) or the
    3-line format (anything else)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return read_netsurfp_csv(path, n_states=8)
    return read_three_line(path)


def test_set_path(name: str) -> Path:
    folder, file = TEST_SETS[name]
    return shared_data_dir() / folder / file


def load_test_sets(names: Sequence[str] = tuple(TEST_SETS), extra: Sequence[Path] = ()) -> dict[str, list[SSRecord]]:
    """Test sets by name (see :data:`TEST_SETS`) plus extra files (named by their file stem)."""
    out: dict[str, list[SSRecord]] = {}
    for name in names:
        if name.upper() not in TEST_SETS:
            raise InputError(f"unknown test set {name!r}; known: {', '.join(TEST_SETS)} (or give a file)")
        out[name.upper()] = read_ss_file(test_set_path(name.upper()))
    for path in extra:
        out[Path(path).stem] = read_ss_file(path)
    return out


def _split(records: list[SSRecord], fraction: float, salt: str) -> tuple[list[SSRecord], list[SSRecord]]:
    """Deterministic train/validation split by a hash of the id."""
    def held_out(r: SSRecord) -> bool:
        return zlib.crc32(f"{salt}:{r.id}".encode()) % 10_000 < fraction * 10_000

    return [r for r in records if not held_out(r)], [r for r in records if held_out(r)]


def training_records(source: str | Path, n_states: int, *, val_fraction: float = 0.05
                     ) -> tuple[list[SSRecord], list[SSRecord]]:
    """(train, validation) chains of a training source.

    - ``netsurfp``: the NetSurfP-2.0 set (FLIP split: 9,712 train + 1,080 validation), 3 states only;
    - ``pools``: CB634_valid + PISCES_25_valid + SPOT_1D_Valid (ids prefixed by the file stem),
      with a hashed ``val_fraction`` held out;
    - a file (3-line or CSV): the same hashed split."""
    if str(source) == "netsurfp":
        if n_states != 3:
            raise InputError("the NetSurfP-2.0 training set has 3-state labels only: use --states 3")
        split = read_flip_ss(shared_data_dir() / "ss_netsurfp2_flip" / "splits")
        return split["train"], split["valid"]
    if str(source) == "pools":
        records = [SSRecord(f"{Path(f).stem}:{r.id}", r.sequence, r.labels)
                   for f in POOLS for r in read_three_line(shared_data_dir() / "secondary_structure" / f)]
    else:
        records = read_ss_file(Path(source))
        if n_states > 3 and all(set(r.labels) <= set("HECX") for r in records):
            raise InputError(f"labels are 3-state only: cannot train a {n_states}-state model", path=source)
    return _split(records, val_fraction, "val")


def remove_test_similar(train: list[SSRecord], tests: dict[str, list[SSRecord]], *, method: str = "auto",
                        threads: int | None = None, report_path: Path | None = None
                        ) -> tuple[list[SSRecord], RedundancyReport]:
    """Drop training chains identical or similar to any test chain (:func:`filter_similar`:
    identical sequence, or >= 25% identity over >= 50% of either chain with E <= 1e-3)."""
    test_pairs = [(f"{name}:{r.id}", r.sequence) for name, recs in tests.items() for r in recs]
    report = filter_similar(train, test_pairs, method=method, threads=threads)
    if report_path is not None:
        report.to_tsv(report_path)
    removed = report.removed_ids
    return [r for r in train if r.id not in removed], report


class SSCollator:
    """``[((sequence, labels), seed), ...]`` -> tokens + per-residue class indices; chains longer
    than ``max_len`` are randomly cropped (deterministic per item seed; ``random_crop=False``:
    the first ``max_len`` residues)."""

    def __init__(self, backbone: Backbone, n_states: int, max_len: int, *, random_crop: bool = True) -> None:
        self.backbone, self.n_states = backbone, n_states
        self.max_len = min(max_len, backbone.max_residues)
        self.random_crop = random_crop

    def __call__(self, items: Sequence[tuple[tuple[str, list[int]], int]]) -> dict[str, torch.Tensor]:
        seqs, labs = [], []
        for (seq, lab), seed in items:
            start = 0
            if len(seq) > self.max_len and self.random_crop:
                g = torch.Generator().manual_seed(seed)
                start = int(torch.randint(0, len(seq) - self.max_len + 1, (1,), generator=g))
            seqs.append(seq[start: start + self.max_len])
            labs.append(lab[start: start + self.max_len])
        enc = lenient_tokenize(self.backbone, seqs)
        labels = torch.full((len(seqs), enc["input_ids"].shape[1] - 2), IGNORE_INDEX, dtype=torch.long)
        for row, lab in enumerate(labs):
            labels[row, : len(lab)] = torch.tensor(lab, dtype=torch.long)
        return {**enc, "labels": labels}


def encode_records(records: Sequence[SSRecord], n_states: int) -> list[tuple[str, list[int]]]:
    """``(sequence, class indices)`` of each chain in ``n_states`` states (X -> ignore)."""
    return [(r.sequence, label_indices(r.states(n_states), n_states)) for r in records]


class SSDataModule(ResumableDataModule):
    """Training chains (shuffled, length-grouped batches) and fixed validation crops."""

    def __init__(self, backbone: Backbone, train: Sequence[SSRecord], val: Sequence[SSRecord], n_states: int, *,
                 batch_size: int = 8, max_len: int = 512, seed: int = 0) -> None:
        super().__init__()
        if not train:
            raise InputError("no training chains left")
        self.train_items = encode_records(train, n_states)
        self.val_items = encode_records(val, n_states)
        self.collate = SSCollator(backbone, n_states, max_len)
        self.val_collate = SSCollator(backbone, n_states, max_len, random_crop=False)
        self.batch_size, self.seed = batch_size, seed

    def _lengths(self, items: list[tuple[str, list[int]]]) -> list[int]:
        return [min(len(s), self.collate.max_len) for s, _ in items]

    def setup(self, stage: str | None = None) -> None:
        if self.train_sampler is None:
            self.train_sampler = ResumableBatchSampler(self._lengths(self.train_items), self.batch_size, seed=self.seed)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(SeededDataset(self.train_items), batch_sampler=self.train_sampler, collate_fn=self.collate)

    def val_dataloader(self) -> DataLoader:
        sampler = ResumableBatchSampler(self._lengths(self.val_items), self.batch_size, seed=self.seed + 1,
                                        shuffle=False)
        return DataLoader(SeededDataset(self.val_items), batch_sampler=sampler, collate_fn=self.val_collate)
