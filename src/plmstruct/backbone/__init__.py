"""Backbones: ESM-2 (any size, HF layout or fair-esm .pt) and AntiBERTy, loaded offline."""

from plmstruct.backbone.device import autocast, best_device, lightning_precision
from plmstruct.backbone.loader import (
    DEFAULT_MODEL,
    ESM2_HUB_IDS,
    KNOWN_NAMES,
    default_model_dir,
    esm_config,
    esm_tokenizer,
    load_antiberty,
    load_backbone,
    save_backbone,
    tiny_esm,
)
from plmstruct.backbone.model import ATTENTION_MODULES, FFN_MODULES, STANDARD_AMINO_ACIDS, Backbone

__all__ = [
    "ATTENTION_MODULES", "DEFAULT_MODEL", "ESM2_HUB_IDS", "FFN_MODULES", "KNOWN_NAMES",
    "STANDARD_AMINO_ACIDS", "Backbone", "autocast", "best_device", "default_model_dir", "esm_config",
    "esm_tokenizer", "lightning_precision", "load_antiberty", "load_backbone", "save_backbone", "tiny_esm",
]
