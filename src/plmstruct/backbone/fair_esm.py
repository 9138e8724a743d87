"""Convert a fair-esm ESM-2 checkpoint (``esm2_t*_UR50D.pt``) to the Hugging Face layout.

Read with ``torch.load(weights_only=True)``: no arbitrary pickle. The architecture is read off
the tensors (layers, width); the head count comes from the checkpoint's ``cfg["model"]`` when
present, else from the published ESM-2 family table. Key names follow fair-esm's
``esm/model/esm2.py`` after its ``upgrade_state_dict`` (prefixes ``encoder.sentence_encoder.`` and
``encoder.`` removed). The rotary ``inv_freq`` buffers are carried over, not recomputed: the
published models were trained with fp16-rounded frequencies, and recomputing them changes the
outputs (see transformers' ``convert_esm.py``). The contact-regression head ships in a separate
fair-esm file (``<name>-contact-regression.pt``), read when it lies beside the checkpoint.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch
from transformers import EsmForMaskedLM

from plmstruct.backbone.kernels import use_fast_kernels
from plmstruct.backbone.loader import esm_config, esm_tokenizer, has_contact_head, load_weights
from plmstruct.backbone.model import Backbone
from plmstruct.errors import InputError

#: (layers, width) -> attention heads of the published ESM-2 models
ESM2_HEADS = {(6, 320): 20, (12, 480): 20, (30, 640): 20, (33, 1280): 20, (36, 2560): 40, (48, 5120): 40}

_LAYER_MAP = {
    "self_attn.q_proj": "attention.self.query",
    "self_attn.k_proj": "attention.self.key",
    "self_attn.v_proj": "attention.self.value",
    "self_attn.out_proj": "attention.output.dense",
    "self_attn_layer_norm": "attention.LayerNorm",
    "fc1": "intermediate.dense",
    "fc2": "output.dense",
    "final_layer_norm": "LayerNorm",
}
_TOP_MAP = {
    "embed_tokens.weight": "esm.embeddings.word_embeddings.weight",
    "emb_layer_norm_after.weight": "esm.encoder.emb_layer_norm_after.weight",
    "emb_layer_norm_after.bias": "esm.encoder.emb_layer_norm_after.bias",
    "contact_head.regression.weight": "esm.contact_head.regression.weight",
    "contact_head.regression.bias": "esm.contact_head.regression.bias",
    "lm_head.dense.weight": "lm_head.dense.weight",
    "lm_head.dense.bias": "lm_head.dense.bias",
    "lm_head.layer_norm.weight": "lm_head.layer_norm.weight",
    "lm_head.layer_norm.bias": "lm_head.layer_norm.bias",
    "lm_head.bias": "lm_head.bias",
}
_PREFIX = re.compile(r"^(encoder\.sentence_encoder\.|encoder\.)")
_LAYER_KEY = re.compile(r"^layers\.(\d+)\.(.+)\.(weight|bias)$")
_INV_FREQ_KEY = re.compile(r"^layers\.(\d+)\.self_attn\.rot_emb\.inv_freq$")
#: where transformers keeps the rotary frequencies: once per model (v5) or per layer (v4; v5 maps
#: this old per-layer name to the new one when loading)
HF_INV_FREQ = "esm.rotary_embeddings.inv_freq"
HF_LAYER_INV_FREQ = "esm.encoder.layer.{}.attention.self.rotary_embeddings.inv_freq"


def fair_esm_to_hf_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename fair-esm ESM-2 parameters to ``EsmForMaskedLM`` names (rotary frequencies under the
    per-layer name, which every transformers version accepts)."""
    out: dict[str, torch.Tensor] = {}
    for raw_key, tensor in state.items():
        key = _PREFIX.sub("", raw_key)
        if key == "lm_head.weight":
            continue  # tied to the token embedding
        freq = _INV_FREQ_KEY.match(key)
        if freq is not None:
            out[HF_LAYER_INV_FREQ.format(freq.group(1))] = tensor
            continue
        if key in _TOP_MAP:
            out[_TOP_MAP[key]] = tensor
            continue
        match = _LAYER_KEY.match(key)
        if match is None or match.group(2) not in _LAYER_MAP:
            raise InputError(f"unexpected parameter {raw_key!r}: not a fair-esm ESM-2 checkpoint")
        layer, name, kind = match.groups()
        out[f"esm.encoder.layer.{layer}.{_LAYER_MAP[name]}.{kind}"] = tensor
    return out


