"""The exported subnetwork: a deterministic binary mask (bit-packed, safetensors), the scores (for
stochastic evaluation) and a JSON config; loading, re-attaching, and applying it to a backbone.

Folder layout: ``mask.safetensors`` (``{key}`` -> packed uint8 bits, 1 = kept), ``scores.safetensors``
(float32 scores) and ``subnetwork.json`` (backbone, masked modules, shapes, run config, metrics).
``apply_mask`` multiplies the weights in place: the result is an ordinary model."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save

from plmstruct.backbone.model import Backbone
from plmstruct.errors import InputError
from plmstruct.io import atomic_write, atomic_write_text
from plmstruct.subnetworks.config import MaskConfig
from plmstruct.subnetworks.mask import MaskSet, parse_key

FORMAT = "plmstruct-subnetwork/1"
MASK_FILE, SCORES_FILE, CONFIG_FILE = "mask.safetensors", "scores.safetensors", "subnetwork.json"


@dataclass
class SubnetworkArtifact:
    """A loaded subnetwork: ``binary`` = {key: bool tensor (True = kept)}; ``scores`` may be None."""

    binary: dict[str, torch.Tensor]
    scores: dict[str, torch.Tensor] | None
    config: dict = field(default_factory=dict)
    #: the folder it was loaded from (None for an artifact built in memory)
    source: Path | None = None

    @property
    def backbone(self) -> str:
        return str(self.config.get("backbone", "default"))

    @property
    def name(self) -> str:
        return str(self.config.get("name", "subnetwork"))

    def removed_fraction(self) -> float:
        total = sum(b.numel() for b in self.binary.values())
        return 1.0 - sum(int(b.sum()) for b in self.binary.values()) / max(1, total)

    def mask_config(self) -> MaskConfig:
        layers = tuple(sorted({parse_key(k)[0] for k in self.binary}))
        modules = tuple(dict.fromkeys(parse_key(k)[1] for k in self.binary))
        return MaskConfig(modules=modules, layers=layers)


def _pack(mask: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.packbits(mask.numpy().astype(np.uint8).ravel()))


def _unpack(bits: torch.Tensor, shape: list[int]) -> torch.Tensor:
    n = math.prod(shape)
    return torch.from_numpy(np.unpackbits(bits.numpy())[:n].astype(bool)).reshape(shape)


def save_artifact(folder: Path, masks: MaskSet, config: dict, *, with_scores: bool = True) -> Path:
    """Write the artifact of ``masks`` to ``folder`` (each file atomically); returns ``folder``."""
    folder = Path(folder)
    binary = masks.binary()
    shapes = {k: list(v.shape) for k, v in binary.items()}
    packed = {k: _pack(v) for k, v in binary.items()}
    atomic_write(folder / MASK_FILE, lambda tmp: tmp.write_bytes(save(packed)))
    if with_scores:
        scores = masks.score_tensors()
        atomic_write(folder / SCORES_FILE, lambda tmp: tmp.write_bytes(save(scores)))
    bb = masks.backbone
    meta = {"format": FORMAT, **config, "family": bb.family, "num_layers": bb.num_layers,
            "hidden_size": bb.hidden_size, "shapes": shapes,
            "removed_fraction": 1.0 - sum(int(b.sum()) for b in binary.values()) / max(1, masks.numel())}
    atomic_write_text(folder / CONFIG_FILE, json.dumps(meta, indent=2))
    return folder


def load_artifact(folder: Path) -> SubnetworkArtifact:
    """Read an artifact folder (clear errors for a missing or foreign folder)."""
    folder = Path(folder)
    cfg_path = folder / CONFIG_FILE
    if not folder.is_dir():
        raise InputError("no such folder (expected a subnetwork artifact)", path=folder)
    if not cfg_path.is_file() or not (folder / MASK_FILE).is_file():
        raise InputError(f"not a subnetwork artifact (needs {CONFIG_FILE} and {MASK_FILE})", path=folder)
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"unreadable JSON ({err})", path=cfg_path) from err
    if config.get("format") != FORMAT:
        raise InputError(f"unknown artifact format {config.get('format')!r} (expected {FORMAT})", path=cfg_path)
    try:
        packed = load_file(str(folder / MASK_FILE))
        scores = load_file(str(folder / SCORES_FILE)) if (folder / SCORES_FILE).is_file() else None
    except Exception as err:  # safetensors raises its own error types for corrupt files
        raise InputError(f"unreadable safetensors file ({err})", path=folder) from err
    shapes = config.get("shapes", {})
    if set(shapes) != set(packed):
        raise InputError("mask keys do not match the config", path=folder)
    binary = {k: _unpack(packed[k], shapes[k]) for k in shapes}
    return SubnetworkArtifact(binary, scores, config, source=folder)


def _check_fits(artifact: SubnetworkArtifact, backbone: Backbone) -> None:
    for key, mask in artifact.binary.items():
        layer, module = parse_key(key)
        if layer >= backbone.num_layers:
            raise InputError(f"mask {key} needs layer {layer}, but {backbone.name} has {backbone.num_layers} layers")
        shape = tuple(backbone.linear(layer, module).weight.shape)
        if shape != tuple(mask.shape):
            raise InputError(f"mask {key} has shape {tuple(mask.shape)}, {backbone.name}'s weight {shape}: "
                             f"the mask was trained on another backbone ({artifact.backbone})")


def attach_artifact(artifact: SubnetworkArtifact, backbone: Backbone) -> MaskSet:
    """Attach the masks to ``backbone`` as parametrizations (deterministic mode; stochastic mode
    needs the stored scores, else it equals the binary mask)."""
    _check_fits(artifact, backbone)
    masks = MaskSet(backbone, artifact.mask_config())
    if artifact.scores is not None:
        masks.load_scores(artifact.scores)
    else:  # far from 0: stochastic samples equal the binary mask
        masks.load_scores({k: torch.where(b, 30.0, -30.0) for k, b in artifact.binary.items()})
    return masks


def apply_mask(artifact: SubnetworkArtifact, backbone: Backbone) -> Backbone:
    """Zero the removed weights of ``backbone`` in place (an ordinary model); returns it."""
    _check_fits(artifact, backbone)
    with torch.no_grad():
        for key, keep in artifact.binary.items():
            weight = backbone.linear(*parse_key(key)).weight
            weight.mul_(keep.to(weight.device, weight.dtype))
    return backbone
