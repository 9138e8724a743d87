"""Load a backbone by name, hub id, local directory or fair-esm ``.pt`` checkpoint — offline.

Names: ``default`` (the small ESM-2 committed inside this package), ``antiberty`` (real
pretrained antibody BERT from the ``antiberty`` package), ``tiny-esm`` (random, for shape tests),
a Hugging Face id such as ``facebook/esm2_t6_8M_UR50D`` (read from the HF cache; with
``HF_HUB_OFFLINE=1`` nothing is downloaded), a local directory in HF layout, or a fair-esm
``esm2_t*_UR50D.pt`` file (converted on the fly, see :mod:`plmstruct.backbone.fair_esm`).
"""

from __future__ import annotations

import importlib.util
import os
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    BertConfig,
    BertForMaskedLM,
    BertTokenizer,
    EsmConfig,
    EsmForMaskedLM,
    EsmTokenizer,
)

from plmstruct.backbone.kernels import use_fast_kernels
from plmstruct.backbone.model import Backbone
from plmstruct.errors import InputError

DEFAULT_MODEL = "default"
KNOWN_NAMES = ("default", "antiberty", "tiny-esm")
ESM2_HUB_IDS = tuple(
    f"facebook/esm2_{s}_UR50D"
    for s in ("t6_8M", "t12_35M", "t30_150M", "t33_650M", "t36_3B", "t48_15B")
)


def esm_tokenizer() -> EsmTokenizer:
    """The 33-token ESM alphabet, built from the vocabulary shipped in this package."""
    vocab = resources.files("plmstruct.backbone") / "esm_vocab.txt"
    with resources.as_file(vocab) as path:
        return EsmTokenizer(vocab_file=str(path))


def default_model_dir() -> Path:
    """Folder of the embedded default model (config.json, model.safetensors, README.md card)."""
    return Path(str(resources.files("plmstruct.backbone") / "weights" / "default"))


def esm_config(num_layers: int, hidden_size: int, num_heads: int, *, max_residues: int = 1024,
               intermediate_size: int | None = None) -> EsmConfig:
    """An ESM-2 architecture config (rotary, pre-LN, token dropout) of the given size."""
    return EsmConfig(
        vocab_size=33, mask_token_id=32, pad_token_id=1, hidden_size=hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads,
        intermediate_size=intermediate_size or 4 * hidden_size, hidden_act="gelu",
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        max_position_embeddings=max_residues + 2, position_embedding_type="rotary",
        layer_norm_eps=1e-5, emb_layer_norm_before=False, token_dropout=True,
        is_folding_model=False, tie_word_embeddings=True,
    )


def tiny_esm(seed: int = 0, *, num_layers: int = 2, hidden_size: int = 32, num_heads: int = 4,
             max_residues: int = 256) -> Backbone:
    """A randomly initialised, tiny ESM-2 — for tests that only need shapes."""
    torch.manual_seed(seed)
    model = EsmForMaskedLM(esm_config(num_layers, hidden_size, num_heads, max_residues=max_residues))
    use_fast_kernels(model)
    model.eval()
    return Backbone(model=model, tokenizer=esm_tokenizer(), family="esm", name="tiny-esm")


def _antiberty_dir() -> Path:
    spec = importlib.util.find_spec("antiberty")
    if spec is None or spec.origin is None:
        raise InputError("backbone 'antiberty' needs the package: pip install --no-deps antiberty==0.1.3")
    return Path(spec.origin).parent / "trained_models"


