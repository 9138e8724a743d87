"""The learned binary mask: a binary-concrete (logistic-noise) relaxation hard-thresholded with a
straight-through gradient, attached to chosen linear weights as a ``torch.nn.utils.parametrize``
parametrization (``linear.weight`` becomes ``original * mask``; ``forward`` is never patched).

One real-valued score ``s`` per weight. Modes (shared by every mask of a :class:`MaskSet`):

- ``train``: ``soft = sigmoid((s + log u - log(1 - u)) / tau)``, ``u ~ U(0, 1)``; the forward uses
  ``hard = soft > 0.5`` and the backward the gradient of ``soft`` (straight-through);
- ``stochastic``: ``hard = s + logistic noise > 0`` (the same distribution as ``train``'s forward;
  ``tau`` does not change a hard sample), drawn from the state's generator (seeded passes);
- ``deterministic``: ``hard = s > 0`` — the exported binary mask;
- ``off``: the original weight (the reference model inside the same module).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from plmstruct.backbone.model import Backbone
from plmstruct.subnetworks.config import MaskConfig

MODES = ("train", "stochastic", "deterministic", "off")
_EPS = 1e-6


@dataclass
class MaskState:
    """Mode, temperature and noise generator shared by the masks of one :class:`MaskSet`."""

    mode: str = "deterministic"
    tau: float = 1.0
    generator: torch.Generator | None = None


class _StraightThrough(torch.autograd.Function):
    """Forward: ``soft > 0.5`` as 0/1; backward: the incoming gradient unchanged."""

    @staticmethod
    def forward(ctx, soft: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return (soft > 0.5).to(soft.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return grad


def logistic_noise(shape: torch.Size, *, generator: torch.Generator | None = None,
                   device: torch.device | None = None) -> torch.Tensor:
    """``log u - log(1 - u)`` with ``u ~ U(eps, 1 - eps)``."""
    u = torch.rand(shape, generator=generator, device=device).clamp_(_EPS, 1 - _EPS)
    return torch.log(u) - torch.log1p(-u)


def relaxed_hard_mask(scores: torch.Tensor, tau: float, noise: torch.Tensor) -> torch.Tensor:
    """The training mask: hard 0/1 values with the gradient of ``sigmoid((scores + noise) / tau)``."""
    return _StraightThrough.apply(torch.sigmoid((scores + noise) / tau))


class BinaryConcreteMask(nn.Module):
    """Parametrization ``weight -> weight * mask(scores)`` (see the module docstring)."""

    def __init__(self, shape: torch.Size, init_score: float, state: MaskState) -> None:
        super().__init__()
        self.scores = nn.Parameter(torch.full(tuple(shape), float(init_score)))
        self.state = state

    def mask(self) -> torch.Tensor:
        """The current mask (0/1 values; differentiable in ``train`` mode)."""
        mode, s = self.state.mode, self.scores
        if mode == "train":
            return relaxed_hard_mask(s, self.state.tau, logistic_noise(s.shape, device=s.device))
        if mode == "stochastic":
            noise = logistic_noise(s.shape, generator=self.state.generator, device=s.device)
            return (s.detach() + noise > 0).to(s.dtype)
        if mode == "deterministic":
            return (s.detach() > 0).to(s.dtype)
        return torch.ones_like(s.detach())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.state.mode == "off":
            return weight
        return weight * self.mask().to(weight.dtype)


def mask_key(layer: int, module: str) -> str:
    """Name of one mask in artifacts and reports: ``layer3.query``."""
    return f"layer{layer}.{module}"


def parse_key(key: str) -> tuple[int, str]:
    """Inverse of :func:`mask_key`."""
    layer, module = key.split(".", 1)
    return int(layer.removeprefix("layer")), module


class MaskSet:
    """Masks on the chosen linears of one backbone (frozen: only the scores require gradients)."""

    def __init__(self, backbone: Backbone, cfg: MaskConfig | None = None) -> None:
        self.backbone = backbone
        self.cfg = cfg or MaskConfig()
        self.state = MaskState()
        backbone.model.requires_grad_(False)
        self.masks: dict[str, BinaryConcreteMask] = {}
        for layer in self.cfg.chosen_layers(backbone.num_layers):
            for module in self.cfg.modules:
                linear = backbone.linear(layer, module)
                if parametrize.is_parametrized(linear, "weight"):
                    raise ValueError(f"{mask_key(layer, module)} already carries a parametrization")
                m = BinaryConcreteMask(linear.weight.shape, self.cfg.init_score, self.state).to(linear.weight.device)
                parametrize.register_parametrization(linear, "weight", m)
                self.masks[mask_key(layer, module)] = m

    # ---- parameters and state -----------------------------------------------------------
    def scores(self) -> list[nn.Parameter]:
        return [m.scores for m in self.masks.values()]

    def set_tau(self, tau: float) -> None:
        self.state.tau = float(tau)

    @contextlib.contextmanager
    def mode(self, mode: str, generator: torch.Generator | None = None) -> Iterator[MaskSet]:
        """Run a block with every mask in ``mode`` (restored after)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        previous = (self.state.mode, self.state.generator)
        self.state.mode, self.state.generator = mode, generator
        try:
            yield self
        finally:
            self.state.mode, self.state.generator = previous

    def sparsity_loss(self) -> torch.Tensor:
        """Mean keep-probability ``sigmoid(score)`` over all masked weights."""
        total = sum(torch.sigmoid(m.scores).sum() for m in self.masks.values())
        return total / self.numel()

    def numel(self) -> int:
        return sum(m.scores.numel() for m in self.masks.values())

    # ---- the deterministic mask ---------------------------------------------------------
    def binary(self) -> dict[str, torch.Tensor]:
        """``{key: bool tensor}``: True where the weight is kept (``score > 0``)."""
        return {k: (m.scores.detach() > 0).cpu() for k, m in self.masks.items()}

    def score_tensors(self) -> dict[str, torch.Tensor]:
        return {k: m.scores.detach().cpu().clone() for k, m in self.masks.items()}

    def load_scores(self, scores: dict[str, torch.Tensor]) -> None:
        """Copy scores in (keys and shapes must match)."""
        if set(scores) != set(self.masks):
            raise ValueError(f"mask keys differ: {sorted(set(scores) ^ set(self.masks))}")
        with torch.no_grad():
            for k, m in self.masks.items():
                m.scores.copy_(scores[k])

    def removed_fraction(self) -> float:
        kept = sum(int(b.sum()) for b in self.binary().values())
        return 1.0 - kept / max(1, self.numel())

    def remove(self) -> None:
        """Detach the masks, restoring the plain original weights."""
        for key in self.masks:
            layer, module = parse_key(key)
            with self.mode("off"):
                parametrize.remove_parametrizations(self.backbone.linear(layer, module), "weight",
                                                    leave_parametrized=True)
        self.masks = {}
