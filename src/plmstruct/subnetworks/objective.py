"""The subnetwork objective on the masked model's token distribution p_sub.

- suppression = KL(p_sub || uniform) averaged over target positions;
- maintenance = KL(p_sub || p_orig) averaged over non-target positions, and the masked-LM
  cross-entropy on the masked non-target positions;
- sparsity = mean keep-probability of the mask (passed in; weight 0 by default).

The KL terms use the distribution over the 20 standard residues (renormalised), so "uniform"
means "no idea which amino acid", not mass on special tokens. They are taken at every labelled
position of the same masked-LM input the cross-entropy uses (one forward of the masked model per
step; the published code runs a second forward on the unmasked sequence). By default
(``kl_positions="masked"``) they are restricted to the masked positions, where a prediction is
actually made from context."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from plmstruct.data.secondary_structure import IGNORE_INDEX
from plmstruct.subnetworks.config import ObjectiveConfig


@dataclass
class ObjectiveTerms:
    total: torch.Tensor
    suppression: torch.Tensor
    maintenance_kl: torch.Tensor
    mlm: torch.Tensor
    sparsity: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        return {k: float(v.detach()) for k, v in self.__dict__.items()}


def residue_log_probs(logits: torch.Tensor, residue_ids: torch.Tensor) -> torch.Tensor:
    """Log-probabilities over the residue tokens only, ``(..., 20)``."""
    return torch.log_softmax(logits[..., residue_ids.to(logits.device)].float(), dim=-1)


def kl_to_uniform(logp: torch.Tensor) -> torch.Tensor:
    """KL(p || uniform) per position from log-probabilities ``(..., K)``."""
    return (logp.exp() * logp).sum(-1) + math.log(logp.shape[-1])


def kl_divergence(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per position from log-probabilities."""
    return (logp.exp() * (logp - logq)).sum(-1)


def _mean(values: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    if not bool(where.any()):
        return values.new_zeros(())
    return values[where].mean()


def subnetwork_objective(logits_sub: torch.Tensor, logits_orig: torch.Tensor | None, batch: dict[str, torch.Tensor],
                         sparsity: torch.Tensor, weights: ObjectiveConfig, residue_ids: torch.Tensor) -> ObjectiveTerms:
    """All terms for one batch. ``logits_sub``/``logits_orig``: ``(B, T, V)`` (``logits_orig`` may be
    None when the batch has no non-target position); ``batch`` holds ``target``, ``other`` and
    ``labels`` (masked-LM labels, ``IGNORE_INDEX`` elsewhere)."""
    target, other, labels = batch["target"], batch["other"], batch["labels"]
    masked = labels != IGNORE_INDEX
    if weights.kl_positions == "masked":
        target, other = target & masked, other & masked
    elif weights.kl_positions != "all":
        raise ValueError("kl_positions must be 'masked' or 'all'")
    logp_sub = residue_log_probs(logits_sub, residue_ids)
    suppression = _mean(kl_to_uniform(logp_sub), target)
    if logits_orig is not None and bool(other.any()):
        logp_orig = residue_log_probs(logits_orig, residue_ids)
        maintenance = kl_divergence(logp_sub[other], logp_orig[other]).mean()
    else:
        maintenance = logp_sub.new_zeros(())
    chosen = batch["other"] & masked
    if bool(chosen.any()):
        mlm = torch.nn.functional.cross_entropy(logits_sub[chosen].float(), labels[chosen])
    else:
        mlm = logp_sub.new_zeros(())
    total = (weights.suppression * suppression + weights.maintenance * maintenance + weights.mlm * mlm
             + weights.sparsity * sparsity)
    return ObjectiveTerms(total, suppression, maintenance, mlm, sparsity)
