"""Segment overlap scores of secondary-structure predictions: SOV'99 and SOV_refine.

- SOV'99: Zemla, Venclovas, Fidelis & Rost (1999), "A modified definition of Sov, a segment-based
  measure for protein secondary structure prediction assessment", Proteins 34:220-223.
- SOV_refine: Liu & Wang (2018), "SOV_refine: a further refined definition of segment overlap
  score and its significance for protein structure similarity", Source Code Biol. Med. 13:1.

For each state ``i``, ``S(i)`` is the set of pairs (s1, s2) of an observed segment s1 and a
predicted segment s2 of state ``i`` that overlap, ``S'(i)`` the observed segments of state ``i``
overlapping no predicted one. With ``minov`` the overlap and ``maxov`` the extent of a pair,

    SOV = 100 * sum_i sum_{S(i)} (minov + delta) / maxov * len(s1) / N,
    N   = sum_i (sum_{S(i)} len(s1) + sum_{S'(i)} len(s1))

(an observed segment counts once per predicted segment it overlaps). The allowance ``delta`` is
``min(maxov - minov, minov, len(s1) // 2, len(s2) // 2)`` for SOV'99 and
``min(maxov - minov, delta_all * len(s1) / L * minov / maxov)`` for SOV_refine, with
``delta_all = lambda * n_states / sum_k (len(seg_k) / L)^2`` over all observed segments.

Unlabelled residues (``X`` in the observed string) are not scored: they belong to no state, and
the predicted letter at such a position is ignored too (segments are cut there on both sides).
Scores of a data set are pooled: the numerators and the ``N`` of all chains are summed before
dividing (as the reference Perl implementation of Liu & Wang does for a file of chains).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

UNLABELLED = "X"


def segments(labels: str, state: str) -> list[tuple[int, int]]:
    """``(start, end)`` (inclusive, 0-based) of every maximal run of ``state`` in ``labels``."""
    out, start = [], None
    for i, c in enumerate(labels):
        if c == state and start is None:
            start = i
        elif c != state and start is not None:
            out.append((start, i - 1))
            start = None
    if start is not None:
        out.append((start, len(labels) - 1))
    return out


@dataclass
class SOVTally:
    """Pooled SOV numerators and normalisers, per state (add chains with :meth:`add`)."""

    lam: float = 1.0
    num99: dict[str, float] = field(default_factory=dict)
    num_refine: dict[str, float] = field(default_factory=dict)
    norm: dict[str, float] = field(default_factory=dict)

    def add(self, observed: str, predicted: str) -> None:
        """Score one chain (observed and predicted label strings of the same length)."""
        if len(observed) != len(predicted):
            raise ValueError(f"observed ({len(observed)}) and predicted ({len(predicted)}) lengths differ")
        predicted = "".join(UNLABELLED if o == UNLABELLED else p for o, p in zip(observed, predicted, strict=True))
        states = sorted(set(observed) - {UNLABELLED})
        if not states:
            return
        scored = sum(c != UNLABELLED for c in observed)
        runs = [b - a + 1 for s in states for a, b in segments(observed, s)]
        delta_all = self.lam * len(states) / sum((n / scored) ** 2 for n in runs)
        for state in states:
            obs, pred = segments(observed, state), segments(predicted, state)
            n = s99 = sref = 0.0
            for a1, b1 in obs:
                len1 = b1 - a1 + 1
                overlapping = [(a2, b2) for a2, b2 in pred if not (b2 < a1 or b1 < a2)]
                if not overlapping:
                    n += len1
                for a2, b2 in overlapping:
                    len2 = b2 - a2 + 1
                    minov = min(b1, b2) - max(a1, a2) + 1
                    maxov = max(b1, b2) - min(a1, a2) + 1
                    d99 = min(maxov - minov, minov, len1 // 2, len2 // 2)
                    dref = min(maxov - minov, delta_all * len1 / scored * minov / maxov)
                    n += len1
                    s99 += (minov + d99) / maxov * len1
                    sref += (minov + dref) / maxov * len1
            self.norm[state] = self.norm.get(state, 0.0) + n
            self.num99[state] = self.num99.get(state, 0.0) + s99
            self.num_refine[state] = self.num_refine.get(state, 0.0) + sref

    def _score(self, num: dict[str, float], state: str | None) -> float:
        keys = [state] if state is not None else list(self.norm)
        total = sum(self.norm.get(k, 0.0) for k in keys)
        return 100.0 * sum(num.get(k, 0.0) for k in keys) / total if total else float("nan")

    def sov99(self, state: str | None = None) -> float:
        """SOV'99 in percent, over all states or for one state."""
        return self._score(self.num99, state)

    def sov_refine(self, state: str | None = None) -> float:
        """SOV_refine in percent, over all states or for one state."""
        return self._score(self.num_refine, state)


def sov99(observed: str, predicted: str) -> float:
    """SOV'99 (percent) of one chain."""
    tally = SOVTally()
    tally.add(observed, predicted)
    return tally.sov99()


def sov_refine(observed: str, predicted: str, lam: float = 1.0) -> float:
    """SOV_refine (percent) of one chain with allowance factor ``lam`` (lambda)."""
    tally = SOVTally(lam=lam)
    tally.add(observed, predicted)
    return tally.sov_refine()


def pooled_sov(pairs: Iterable[tuple[str, str]], lam: float = 1.0) -> SOVTally:
    """Tally of many ``(observed, predicted)`` chains."""
    tally = SOVTally(lam=lam)
    for obs, pred in pairs:
        tally.add(obs, pred)
    return tally


def per_state(tally: SOVTally, states: Sequence[str]) -> dict[str, float]:
    """SOV'99 of each state present in the tally."""
    return {s: tally.sov99(s) for s in states if tally.norm.get(s)}
