"""The pretraining corpus of the default model: real sequences from the bundled data, with every
test-set chain (and anything sharing a long exact stretch with one) held out."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from plmstruct.data.paths import data_file
from plmstruct.data.secondary_structure import read_flip_ss, read_netsurfp_csv, read_three_line

TEST_SETS_3LINE = ("CASP12.txt", "CB433.txt", "CB634.txt", "Test2016.txt")
TEST_SETS_CSV = ("CB513_HHblits.csv", "CASP12_HHblits.csv")
POOLS_3LINE = ("CB634_valid.txt", "PISCES_25_valid.txt", "SPOT_1D_Valid.txt")


def test_set_sequences() -> list[str]:
    """Sequences of every secondary-structure test chain bundled here."""
    seqs = [r.sequence for f in TEST_SETS_3LINE for r in read_three_line(data_file("secondary_structure", f))]
    seqs += [r.sequence for f in TEST_SETS_CSV for r in read_netsurfp_csv(data_file("ss_netsurfp2_prottrans", f))]
    return seqs


class ExactStretchFilter:
    """Flags a sequence that equals, contains, or shares an exact stretch of ``k`` residues with
    any reference sequence (a fast, conservative near-identity screen)."""

    def __init__(self, references: Iterable[str], k: int = 30) -> None:
        self.k = k
        self.kmers = {s[i: i + k] for s in references for i in range(max(1, len(s) - k + 1))}
        self.short = {s for s in references if len(s) < k}

    def hits(self, seq: str) -> bool:
        if seq in self.short or any(s in seq for s in self.short if len(s) >= 10):
            return True
        return any(seq[i: i + self.k] in self.kmers for i in range(max(1, len(seq) - self.k + 1)))


@dataclass
class Corpus:
    train: list[str]
    val: list[str]
    sources: dict[str, int] = field(default_factory=dict)
    removed_test_overlap: int = 0
    removed_duplicates: int = 0

    def unigram_perplexity(self) -> float:
        """Perplexity of the residue frequencies of ``train`` on the residues of ``val``."""
        counts = Counter("".join(self.train))
        total = sum(counts.values())
        val_counts = Counter("".join(self.val))
        n = sum(val_counts.values())
        nll = -sum(c * math.log(counts.get(a, 0.5) / total) for a, c in val_counts.items()) / n
        return math.exp(nll)


def pretraining_corpus(*, val_fraction: float = 0.02, seed: int = 0, alphabet: str | None = None,
                       stretch: int = 30) -> Corpus:
    """CATH S20 domains + the secondary-structure training pools + NetSurfP-2.0 training chains,
    minus test chains (exact stretch of ``stretch`` residues) and duplicates, split train/val."""
    import csv

    sources: dict[str, list[str]] = {}
    with open(data_file("cath", "cath_S20_v4_3_0_labeled.tsv")) as fh:
        sources["cath_S20"] = [row["sequence"] for row in csv.DictReader(fh, delimiter="\t")]
    for f in POOLS_3LINE:
        sources[f.removesuffix(".txt")] = [r.sequence for r in read_three_line(data_file("secondary_structure", f))]
    flip = read_flip_ss(data_file("ss_netsurfp2_flip", "splits"))
    sources["netsurfp2_train"] = [r.sequence for r in flip["train"] + flip["valid"]]
    screen = ExactStretchFilter(test_set_sequences(), k=stretch)
    seen: set[str] = set()
    kept: list[str] = []
    removed_test = removed_dup = 0
    for seqs in sources.values():
        for s in seqs:
            if alphabet is not None and any(c not in alphabet for c in s):
                continue
            if s in seen:
                removed_dup += 1
                continue
            seen.add(s)
            if screen.hits(s):
                removed_test += 1
                continue
            kept.append(s)
    rng = random.Random(seed)
    rng.shuffle(kept)
    n_val = max(1, int(len(kept) * val_fraction))
    return Corpus(train=kept[n_val:], val=kept[:n_val], sources={k: len(v) for k, v in sources.items()},
                  removed_test_overlap=removed_test, removed_duplicates=removed_dup)
