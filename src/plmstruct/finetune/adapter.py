"""A bottleneck adapter (Houlsby et al. 2019) as a peft custom LoRA-layer type.

peft 0.21 has no bottleneck adapter. Its documented extension point for new layer types is
``LoraConfig._register_custom_module({target type: layer class})``: peft then builds this class
around every targeted ``nn.Linear`` (its own dispatcher picks it first), marks its ``lora_*``
parameters trainable, freezes the rest, saves/loads them with ``get/set_peft_model_state_dict`` and
unwraps it with ``unload()``. The layer computes ``y = W x + b`` and adds
``scale * up(gelu(down(y)))`` (a residual bottleneck on the output of the frozen linear; ``up``
starts at zero, so a fresh adapter leaves the backbone unchanged). It is non-linear, hence not
mergeable into ``W``: :meth:`merge` refuses, and inference keeps the adapter modules.
"""

from __future__ import annotations

from typing import Any

import torch
from peft import LoraConfig
from peft.tuners.lora.layer import LoraLayer
from torch import nn


class BottleneckAdapterLinear(nn.Module, LoraLayer):
    """``nn.Linear`` followed by a residual bottleneck of width ``r`` (``lora_A`` = down projection,
    ``lora_B`` = up projection; the names keep peft's trainable-parameter and state-dict handling)."""

    adapter_layer_names = ("lora_A", "lora_B")

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: LoraConfig, r: int = 0,
                 lora_alpha: int = 1, **kwargs: Any) -> None:
        super().__init__()
        LoraLayer.__init__(self, base_layer, **kwargs)
        self._active_adapter = adapter_name
        self.update_layer(adapter_name, r, lora_alpha=lora_alpha, config=config)

    def update_layer(self, adapter_name: str, r: int, lora_alpha: int, config: LoraConfig, **kwargs: Any) -> None:
        if r <= 0:
            raise ValueError(f"bottleneck width r must be positive, not {r}")
        self.r[adapter_name] = r
        self.lora_alpha[adapter_name] = lora_alpha
        self.scaling[adapter_name] = lora_alpha / r
        self.lora_dropout[adapter_name] = nn.Dropout(config.lora_dropout) if config.lora_dropout else nn.Identity()
        down = nn.Linear(self.out_features, r)
        up = nn.Linear(r, self.out_features)
        nn.init.zeros_(up.weight)
        nn.init.zeros_(up.bias)
        self.lora_A[adapter_name] = down
        self.lora_B[adapter_name] = up
        self.use_rslora[adapter_name] = False
        self.lora_bias[adapter_name] = False
        self._move_adapter_to_device_of_base_layer(adapter_name)
        self.set_adapter(self.active_adapters)

    def merge(self, safe_merge: bool = False, adapter_names: list[str] | None = None) -> None:
        raise ValueError("a bottleneck adapter is non-linear and cannot be merged into the linear weights")

    def unmerge(self) -> None:
        return None

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        result = self.base_layer(x, *args, **kwargs)
        if self.disable_adapters:
            return result
        for name in self.active_adapters:
            if name not in self.lora_A:
                continue
            down, up = self.lora_A[name], self.lora_B[name]
            h = self.lora_dropout[name](result.to(down.weight.dtype))
            result = result + (up(nn.functional.gelu(down(h))) * self.scaling[name]).to(result.dtype)
        return result

    def __repr__(self) -> str:
        return "bottleneck_adapter." + super().__repr__()


def bottleneck_config(target_modules: list[str], *, width: int, scale: float = 1.0, dropout: float = 0.0) -> LoraConfig:
    """A peft config that places :class:`BottleneckAdapterLinear` on ``target_modules``."""
    cfg = LoraConfig(r=width, lora_alpha=scale * width, lora_dropout=dropout, target_modules=target_modules,
                     bias="none")
    cfg._register_custom_module({nn.Linear: BottleneckAdapterLinear})
    return cfg
