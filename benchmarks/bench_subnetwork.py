"""Subnetwork costs, as ratios measured in one run on one real batch:

- one masked training step (the full objective: masked forward + backward, the reference forward
  for the maintenance KL, AdamW on the scores) vs one plain full fine-tuning step of the same
  backbone (masked-LM loss of the shared loop, AdamW on all weights) — goal <= 1.3x;
- inference with the applied binary mask (an ordinary model) vs the plain model — goal 1.0x.

The batch: 16 real chains of CB433 cropped to 128 residues (residue-level helix target). Time is
process CPU time (median of interleaved repeats; stable on a shared machine), wall time beside it.
Run: ``python -m benchmarks.bench_subnetwork [backbone]``.
"""

from __future__ import annotations

import json
import statistics
import sys

import torch
from benchmarks.timing import interleaved_samples

TRAIN_GOAL, INFER_GOAL = 1.3, 1.0


def _time(fns: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """Median process-CPU and wall seconds of each ``fn()``, calls interleaved (a, b, a, b, ...)."""
    return {k: (statistics.median(cpu), statistics.median(wall))
            for k, (cpu, wall) in interleaved_samples(fns, repeats).items()}


def _batch(backbone, batch_size: int, crop: int) -> dict:
    from plmstruct.subnetworks.config import TargetConfig
    from plmstruct.subnetworks.targets import SubnetworkCollator, load_targets

    data = load_targets(TargetConfig(kind="helix", limit_train=1, limit_eval=batch_size), backbone.alphabet)
    return SubnetworkCollator(backbone, crop)([(e, i) for i, e in enumerate(data.eval)])


def run(spec: str = "default", *, repeats: int = 7, infer_repeats: int = 25, threads: int = 1, batch_size: int = 16,
        crop: int = 128) -> dict:
    from plmstruct.backbone import load_backbone
    from plmstruct.backbone.kernels import fuse_gelu
    from plmstruct.subnetworks.artifact import SubnetworkArtifact, apply_mask
    from plmstruct.subnetworks.config import SubnetworkConfig
    from plmstruct.subnetworks.module import SubnetworkModule
    from plmstruct.training.config import OptimConfig
    from plmstruct.training.mlm import MLMModule

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    masked_bb = load_backbone(spec)
    batch = _batch(masked_bb, batch_size, crop)
    cfg = SubnetworkConfig(backbone=spec)
    sub = SubnetworkModule(masked_bb, cfg)
    fuse_gelu(sub)  # as the shared loop's fit() does
    sub_opt = torch.optim.AdamW(sub.masks.scores(), lr=0.1, weight_decay=0.0)

    plain_bb = load_backbone(spec)
    full = MLMModule(plain_bb, OptimConfig())
    fuse_gelu(full)
    full.model.requires_grad_(True)
    full_opt = torch.optim.AdamW([p for p in full.model.parameters() if p.requires_grad], lr=1e-4)
    mlm_batch = {k: batch[k] for k in ("input_ids", "attention_mask", "labels")}

    def masked_step() -> None:
        sub_opt.zero_grad(set_to_none=True)
        sub.step_terms(batch, 100).total.backward()
        sub_opt.step()

    def full_step() -> None:
        full_opt.zero_grad(set_to_none=True)
        full._loss(mlm_batch)[0].backward()
        full_opt.step()

    train = _time({"full_finetune_step": full_step, "masked_step": masked_step}, repeats)

    # inference: an applied binary mask (10% of the masked weights zeroed) vs the plain model
    infer_bb = load_backbone(spec)
    binary = {k: torch.rand(v.shape) > 0.1 for k, v in sub.masks.binary().items()}
    applied = apply_mask(SubnetworkArtifact(binary, None, {"backbone": spec}), load_backbone(spec))
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        infer = _time({"plain_forward": lambda: infer_bb.model(input_ids=ids, attention_mask=mask),
                       "applied_mask_forward": lambda: applied.model(input_ids=ids, attention_mask=mask)}, infer_repeats)
    tr = train["masked_step"][0] / train["full_finetune_step"][0]
    inf = infer["applied_mask_forward"][0] / infer["plain_forward"][0]
    return {
        "backbone": spec, "batch": list(ids.shape), "threads": threads, "repeats": repeats,
        "infer_repeats": infer_repeats,
        "masked_weights": sub.masks.numel(),
        "full_finetune_step_cpu_s": round(train["full_finetune_step"][0], 4),
        "masked_step_cpu_s": round(train["masked_step"][0], 4),
        "full_finetune_step_wall_s": round(train["full_finetune_step"][1], 4),
        "masked_step_wall_s": round(train["masked_step"][1], 4),
        "train_step_ratio": round(tr, 3), "train_goal": TRAIN_GOAL, "train_meets_goal": tr <= TRAIN_GOAL,
        "plain_forward_cpu_s": round(infer["plain_forward"][0], 4),
        "applied_mask_forward_cpu_s": round(infer["applied_mask_forward"][0], 4),
        "inference_ratio": round(inf, 3), "inference_goal": INFER_GOAL,
        "inference_meets_goal": inf <= INFER_GOAL * 1.05,  # 5% timing noise allowed: the same computation
    }


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else "default"), indent=2))
