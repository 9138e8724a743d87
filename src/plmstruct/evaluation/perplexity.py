"""Masked-token perplexity with a fixed seed, split into target vs non-target residues, with
per-state (DSSP 3-state) and per-amino-acid breakdowns.

Each chain (first ``max_len`` residues) gets ``draws`` masked copies: 15% of its residues replaced
by the mask token, chosen by a generator seeded from (seed, draw, chain index) — the same positions
for every model compared. Perplexity = exp(mean negative log-likelihood of the true residue).
With a subnetwork in ``stochastic`` mode the NLL of each masked token is averaged over ``passes``
mask samples (pass ``p`` draws its masks from a generator seeded with ``seed + p``)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from plmstruct.backbone.model import STANDARD_AMINO_ACIDS, Backbone
from plmstruct.data.mlm import EVAL_MASKING, mask_tokens
from plmstruct.data.secondary_structure import IGNORE_INDEX
from plmstruct.training.sampling import item_seed


@dataclass
class PerplexityConfig:
    seed: int = 0
    draws: int = 2
    max_len: int = 256
    batch_size: int = 16
    passes: int = 10


@dataclass
class TokenNLL:
    """Per masked token: NLL, KL(p || uniform over the 20 residues) in nats (how far from "no idea"
    the prediction is: what suppression lowers, whatever the perplexity), target flag (``1``/``0``/``-``), 3-state letter, residue letter, and
    where it is (example index, residue position)."""

    nll: np.ndarray
    kl_uniform: np.ndarray
    flag: np.ndarray
    state: np.ndarray
    residue: np.ndarray
    example: np.ndarray
    position: np.ndarray

    def retarget(self, examples: Sequence) -> TokenNLL:
        """The same tokens flagged by the target strings of ``examples`` (same chains, other targets)."""
        flag = np.array([examples[i].target[p] for i, p in zip(self.example, self.position, strict=True)])
        return TokenNLL(self.nll, self.kl_uniform, flag, self.state, self.residue, self.example, self.position)


def _examples_fields(ex) -> tuple[str, str, str]:
    states = ex.states or "X" * len(ex.sequence)
    return ex.sequence, ex.target, states


@torch.no_grad()
def token_nll(backbone: Backbone, examples: Sequence, cfg: PerplexityConfig | None = None) -> TokenNLL:
    """NLL of every masked token of every draw, in a fixed order (the model as it currently is)."""
    cfg = cfg or PerplexityConfig()
    model = backbone.model
    was_training = model.training
    model.eval()
    nll, klu, flag, state, residue, where, pos_all = [], [], [], [], [], [], []
    res_ids = backbone.residue_token_ids
    jobs = [(d, i) for d in range(cfg.draws) for i in range(len(examples))]
    for start in range(0, len(jobs), cfg.batch_size):
        chunk = jobs[start: start + cfg.batch_size]
        fields = [_examples_fields(examples[i]) for _, i in chunk]
        seqs = [f[0][: cfg.max_len] for f in fields]
        enc = backbone.tokenize(seqs)
        ids = enc["input_ids"]
        maskable = ~backbone.special_tokens_mask(ids)
        inputs, labels = ids.clone(), torch.full_like(ids, IGNORE_INDEX)
        for row, (d, i) in enumerate(chunk):
            g = torch.Generator().manual_seed(item_seed(cfg.seed, d, i))
            inputs[row], labels[row] = mask_tokens(ids[row], maskable[row], mask_token_id=backbone.tokenizer.mask_token_id,
                                                   residue_token_ids=backbone.residue_token_ids, generator=g,
                                                   cfg=EVAL_MASKING)
        device = backbone.device
        logits = model(input_ids=inputs.to(device), attention_mask=enc["attention_mask"].to(device)).logits.float()
        logp = torch.log_softmax(logits, -1).cpu()
        logp_res = torch.log_softmax(logits[..., res_ids.to(logits.device)], -1).cpu()
        for row, (seq, target, states) in enumerate(fields):
            pos = torch.nonzero(labels[row] != IGNORE_INDEX).flatten()
            nll.append((-logp[row, pos, labels[row, pos]]).numpy())
            lr = logp_res[row, pos]
            klu.append(((lr.exp() * lr).sum(-1) + math.log(len(res_ids))).numpy())
            res = (pos - 1).tolist()
            flag.append(np.array([target[r] for r in res]))
            state.append(np.array([states[r] for r in res]))
            residue.append(np.array([seq[r] for r in res]))
            where.append(np.full(len(res), chunk[row][1]))
            pos_all.append(np.array(res, dtype=np.int64))
    model.train(was_training)
    return TokenNLL(*(np.concatenate(x) for x in (nll, klu, flag, state, residue, where, pos_all)))


def average_nll(runs: Sequence[TokenNLL]) -> TokenNLL:
    """Mean per-token NLL over runs on the same tokens (stochastic passes)."""
    first = runs[0]
    return TokenNLL(np.mean([r.nll for r in runs], axis=0), np.mean([r.kl_uniform for r in runs], axis=0), first.flag, first.state, first.residue, first.example,
                    first.position)


def _ppl(values: np.ndarray) -> float | None:
    return round(math.exp(float(values.mean())), 4) if len(values) else None


def _mean(values: np.ndarray) -> float | None:
    return round(float(values.mean()), 5) if len(values) else None


def perplexity_table(tok: TokenNLL) -> dict:
    """``target``/``non_target``/``all`` perplexities (+ token counts, mean KL to uniform) and breakdowns by 3-state
    letter and by amino acid, each split target / non-target."""
    t, o = tok.flag == "1", tok.flag == "0"
    out: dict = {"target": _ppl(tok.nll[t]), "non_target": _ppl(tok.nll[o]), "all": _ppl(tok.nll),
                 "n_target": int(t.sum()), "n_non_target": int(o.sum()),
                 "kl_uniform_target": _mean(tok.kl_uniform[t]), "kl_uniform_non_target": _mean(tok.kl_uniform[o])}
    by_state: dict = defaultdict(dict)
    for s in "HEC":
        sel = tok.state == s
        if sel.any():
            by_state[s] = {"all": _ppl(tok.nll[sel]), "n": int(sel.sum())}
    out["by_state"] = dict(by_state)
    by_res: dict = {}
    for aa in STANDARD_AMINO_ACIDS:
        sel = tok.residue == aa
        if sel.any():
            by_res[aa] = {"target": _ppl(tok.nll[sel & t]), "non_target": _ppl(tok.nll[sel & o]),
                          "n": int(sel.sum())}
    out["by_residue"] = by_res
    return out


def evaluate_perplexity(backbone: Backbone, examples: Sequence, cfg: PerplexityConfig | None = None,
                        masks=None, mode: str = "deterministic", *, own_targets: Sequence | None = None) -> dict:
    """Perplexity table of ``backbone`` as is (``masks=None``), or with ``masks`` (a
    :class:`plmstruct.subnetworks.mask.MaskSet` on it) in ``mode``: ``off`` (the original model),
    ``deterministic`` (binary mask) or ``stochastic`` (mean over ``cfg.passes`` sampled masks).
    ``own_targets``: the same chains with other target strings (a random control's own target);
    their target / non-target perplexities are added under ``own_target``."""
    cfg = cfg or PerplexityConfig()
    if masks is None:
        tok = token_nll(backbone, examples, cfg)
    elif mode != "stochastic":
        with masks.mode(mode):
            tok = token_nll(backbone, examples, cfg)
    else:
        runs = []
        for p in range(cfg.passes):
            with masks.mode("stochastic", torch.Generator(device=backbone.device).manual_seed(cfg.seed + p)):
                runs.append(token_nll(backbone, examples, cfg))
        tok = average_nll(runs)
    table = perplexity_table(tok)
    if own_targets is not None:
        own = perplexity_table(tok.retarget(own_targets))
        table["own_target"] = {k: own[k] for k in ("target", "non_target", "n_target", "n_non_target",
                                                    "kl_uniform_target", "kl_uniform_non_target")}
    return table
