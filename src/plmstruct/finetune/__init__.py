"""Lightweight fine-tuning for secondary structure: tuners in the top blocks + a conv head."""

from plmstruct.finetune.checkpoint import load_ss_model, save_ss_model
from plmstruct.finetune.head import ConvHead, HeadConfig
from plmstruct.finetune.model import SSModel
from plmstruct.finetune.tuners import METHODS, TunerConfig, apply_tuner, top_layers

__all__ = ["METHODS", "ConvHead", "HeadConfig", "SSModel", "TunerConfig", "apply_tuner", "load_ss_model",
           "save_ss_model", "top_layers"]
