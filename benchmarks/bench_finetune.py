"""Secondary-structure fine-tuning costs, from one run (JSON printed):

1. prediction throughput (residues/s) of the backbone with a LoRA tuner *merged* into its weights
   vs the plain backbone forward (goal >= 0.95x), beside the unmerged LoRA and the whole predictor
   (merged backbone + conv head);
2. training step time (forward + backward + AdamW step) of LoRA in the top third of the blocks vs
   full fine-tuning, same batch and head.

The batch is real: 8 CB513 chains cropped to 300 residues. Time is the process CPU time of
interleaved repeats: the ratios use the *minimum* over repeats (the least-disturbed run: on a shared
machine other jobs only ever add time), the medians are reported beside them, and wall time too.
After ``merge_and_unload`` the merged backbone has exactly the plain backbone's modules and
shapes, so its ratio measures only noise and any merge leftovers. Run:
``python -m benchmarks.bench_finetune [backbone]``.
"""

from __future__ import annotations

import copy
import json
import statistics
import sys

import torch
from benchmarks.timing import interleaved_samples

GOAL_RATIO = 0.95
LENGTH = 300
BATCH = 8


def _batch(backbone) -> tuple[dict, torch.Tensor]:
    from plmstruct.data.paths import shared_data_dir
    from plmstruct.data.secondary_structure import label_indices, read_netsurfp_csv
    from plmstruct.finetune.model import lenient_tokenize

    recs = [r for r in read_netsurfp_csv(shared_data_dir() / "ss_netsurfp2_prottrans" / "CB513_HHblits.csv",
                                         n_states=8) if len(r.sequence) >= LENGTH][:BATCH]
    enc = lenient_tokenize(backbone, [r.sequence[:LENGTH] for r in recs])
    labels = torch.tensor([label_indices(r.states(3)[:LENGTH], 3) for r in recs])
    return enc, labels


def _time(fns: dict, repeats: int) -> dict[str, tuple[float, float, float]]:
    """Minimum and median process-CPU and median wall seconds of each ``fn()``, calls interleaved."""
    return {k: (min(cpu), statistics.median(cpu), statistics.median(wall))
            for k, (cpu, wall) in interleaved_samples(fns, repeats).items()}


def run(spec: str = "default", *, repeats: int = 11, threads: int = 1) -> dict:
    from plmstruct.backbone import load_backbone
    from plmstruct.finetune import SSModel, TunerConfig
    from plmstruct.finetune.module import SSModule

    torch.set_num_threads(threads)
    plain = load_backbone(spec)
    enc, labels = _batch(plain)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    residues = int(mask.sum()) - 2 * ids.shape[0]

    unmerged = SSModel(copy.deepcopy(plain), 3, TunerConfig(method="lora")).eval()
    with torch.no_grad():
        for n, p in unmerged.encoder.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.02)  # a trained-like, non-zero adapter
    merged = SSModel(copy.deepcopy(plain), 3, TunerConfig(method="lora")).eval()
    merged.load_state_dict(unmerged.state_dict())
    merged.merge()
    with torch.no_grad():
        t = _time({"plain": lambda: plain.encoder(input_ids=ids, attention_mask=mask),
                   "merged": lambda: merged.encoder(input_ids=ids, attention_mask=mask),
                   "unmerged": lambda: unmerged.encoder(input_ids=ids, attention_mask=mask),
                   "predictor": lambda: merged(ids, mask)}, repeats)
    rate = {k: residues / v[0] for k, v in t.items()}
    predict = {"residues_per_batch": residues, "batch": list(ids.shape),
               **{f"{k}_residues_per_s": round(v, 1) for k, v in rate.items()},
               **{f"{k}_median_cpu_s": round(v[1], 4) for k, v in t.items()},
               **{f"{k}_wall_s": round(v[2], 4) for k, v in t.items()},
               "merged_vs_plain_median": round(t["plain"][1] / t["merged"][1], 3),
               "merged_vs_plain": round(rate["merged"] / rate["plain"], 3),
               "unmerged_vs_plain": round(rate["unmerged"] / rate["plain"], 3),
               "predictor_vs_plain": round(rate["predictor"] / rate["plain"], 3),
               "goal": GOAL_RATIO, "meets_goal": rate["merged"] / rate["plain"] >= GOAL_RATIO}

    steps = {}
    for method in ("lora", "full"):
        model = SSModel(load_backbone(spec), 3, TunerConfig(method=method))
        module = SSModule(model, total_steps=100)
        opt = module.configure_optimizers()["optimizer"]
        model.train()

        def step(model=model, opt=opt) -> None:
            logits = model(ids, mask)
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        steps[method] = step
    ts = _time(steps, repeats)
    train = {"lora_step_cpu_s": round(ts["lora"][0], 4), "full_step_cpu_s": round(ts["full"][0], 4),
             "lora_step_median_cpu_s": round(ts["lora"][1], 4), "full_step_median_cpu_s": round(ts["full"][1], 4),
             "lora_step_wall_s": round(ts["lora"][2], 4), "full_step_wall_s": round(ts["full"][2], 4),
             "lora_vs_full_step_time": round(ts["lora"][0] / ts["full"][0], 3),
             "lora_vs_full_step_time_median": round(ts["lora"][1] / ts["full"][1], 3)}
    return {"backbone": spec, "threads": threads, "repeats": repeats, "prediction": predict, "training_step": train}


if __name__ == "__main__":
    result = run(sys.argv[1] if len(sys.argv) > 1 else "default")
    p, s = result["prediction"], result["training_step"]
    print(f"merged LoRA / plain backbone throughput: {p['merged_vs_plain']:.3f}x "
          f"({p['merged_residues_per_s']:.0f} vs {p['plain_residues_per_s']:.0f} residues/s; unmerged "
          f"{p['unmerged_vs_plain']:.3f}x; with the conv head {p['predictor_vs_plain']:.3f}x); goal >= {GOAL_RATIO}: "
          f"{'met' if p['meets_goal'] else 'NOT met'}", file=sys.stderr)
    print(f"training step LoRA / full fine-tuning: {s['lora_vs_full_step_time']:.3f}x CPU time "
          f"({s['lora_step_cpu_s']:.3f}s vs {s['full_step_cpu_s']:.3f}s)", file=sys.stderr)
    print(json.dumps(result, indent=2))
