"""The tuners: where new (or freed) parameters go, all in one registry, the peft way.

=========  =================================================================================
lora       peft LoRA on the attention linears (query/key/value/output) of the top k blocks
ia3        peft IA3: learned scalings of key/value and of the feed-forward output input, top k
adapter    bottleneck adapter after the feed-forward output linear of the top k blocks
           (a custom peft layer, :mod:`plmstruct.finetune.adapter`)
features   no new parameters: frozen backbone, only the head trains (feature extraction)
full       no new parameters: every backbone weight trains (full fine-tuning)
=========  =================================================================================

Placement uses :meth:`Backbone.module_path` (dotted paths inside ``backbone.model``), so the same
code serves ESM-2 and BERT (AntiBERTy). Only the targeted linears of the top ``k`` blocks get new
parameters; peft freezes every other backbone weight.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from torch import nn

from plmstruct.backbone.model import Backbone

METHODS = ("lora", "ia3", "adapter", "features", "full")
#: methods that add peft modules (the others change only what trains)
PEFT_METHODS = ("lora", "ia3", "adapter")


@dataclass
class TunerConfig:
    """Which tuner, where, and how big. ``top_k=None``: the top third of the blocks (at least 1)."""

    method: str = "lora"
    top_k: int | None = None
    rank: int = 8                 # LoRA rank / adapter bottleneck width
    alpha: float = 16.0           # LoRA alpha (scale = alpha / rank); adapter scale = alpha / rank
    dropout: float = 0.0
    lora_modules: tuple[str, ...] = ("query", "key", "value", "output")
    ia3_modules: tuple[str, ...] = ("key", "value", "ffn_output")
    ia3_feedforward: tuple[str, ...] = ("ffn_output",)
    adapter_modules: tuple[str, ...] = ("ffn_output",)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {self.method!r}")
        for name in ("lora_modules", "ia3_modules", "ia3_feedforward", "adapter_modules"):
            setattr(self, name, tuple(getattr(self, name)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TunerConfig:
        return cls(**data)


def top_layers(num_layers: int, top_k: int | None) -> list[int]:
    """Indices of the top ``top_k`` blocks (default: the top third, rounded up, at least one)."""
    k = max(1, -(-num_layers // 3)) if top_k is None else top_k
    if not 1 <= k <= num_layers:
        raise ValueError(f"top_k must be in [1, {num_layers}], not {k}")
    return list(range(num_layers - k, num_layers))


def target_paths(backbone: Backbone, modules: tuple[str, ...], top_k: int | None) -> list[str]:
    """peft ``target_modules``: the named linears of the top blocks, as full dotted paths."""
    return [backbone.module_path(layer, m) for layer in top_layers(backbone.num_layers, top_k) for m in modules]


def _lora(backbone: Backbone, cfg: TunerConfig):
    from peft import LoraConfig

    return LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, bias="none",
                      target_modules=target_paths(backbone, cfg.lora_modules, cfg.top_k))


def _ia3(backbone: Backbone, cfg: TunerConfig):
    from peft import IA3Config

    return IA3Config(target_modules=target_paths(backbone, cfg.ia3_modules, cfg.top_k),
                     feedforward_modules=target_paths(backbone, cfg.ia3_feedforward, cfg.top_k))


def _adapter(backbone: Backbone, cfg: TunerConfig):
    from plmstruct.finetune.adapter import bottleneck_config

    return bottleneck_config(target_paths(backbone, cfg.adapter_modules, cfg.top_k), width=cfg.rank,
                             scale=cfg.alpha / cfg.rank, dropout=cfg.dropout)


#: method -> builder of its peft config
PEFT_CONFIGS: dict[str, Callable] = {"lora": _lora, "ia3": _ia3, "adapter": _adapter}


def peft_config(backbone: Backbone, cfg: TunerConfig):
    """The peft config of a peft method (``lora``/``ia3``/``adapter``)."""
    return PEFT_CONFIGS[cfg.method](backbone, cfg)


def apply_tuner(backbone: Backbone, cfg: TunerConfig) -> nn.Module | None:
    """Prepare ``backbone.model`` in place for ``cfg.method``; returns the peft model (or None).

    After this, exactly the parameters the method trains have ``requires_grad=True``."""
    model = backbone.model
    if cfg.method in PEFT_METHODS:
        from peft import get_peft_model

        return get_peft_model(model, peft_config(backbone, cfg))
    for p in model.parameters():
        p.requires_grad_(cfg.method == "full")
    return None


def merge_tuner(peft_model: nn.Module | None, cfg: TunerConfig) -> bool:
    """Fold LoRA / IA3 into the backbone weights (peft ``merge_and_unload``); the adapter is
    non-linear and stays. Returns True when merged."""
    if peft_model is None or cfg.method == "adapter":
        return False
    peft_model.merge_and_unload()
    return True
