"""`SSModel`: a backbone (with its tuner) + the conv head, per-residue logits for 3/8/9 states."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from plmstruct.backbone.model import Backbone
from plmstruct.data.secondary_structure import STATES
from plmstruct.finetune.head import ConvHead, HeadConfig
from plmstruct.finetune.tuners import TunerConfig, apply_tuner, merge_tuner


def lenient_tokenize(backbone: Backbone, sequences: Sequence[str]) -> dict[str, torch.Tensor]:
    """Like :meth:`Backbone.tokenize`, but letters outside the backbone alphabet (X, U, Z in the
    benchmark files; any of them for AntiBERTy's 20-letter alphabet) become the unknown token.
    For user input use :meth:`Backbone.validate` first (unknown letters are then an error)."""
    allowed = set(backbone.alphabet)
    enc = backbone.tokenize(["".join(c if c in allowed else backbone.alphabet[0] for c in s) for s in sequences])
    for row, seq in enumerate(sequences):
        unknown = [i + 1 for i, c in enumerate(seq) if c not in allowed]
        if unknown:
            enc["input_ids"][row, unknown] = backbone.tokenizer.unk_token_id
    return enc


def residue_states(hidden: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the leading special token: ``(B, T, H)`` token states -> ``(B, T - 2, H)`` residue states
    and the residue mask (position < length)."""
    states = hidden[:, 1:-1]
    mask = torch.arange(states.shape[1], device=hidden.device)[None, :] < lengths[:, None]
    return states, mask


class SSModel(nn.Module):
    """Backbone encoder (tuned as ``tuner`` says) + :class:`ConvHead`."""

    def __init__(self, backbone: Backbone, n_states: int, tuner: TunerConfig | None = None,
                 head: HeadConfig | None = None) -> None:
        super().__init__()
        if n_states not in STATES:
            raise ValueError("n_states must be 3, 8 or 9")
        self.backbone = backbone
        self.tuner = tuner or TunerConfig()
        self.n_states = n_states
        # kept outside the module tree: its parameters are the encoder's (no duplicate state)
        self.__dict__["peft_model"] = apply_tuner(backbone, self.tuner)
        self.encoder = backbone.encoder
        self.head = ConvHead(backbone.hidden_size, n_states, head)
        self.merged = False

    @property
    def states(self) -> str:
        return STATES[self.n_states]

    def trainable_backbone_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.encoder.parameters() if p.requires_grad]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, T - 2, n_states)`` aligned with the residues (padding beyond each length)."""
        lengths = attention_mask.sum(1) - 2
        frozen = not any(p.requires_grad for p in self.encoder.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
        states, mask = residue_states(hidden, lengths)
        return self.head(states, mask)

    def merge(self) -> bool:
        """Fold a LoRA/IA3 tuner into the backbone weights for inference (see :func:`merge_tuner`)."""
        if not self.merged:
            self.merged = merge_tuner(self.peft_model, self.tuner)
            if self.merged:
                self.__dict__["peft_model"] = None
        return self.merged
