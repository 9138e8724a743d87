"""Device and precision choice: GPU with bf16 autocast when present, fp32 on the CPU."""

from __future__ import annotations

import contextlib

import torch


def best_device() -> torch.device:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on a GPU that supports it; a no-op on the CPU (bf16 is slow on AVX2)."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def lightning_precision() -> str:
    """The Lightning ``precision`` string matching :func:`autocast`."""
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"
