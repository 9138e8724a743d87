"""Mask math: straight-through gradient, near-all-ones init, modes, annealing, parametrization."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn.utils import parametrize

from plmstruct.subnetworks.config import MaskConfig, SubnetworkConfig
from plmstruct.subnetworks.mask import MaskSet, logistic_noise, relaxed_hard_mask


def test_straight_through_forward_is_hard_backward_is_soft():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(64, 64, generator=g, requires_grad=True)
    noise = logistic_noise(scores.shape, generator=g)
    tau = 0.7
    mask = relaxed_hard_mask(scores, tau, noise)
    assert torch.equal(mask, (scores + noise > 0).float())  # exact 0/1 values
    upstream = torch.randn(64, 64, generator=g)
    (mask * upstream).sum().backward()
    ref_scores = scores.detach().clone().requires_grad_(True)
    (torch.sigmoid((ref_scores + noise) / tau) * upstream).sum().backward()
    assert torch.allclose(scores.grad, ref_scores.grad)
    assert scores.grad.abs().sum() > 0


def test_init_is_nearly_all_ones(tiny):
    masks = MaskSet(tiny, MaskConfig(init_probability=0.96))
    probs = torch.cat([torch.sigmoid(s).flatten() for s in masks.scores()])
    assert torch.allclose(probs, torch.full_like(probs, 0.96))
    assert masks.removed_fraction() == 0.0
    torch.manual_seed(0)
    with masks.mode("train"):
        kept = torch.cat([m.mask().flatten() for m in masks.masks.values()])
    assert abs(float(kept.detach().mean()) - 0.96) < 0.01  # logistic noise drops ~4% at train time


def test_only_scores_train_and_weight_is_original_times_mask(tiny):
    originals = {k: tiny.linear(1, k).weight.detach().clone() for k in ("query", "output")}
    masks = MaskSet(tiny, MaskConfig(modules=("query", "output"), layers=(1,)))
    trainable = [n for n, p in tiny.model.named_parameters() if p.requires_grad]
    assert trainable and all(n.endswith("scores") for n in trainable)
    with torch.no_grad():
        masks.masks["layer1.query"].scores[0, :5] = -1.0
    lin = tiny.linear(1, "query")
    assert parametrize.is_parametrized(lin, "weight")
    expected = originals["query"].clone()
    expected[0, :5] = 0
    assert torch.equal(lin.weight, expected)
    with masks.mode("off"):
        assert torch.equal(lin.weight, originals["query"])
    masks.remove()
    assert not parametrize.is_parametrized(lin, "weight")
    assert torch.equal(tiny.linear(1, "query").weight, originals["query"])


def test_stochastic_mode_is_seeded(tiny):
    masks = MaskSet(tiny, MaskConfig())
    m = masks.masks["layer1.value"]

    def draw(seed):
        with masks.mode("stochastic", torch.Generator().manual_seed(seed)):
            return m.mask()

    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))
    with masks.mode("deterministic"):
        assert bool(m.mask().all())


def test_layer_choice_top_fraction():
    assert MaskConfig().chosen_layers(4) == [1, 2, 3]
    assert MaskConfig().chosen_layers(33)[0] == 33 - round(0.8 * 33)
    assert MaskConfig(layers=(0, 2)).chosen_layers(4) == [0, 2]
    with pytest.raises(ValueError):
        MaskConfig(layers=(7,)).chosen_layers(4)


def test_tau_anneals_by_cosine(tiny):
    from plmstruct.subnetworks.module import SubnetworkModule

    cfg = SubnetworkConfig()
    cfg.train.max_steps = 100
    module = SubnetworkModule(tiny, cfg)
    taus = [module.tau(s) for s in range(101)]
    assert taus[0] == pytest.approx(3.2) and taus[-1] == pytest.approx(0.01)
    assert all(a >= b for a, b in zip(taus, taus[1:], strict=False))
    assert taus[50] == pytest.approx((3.2 + 0.01) / 2)
    assert MaskConfig().init_score == pytest.approx(math.log(0.96 / 0.04))
