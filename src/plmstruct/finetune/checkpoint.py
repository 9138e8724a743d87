"""Save / load a fine-tuned secondary-structure model: small safetensors + a JSON config.

Folder layout: ``config.json`` (backbone spec, states, tuner, head), ``head.safetensors``, and
``tuner.safetensors`` with only what the method changed in the backbone (the peft adapter weights;
the whole encoder for ``full``; nothing for ``features``)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from plmstruct.backbone.model import Backbone
from plmstruct.errors import InputError
from plmstruct.finetune.head import HeadConfig
from plmstruct.finetune.model import SSModel
from plmstruct.finetune.tuners import PEFT_METHODS, TunerConfig
from plmstruct.io import atomic_write, atomic_write_text

FORMAT = "plmstruct-ss/1"


def tuner_state(model: SSModel) -> dict[str, torch.Tensor]:
    """The backbone weights the method owns (adapter tensors, all encoder weights, or none)."""
    if model.tuner.method in PEFT_METHODS:
        if model.peft_model is None:
            raise ValueError("the tuner is merged: save before merging")
        from peft import get_peft_model_state_dict

        return get_peft_model_state_dict(model.peft_model)
    if model.tuner.method == "full":
        return dict(model.encoder.state_dict())
    return {}


def save_ss_model(model: SSModel, folder: Path, *, backbone_spec: str, extra: dict | None = None) -> None:
    """Write the model to ``folder`` (each file atomically)."""
    folder = Path(folder)
    config = {"format": FORMAT, "backbone": backbone_spec, "backbone_name": model.backbone.name,
              "n_states": model.n_states, "states": model.states, "tuner": model.tuner.to_dict(),
              "head": model.head.cfg.to_dict(), **(extra or {})}

    def tensors(d: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.detach().contiguous().cpu() for k, v in d.items()}

    state = tensors(tuner_state(model))
    if state:
        atomic_write(folder / "tuner.safetensors", lambda tmp: save_file(state, str(tmp)))
    head = tensors(model.head.state_dict())
    atomic_write(folder / "head.safetensors", lambda tmp: save_file(head, str(tmp)))
    atomic_write_text(folder / "config.json", json.dumps(config, indent=2) + "\n")


def read_config(folder: Path) -> dict:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("no such folder (expected a fine-tuned model folder)", path=folder)
    path = folder / "config.json"
    if not path.is_file():
        raise InputError("not a fine-tuned model folder (config.json missing)", path=folder)
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"config.json is not valid JSON ({err})", path=path) from err
    if config.get("format") != FORMAT:
        raise InputError(f"unknown model format {config.get('format')!r} (expected {FORMAT})", path=path)
    return config


def load_ss_model(folder: Path, *, backbone: Backbone | None = None) -> SSModel:
    """Rebuild the model saved in ``folder`` (the backbone is loaded from the saved spec unless given;
    it is modified in place by the tuner)."""
    from plmstruct.backbone import load_backbone

    folder = Path(folder)
    config = read_config(folder)
    backbone = backbone or load_backbone(config["backbone"])
    tuner = TunerConfig.from_dict(config["tuner"])
    model = SSModel(backbone, config["n_states"], tuner, HeadConfig(**{"input_norm": False, **config["head"]}))
    model.head.load_state_dict(load_file(str(folder / "head.safetensors")))
    if (folder / "tuner.safetensors").exists():
        state = load_file(str(folder / "tuner.safetensors"))
        if tuner.method in PEFT_METHODS:
            from peft import set_peft_model_state_dict

            result = set_peft_model_state_dict(model.peft_model, state)
            if getattr(result, "unexpected_keys", None):
                raise InputError(f"adapter weights do not fit the model: {result.unexpected_keys[:3]}",
                                 path=folder / "tuner.safetensors")
        else:
            model.encoder.load_state_dict(state)
    return model.eval()
