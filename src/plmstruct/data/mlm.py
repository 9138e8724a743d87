"""Masked-language-model inputs: 15% of residues, 80% -> mask, 10% -> random residue, 10% kept
(training); for evaluation every chosen residue becomes ``<mask>`` (:data:`EVAL_MASKING`), so a
perplexity never scores a residue the model can see.

Masking draws from a per-item seed (see :mod:`plmstruct.training.sampling`), so a batch is the
same whatever the global RNG state — the basis of exact resume and of fixed-seed evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from plmstruct.data.secondary_structure import IGNORE_INDEX


@dataclass(frozen=True)
class MaskingConfig:
    probability: float = 0.15
    mask_fraction: float = 0.8
    random_fraction: float = 0.1


#: evaluation masking: 15% of residues, all replaced by ``<mask>`` (what masked-token perplexity measures)
EVAL_MASKING = MaskingConfig(mask_fraction=1.0, random_fraction=0.0)


def mask_tokens(input_ids: torch.Tensor, maskable: torch.Tensor, *, mask_token_id: int,
                residue_token_ids: torch.Tensor, generator: torch.Generator,
                cfg: MaskingConfig = MaskingConfig()) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(masked_input_ids, labels)`` for one sequence (1-D) or a batch.

    ``maskable`` marks real residues; at least one residue is chosen per sequence. Labels are the
    original ids at chosen positions and ``IGNORE_INDEX`` elsewhere."""
    u = torch.rand(input_ids.shape, generator=generator)
    chosen = (u < cfg.probability) & maskable
    if input_ids.dim() == 1 and not chosen.any() and maskable.any():
        first = torch.nonzero(maskable).flatten()
        chosen[first[torch.randint(len(first), (1,), generator=generator)]] = True
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    action = torch.rand(input_ids.shape, generator=generator)
    to_mask = chosen & (action < cfg.mask_fraction)
    to_random = chosen & (action >= cfg.mask_fraction) & (action < cfg.mask_fraction + cfg.random_fraction)
    out = input_ids.clone()
    out[to_mask] = mask_token_id
    random_ids = residue_token_ids[torch.randint(len(residue_token_ids), input_ids.shape, generator=generator)]
    out[to_random] = random_ids[to_random]
    return out, labels


def random_crop(sequence: str, max_len: int, generator: torch.Generator) -> tuple[int, str]:
    """A random window of at most ``max_len`` residues: ``(start, subsequence)``."""
    if len(sequence) <= max_len:
        return 0, sequence
    start = int(torch.randint(len(sequence) - max_len + 1, (1,), generator=generator))
    return start, sequence[start: start + max_len]