def _heads_from_cfg(data: object) -> int | None:
    """``cfg["model"].encoder_attention_heads`` of a fair-esm checkpoint, if it has one."""
    cfg = data.get("cfg") if isinstance(data, dict) else None
    model_cfg = cfg.get("model") if isinstance(cfg, dict) else None
    heads = getattr(model_cfg, "encoder_attention_heads", None)
    if heads is None and isinstance(model_cfg, dict):
        heads = model_cfg.get("encoder_attention_heads")
    return int(heads) if heads else None


def _read_checkpoint(path: Path) -> tuple[object, dict[str, torch.Tensor]]:
    """The unpickled file (weights only) and its ``model`` state dict."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise InputError(f"cannot read as a weights-only torch checkpoint ({err.__class__.__name__}: "
                         f"{str(err).splitlines()[0][:200]})", path=path) from err
    state = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not state:
        raise InputError("no 'model' state dict in the checkpoint", path=path)
    return data, state


def load_fair_esm_checkpoint(path: Path) -> Backbone:
    """Load ``esm2_t*_UR50D.pt`` as an HF ``EsmForMaskedLM`` backbone, with the contact-regression
    head from ``esm2_t*_UR50D-contact-regression.pt`` beside it when that file exists (as fair-esm)."""
    if not path.is_file():
        raise InputError("no such checkpoint file" if not path.exists() else "not a file", path=path)
    data, state = _read_checkpoint(path)
    regression = path.with_name(f"{path.stem}-contact-regression.pt")  # fair-esm's name for the head
    if regression.is_file():
        state = state | _read_checkpoint(regression)[1]
    hf_state = fair_esm_to_hf_state(state)
    if "esm.embeddings.word_embeddings.weight" not in hf_state or not any(
            k.startswith("esm.encoder.layer.") for k in hf_state):
        raise InputError("not a fair-esm ESM-2 checkpoint (no token embedding or no layers)", path=path)
    layers = 1 + max(int(k.split(".")[3]) for k in hf_state if k.startswith("esm.encoder.layer."))
    width = hf_state["esm.embeddings.word_embeddings.weight"].shape[1]
    heads = _heads_from_cfg(data) or ESM2_HEADS.get((layers, width))
    if heads is None:
        raise InputError(f"unknown ESM-2 size ({layers} layers, width {width}) and no cfg in the checkpoint; "
                         f"known: {sorted(ESM2_HEADS)}", path=path)
    model = EsmForMaskedLM(esm_config(layers, width, heads))
    if HF_INV_FREQ in model.state_dict():  # transformers 5: one shared buffer (all layers are equal)
        freqs = [hf_state.pop(HF_LAYER_INV_FREQ.format(i)) for i in range(layers)
                 if HF_LAYER_INV_FREQ.format(i) in hf_state]
        if freqs:
            hf_state[HF_INV_FREQ] = freqs[0]
    missing, unexpected = load_weights(model, hf_state, path=path)
    if missing or unexpected:
        raise InputError(f"checkpoint does not fit ESM-2: missing={missing[:5]} unexpected={unexpected[:5]}",
                         path=path)
    model.tie_weights()
    use_fast_kernels(model)
    model.eval()
    return Backbone(model=model, tokenizer=esm_tokenizer(), family="esm", name=path.stem,
                    contact_head=has_contact_head(hf_state))
