"""`Backbone`: a masked-LM protein transformer (ESM-2 or BERT family) with its tokenizer.

Every method of plmstruct works on this one object: it names the encoder blocks and the linear
modules inside them the same way for both families, so wrappers (subnetwork masks, PST
extractors, adapters) never care which family they touch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from plmstruct.errors import InputError

STANDARD_AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
#: letters the ESM alphabet encodes as residues (20 standard + ambiguous/rare codes)
ESM_RESIDUE_LETTERS = STANDARD_AMINO_ACIDS + "XBUZO"

ATTENTION_MODULES = ("query", "key", "value", "output")
FFN_MODULES = ("intermediate", "ffn_output")


@dataclass
class Backbone:
    """A masked-LM protein transformer, its tokenizer and its family ("esm" or "bert").

    ``contact_head`` is true when the weights included a trained ESM contact-regression head (the
    HF ESM-2 checkpoints do); otherwise the model's ``contact_head`` is random and must not be used."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    family: str
    name: str
    contact_head: bool = False

    # ---- structure of the network -------------------------------------------------------
    @property
    def encoder(self) -> nn.Module:
        """The bare transformer (``EsmModel`` / ``BertModel``) without the LM head."""
        return self.model.esm if self.family == "esm" else self.model.bert

    @property
    def layers(self) -> nn.ModuleList:
        return self.encoder.encoder.layer

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def num_heads(self) -> int:
        return int(self.model.config.num_attention_heads)

    @property
    def max_residues(self) -> int:
        """Longest chain the model takes in one pass (positions minus the two special tokens)."""
        return int(self.model.config.max_position_embeddings) - 2

    @property
    def alphabet(self) -> str:
        """Residue letters this backbone encodes (anything else is an input error)."""
        return ESM_RESIDUE_LETTERS if self.family == "esm" else STANDARD_AMINO_ACIDS

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def linear(self, layer: int, module: str) -> nn.Linear:
        """One named linear of block ``layer``: query/key/value/output (attention) or
        intermediate/ffn_output (feed-forward). The names are the same for both families."""
        block = self.layers[layer]
        table = {
            "query": block.attention.self.query,
            "key": block.attention.self.key,
            "value": block.attention.self.value,
            "output": block.attention.output.dense,
            "intermediate": block.intermediate.dense,
            "ffn_output": block.output.dense,
        }
        if module not in table:
            raise KeyError(f"unknown module {module!r}; choose from {sorted(table)}")
        return table[module]

    def module_path(self, layer: int, module: str) -> str:
        """Dotted path (inside ``model``) of :meth:`linear` — what peft's target_modules wants."""
        prefix = f"{'esm' if self.family == 'esm' else 'bert'}.encoder.layer.{layer}"
        return prefix + {
            "query": ".attention.self.query", "key": ".attention.self.key",
            "value": ".attention.self.value", "output": ".attention.output.dense",
            "intermediate": ".intermediate.dense", "ffn_output": ".output.dense",
        }[module]

    def to(self, device: torch.device | str) -> Backbone:
        self.model.to(device)
        return self

    # ---- tokens -----------------------------------------------------------------------
    @property
    def residue_token_ids(self) -> torch.Tensor:
        """Token ids of the 20 standard amino acids (for random replacement and uniform targets)."""
        ids = self.tokenizer.convert_tokens_to_ids(list(STANDARD_AMINO_ACIDS))
        return torch.tensor(ids, dtype=torch.long)

    def validate(self, sequence: str, *, record: str | None = None, path: object | None = None) -> None:
        """Raise :class:`InputError` naming the first letter outside :attr:`alphabet`."""
        if not sequence:
            raise InputError("empty sequence", path=path, record=record)
        allowed = self.alphabet
        for i, ch in enumerate(sequence):
            if ch not in allowed:
                raise InputError(
                    f"letter {ch!r} is not a residue of the {self.name} alphabet ({allowed})",
                    path=path, record=record, position=i + 1,
                )

    def encode(self, sequences: Sequence[str], *, ids: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Validate and tokenize sequences into padded ``input_ids`` / ``attention_mask``.

        Sequences longer than :attr:`max_residues` are an error here: crop or split them first
        (:func:`plmstruct.data.fasta.fit_to_length`)."""
        for i, seq in enumerate(sequences):
            rec = ids[i] if ids is not None else f"#{i + 1}"
            self.validate(seq, record=rec)
            if len(seq) > self.max_residues:
                raise InputError(
                    f"sequence of {len(seq)} residues exceeds the model limit of {self.max_residues}; "
                    "crop or split it first", record=rec)
        return self.tokenize(sequences)

    def tokenize(self, sequences: Sequence[str]) -> dict[str, torch.Tensor]:
        """Map already-validated residue strings to ``<cls> residues <eos>`` ids, right-padded.

        Residues map one letter to one token id (no tokenizer normalisation can alter them)."""
        tok = self.tokenizer
        lookup = {ch: tok.convert_tokens_to_ids(ch) for ch in self.alphabet}
        width = max(len(s) for s in sequences) + 2
        input_ids = torch.full((len(sequences), width), tok.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            ids = [tok.cls_token_id, *(lookup[ch] for ch in seq), tok.sep_token_id if self.family == "bert"
                   else tok.eos_token_id]
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention_mask[row, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def special_tokens_mask(self, input_ids: torch.Tensor) -> torch.Tensor:
        """True where a token is not a residue (cls/eos/pad/...)."""
        special = torch.tensor(sorted(self.tokenizer.all_special_ids), device=input_ids.device)
        return torch.isin(input_ids, special)
