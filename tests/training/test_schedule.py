"""Learning-rate schedules (warmup then decay), temperature annealing and the AdamW set-up."""

from __future__ import annotations

import math

import pytest
import torch

from plmstruct.training import OptimConfig, configure_adamw, cosine_anneal, lr_multiplier


@pytest.mark.parametrize("schedule", ["linear", "cosine", "inverse_sqrt", "onecycle"])
def test_warmup_rises_then_decays(schedule):
    f = lr_multiplier(schedule, warmup=10, total=100, min_ratio=0.1)
    values = [f(s) for s in range(100)]
    peak = max(values)
    assert peak == pytest.approx(1.0)
    top = values.index(peak)
    assert 8 <= top <= 10
    assert all(a <= b + 1e-12 for a, b in zip(values[:top], values[1:top + 1], strict=True))  # rising
    assert all(a >= b - 1e-12 for a, b in zip(values[top:], values[top + 1:], strict=False))  # decaying
    assert values[-1] >= 0.1 - 1e-9 and values[-1] < 0.5


def test_schedule_values():
    lin = lr_multiplier("linear", warmup=4, total=14, min_ratio=0.0)
    assert [lin(s) for s in (0, 1, 3)] == [0.25, 0.5, 1.0]
    assert lin(9) == pytest.approx(0.5) and lin(14) == 0.0 and lin(1000) == 0.0
    cos = lr_multiplier("cosine", warmup=0, total=100, min_ratio=0.2)
    assert cos(0) == pytest.approx(1.0) and cos(50) == pytest.approx(0.6) and cos(100) == pytest.approx(0.2)
    inv = lr_multiplier("inverse_sqrt", warmup=16, total=1000)
    assert inv(63) == pytest.approx(math.sqrt(16 / 64))
    const = lr_multiplier("constant", warmup=2, total=10)
    assert [const(s) for s in range(5)] == [0.5, 1.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="schedule must be one of"):
        lr_multiplier("exponential", 1, 10)


def test_cosine_anneal_goes_from_start_to_end():
    assert cosine_anneal(2.0, 0.1, 0, 100) == pytest.approx(2.0)
    assert cosine_anneal(2.0, 0.1, 50, 100) == pytest.approx(1.05)
    assert cosine_anneal(2.0, 0.1, 100, 100) == pytest.approx(0.1)
    assert cosine_anneal(2.0, 0.1, 500, 100) == pytest.approx(0.1)


def test_adamw_decays_matrices_not_biases_and_steps_the_schedule():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    cfg = OptimConfig(lr=1e-2, weight_decay=0.05, warmup_steps=2, schedule="linear")
    setup = configure_adamw(model.parameters(), cfg, total_steps=4)
    opt, sched = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.05 and [p.ndim for p in decay["params"]] == [2]
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 3
    assert setup["lr_scheduler"]["interval"] == "step"
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        model(torch.ones(1, 4)).sum().backward()
        opt.step()
        sched.step()
    assert lrs == pytest.approx([5e-3, 1e-2, 1e-2, 5e-3])