def load_antiberty() -> Backbone:
    """AntiBERTy (Ruffolo et al. 2021; MIT) as a ``BertForMaskedLM`` with real pretrained weights.

    Its own runner does not work with current transformers; its checkpoint is a BERT with extra
    species/chain heads, of which we keep the ``bert.*`` encoder and the ``cls.predictions.*`` LM head."""
    root = _antiberty_dir()
    raw = AutoConfig.for_model(**{k: v for k, v in _read_json(root / "AntiBERTy_md_smooth" / "config.json").items()
                                  if k not in ("architectures", "_name_or_path", "transformers_version")})
    config = BertConfig(**raw.to_dict())
    state = torch.load(root / "AntiBERTy_md_smooth" / "pytorch_model.bin", map_location="cpu", weights_only=True)
    keep = {k: v for k, v in state.items()
            if (k.startswith("bert.") and not k.startswith("bert.pooler")) or k.startswith("cls.predictions.")}
    keep.pop("bert.embeddings.position_ids", None)
    check_finite(keep, path=root / "AntiBERTy_md_smooth" / "pytorch_model.bin")
    model = BertForMaskedLM(config)
    missing, unexpected = model.load_state_dict(keep, strict=False)
    missing = [k for k in missing if k != "cls.predictions.decoder.bias"]
    if missing or unexpected:
        raise RuntimeError(f"AntiBERTy checkpoint mismatch: missing={missing} unexpected={unexpected}")
    model.tie_weights()
    use_fast_kernels(model)
    model.eval()
    tokens = (root / "vocab.txt").read_text().split()
    tokenizer = BertTokenizer(vocab={tok: i for i, tok in enumerate(tokens)}, do_lower_case=False)
    return Backbone(model=model, tokenizer=tokenizer, family="bert", name="antiberty")


#: parameters a checkpoint may lack: recomputed buffers, weights tied to the token embedding, and
#: ESM's contact-regression head (shipped separately by fair-esm; see :func:`has_contact_head`)
_MAY_BE_MISSING = ("position_ids", "inv_freq", "lm_head.decoder.weight", "cls.predictions.decoder.weight",
                   "cls.predictions.decoder.bias")


def _really_missing(keys: list[str]) -> list[str]:
    return [k for k in keys if not k.endswith(_MAY_BE_MISSING) and "contact_head" not in k]


def has_contact_head(keys: object) -> bool:
    """Whether a checkpoint's parameter names include ESM's contact-regression weights."""
    return any(str(k).endswith("contact_head.regression.weight") for k in keys)


