"""Train/test redundancy filter on real secondary-structure sets (MMseqs2 and the Python fallback)."""

from __future__ import annotations

import random

import pytest

from plmstruct.data.redundancy import filter_similar, low_complexity_mask
from plmstruct.data.secondary_structure import read_flip_ss, read_three_line
from plmstruct.errors import InputError

AMINO = "ACDEFGHIKLMNPQRSTVWY"


@pytest.fixture(scope="module")
def sets(data_dir):
    """200 real NetSurfP-2.0 training chains + planted relatives of real CB433 test chains."""
    test = [(r.id, r.sequence) for r in read_three_line(data_dir / "secondary_structure" / "CB433.txt")]
    train = [(r.id, r.sequence) for r in read_flip_ss(data_dir / "ss_netsurfp2_flip" / "splits")["train"][:200]]
    rng = random.Random(0)
    by_len = sorted(test, key=lambda t: -len(t[1]))
    (a_id, a), (b_id, b), (c_id, c), (d_id, d), (_, e) = by_len[10], by_len[20], by_len[30], by_len[40], by_len[50]
    mutated = "".join(rng.choice(AMINO) if rng.random() < 0.3 else x for x in b)  # ~72% identity
    shuffled = "".join(rng.sample(e, len(e)))  # same composition, no homology
    planted = {
        "planted_identical": (a.lower(), a_id),  # case does not matter
        "planted_mutated": (mutated, b_id),
        "planted_fragment": (c[len(c) // 5: len(c) // 5 + len(c) * 3 // 5], c_id),  # 60% of a test chain
        "planted_extended": ("MGSSHHHHHHSSGLVPRGSH" + d + "GSGSGS", d_id),
    }
    train += [(k, v[0]) for k, v in planted.items()] + [("planted_shuffled", shuffled)]
    return train, test, {k: v[1] for k, v in planted.items()}


@pytest.fixture(scope="module")
def reports(sets):
    train, test, _ = sets
    return {m: filter_similar(train, test, method=m, threads=1) for m in ("mmseqs", "python")}


@pytest.mark.parametrize("method", ["mmseqs", "python"])
def test_planted_relatives_are_removed_with_their_test_hit(sets, reports, method):
    train, _, planted = sets
    report = reports[method]
    hits = {h.train_id: h for h in report.removed}
    for train_id, test_id in planted.items():
        assert train_id in hits, (method, train_id)
        assert hits[train_id].test_id == test_id
    assert hits["planted_identical"].reason == "identical" and hits["planted_identical"].identity == 1.0
    assert 0.6 < hits["planted_mutated"].identity < 0.85 and hits["planted_mutated"].reason == "similar"
    assert hits["planted_fragment"].identity > 0.95 and hits["planted_fragment"].coverage > 0.95
    assert "planted_shuffled" in report.kept
    assert report.method == method and report.n_train == len(train)
    assert len(report.kept) + len(report.removed) == len(train)
    assert all(h.identity >= 0.25 and h.coverage >= 0.5 for h in report.removed)


def test_methods_agree_on_close_homologues(reports):
    close = {m: {h.train_id for h in r.removed if h.identity >= 0.5} for m, r in reports.items()}
    mm_all = {h.train_id for h in reports["mmseqs"].removed}
    py_all = {h.train_id for h in reports["python"].removed}
    assert close["python"] <= mm_all and close["mmseqs"] <= py_all
    assert len(close["mmseqs"]) >= 4
    # the methods may only differ in the twilight zone (the Python prefilter is less sensitive there)
    for method, other in (("mmseqs", py_all), ("python", mm_all)):
        assert all(h.identity < 0.45 for h in reports[method].removed if h.train_id not in other)


def test_report_tsv_is_complete(reports, tmp_path):
    report = reports["python"]
    path = tmp_path / "out" / "redundancy.tsv"
    report.to_tsv(path)
    lines = path.read_text().splitlines()
    comments = [ln for ln in lines if ln.startswith("#")]
    assert comments[0] == f"# {report.summary()}" and "min_identity=0.25" in comments[2]
    assert f"removed {len(report.removed)} of {report.n_train}" in report.summary()
    rows = [ln.split("\t") for ln in lines if not ln.startswith("#")]
    assert rows[0] == ["train_id", "status", "test_id", "identity", "coverage", "reason"]
    status = {r[0]: r[1] for r in rows[1:]}
    assert len(status) == report.n_train
    assert sum(v == "removed" for v in status.values()) == len(report.removed)
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_input_errors():
    with pytest.raises(InputError, match="duplicate training id"):
        filter_similar([("a", "ACDE"), ("a", "FGHI")], [("t", "ACDE")], method="python")
    with pytest.raises(InputError, match="empty test sequence"):
        filter_similar([("a", "ACDE")], [("t", "")], method="python")
    with pytest.raises(ValueError):
        filter_similar([("a", "ACDE")], [("t", "ACDE")], method="blast")
    with pytest.raises(TypeError):
        filter_similar(["ACDE"], [("t", "ACDE")])
    report = filter_similar([("a", "ACDEFGHIK"), ("b", "MNPQRSTVW")], [("t", "acdefghik")], method="python")
    assert report.kept == ["b"] and report.removed[0].reason == "identical"


def test_low_complexity_mask():
    import numpy as np

    codes = np.array([AMINO.index(c) for c in "ACDEFGHIKL" + "H" * 10 + "MNPQRSTVWY"])
    mask = low_complexity_mask(codes)
    assert mask[10:20].all() and not mask[:6].any() and not mask[-6:].any()