def check_finite(tensors: dict[str, torch.Tensor], *, path: object | None = None) -> None:
    """Raise :class:`InputError` naming the first floating-point tensor with NaN or infinite values."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise InputError(f"weights contain NaN or infinite values ({bad} in {name!r}): corrupt or "
                             "diverged checkpoint", path=path)


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], *, path: object | None = None
                 ) -> tuple[list[str], list[str]]:
    """``model.load_state_dict(state, strict=False)`` after :func:`check_finite`; a tensor whose shape
    does not fit (a checkpoint of another backbone) is an :class:`InputError`. Returns
    ``(missing, unexpected)`` with the legitimately absent keys already removed from ``missing``."""
    check_finite(state, path=path)
    expected = model.state_dict()
    for key, tensor in state.items():
        if key in expected and tuple(expected[key].shape) != tuple(tensor.shape):
            raise InputError(f"weights are from another backbone: {key!r} has shape {tuple(tensor.shape)}, "
                             f"this architecture needs {tuple(expected[key].shape)}", path=path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    return _really_missing(list(missing)), list(unexpected)


def _read_json(path: Path) -> dict:
    import json

    return json.loads(path.read_text())


def _from_hf_dir_or_id(spec: str) -> Backbone:
    local = Path(spec).expanduser()
    is_dir = local.is_dir()
    if not local.exists() and spec.startswith(("/", "./", "../", "~")):  # a path, never a hub id
        raise InputError("no such model folder or checkpoint file", path=spec)
    if local.is_file():
        raise InputError("a backbone is a model folder (config.json + model.safetensors), a fair-esm .pt "
                         "file, a hub id or a known name, not a single file", path=spec)
    try:
        config = AutoConfig.from_pretrained(str(local) if is_dir else spec, local_files_only=is_dir or None)
    except OSError as err:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = (" (HF_HUB_OFFLINE=1 is set: the model must already be in the Hugging Face cache)"
                if offline else "")
        raise InputError(f"cannot load backbone {spec!r}: not a local model folder and not found on the "
                         f"hub or in the cache{hint}; known names: {', '.join(KNOWN_NAMES)}") from err
    source = str(local) if is_dir else spec
    if config.model_type == "esm":
        model_class, family = EsmForMaskedLM, "esm"
    elif config.model_type == "bert":
        model_class, family = BertForMaskedLM, "bert"
    else:
        raise InputError(f"backbone {spec!r} is a {config.model_type!r} model; plmstruct supports esm and bert")
    try:
        model, info = model_class.from_pretrained(source, output_loading_info=True)
    except RuntimeError as err:  # size mismatch: weights of another backbone under this config
        raise InputError(f"weights do not fit the config (a checkpoint of another backbone?): "
                         f"{str(err).splitlines()[0][:300]}", path=source) from err
    contact_head = family == "esm" and not has_contact_head(info.get("missing_keys", []))
    missing = _really_missing(list(info.get("missing_keys", [])))
    if missing or info.get("mismatched_keys"):
        raise InputError(f"weights do not fit the config (a checkpoint of another backbone?): "
                         f"missing={missing[:5]} mismatched={list(info.get('mismatched_keys', []))[:5]}",
                         path=source)
    check_finite(model.state_dict(), path=source)
    tokenizer = esm_tokenizer() if family == "esm" else BertTokenizer.from_pretrained(source, do_lower_case=False)
    use_fast_kernels(model)
    model.eval()
    return Backbone(model=model, tokenizer=tokenizer, family=family, name=local.name if is_dir else spec,
                    contact_head=contact_head)


def load_default() -> Backbone:
    """The small ESM-2 pretrained by ``plmstruct pretrain`` and committed in the package."""
    folder = default_model_dir()
    if not (folder / "model.safetensors").exists():
        raise InputError(f"the embedded default model is missing from {folder}; run `plmstruct pretrain`")
    return load_esm_dir(folder, name="default")


def load_esm_dir(folder: Path, *, name: str | None = None) -> Backbone:
    """An ESM-2 stored as ``config.json`` + ``model.safetensors`` (safetensors only: no pickle)."""
    config = EsmConfig.from_pretrained(str(folder))
    model = EsmForMaskedLM(config)
    state = load_file(str(folder / "model.safetensors"))
    missing, unexpected = load_weights(model, state, path=folder / "model.safetensors")
    if missing or unexpected:
        raise InputError(f"weights do not match the config: missing={missing[:5]} unexpected={unexpected[:5]}",
                         path=folder)
    model.tie_weights()
    use_fast_kernels(model)
    model.eval()
    return Backbone(model=model, tokenizer=esm_tokenizer(), family="esm", name=name or folder.name,
                    contact_head=has_contact_head(state))


def load_backbone(spec: str = DEFAULT_MODEL, *, device: str | torch.device | None = None) -> Backbone:
    """Load a backbone by name, hub id, HF folder or fair-esm ``.pt`` file (see module docs)."""
    if spec == "default":
        backbone = load_default()
    elif spec == "antiberty":
        backbone = load_antiberty()
    elif spec == "tiny-esm":
        backbone = tiny_esm()
    elif spec.endswith(".pt"):
        from plmstruct.backbone.fair_esm import load_fair_esm_checkpoint

        backbone = load_fair_esm_checkpoint(Path(spec))
    else:
        backbone = _from_hf_dir_or_id(spec)
    if device is not None:
        backbone.to(device)
    return backbone


def save_backbone(backbone: Backbone, folder: Path) -> None:
    """Write ``config.json`` + ``model.safetensors`` (+ tokenizer files) in HF layout; an untrained
    contact head is left out, so that reloading the folder does not take it for a trained one."""
    folder.mkdir(parents=True, exist_ok=True)
    state = None if backbone.contact_head else {
        k: v for k, v in backbone.model.state_dict().items() if "contact_head" not in k}
    backbone.model.save_pretrained(str(folder), safe_serialization=True, state_dict=state)
    backbone.tokenizer.save_pretrained(str(folder))
