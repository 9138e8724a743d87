"""``plmstruct subnetwork evaluate``: perplexity (target vs non-target, original / binary mask /
stochastic mask averaged over passes), where the masks bite, their overlap, contact precision
(original vs masked) and ESMFold when available; one JSON + one Markdown report with PNGs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from plmstruct.backbone import load_backbone
from plmstruct.errors import InputError
from plmstruct.evaluation.contacts import (
    ContactConfig,
    collection_structures,
    contact_precision,
    fit_contact_probe,
)
from plmstruct.evaluation.esmfold import esmfold_evaluation
from plmstruct.evaluation.mask_report import bar_chart, markdown_table, mask_section
from plmstruct.evaluation.perplexity import PerplexityConfig, evaluate_perplexity
from plmstruct.io import atomic_write_text
from plmstruct.subnetworks.artifact import SubnetworkArtifact, attach_artifact
from plmstruct.subnetworks.config import TargetConfig
from plmstruct.subnetworks.targets import load_targets, random_control_examples


@dataclass
class EvaluationConfig:
    perplexity: PerplexityConfig = field(default_factory=PerplexityConfig)
    contacts: ContactConfig | None = field(default_factory=ContactConfig)  # None: skip contacts
    stochastic: bool = True
    limit_eval: int | None = None  # override the held-out set size stored with the mask
    esmfold: bool = True


def eval_target(artifact: SubnetworkArtifact, limit_eval: int | None = None) -> TargetConfig:
    """The real (never random) target of an artifact's run, for evaluation."""
    stored = artifact.config.get("run", {}).get("target", {})
    known = {f.name for f in fields(TargetConfig)}
    cfg = TargetConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in stored.items() if k in known})
    cfg.random_control = False
    if limit_eval is not None:
        cfg.limit_eval = limit_eval
    return cfg


def evaluate_artifacts(artifacts: dict[str, SubnetworkArtifact], cfg: EvaluationConfig | None = None,
                       *, backbone: str | None = None) -> dict:
    """All numbers for a set of subnetworks of one backbone (the first artifact's, or ``backbone``)."""
    cfg = cfg or EvaluationConfig()
    if not artifacts:
        raise InputError("no subnetwork to evaluate")
    spec = backbone or next(iter(artifacts.values())).backbone
    bb = load_backbone(spec)
    results: dict = {"backbone": spec, "subnetworks": {}, "original": {}}
    cache: dict[str, tuple[list, dict]] = {}
    probe = test = None
    head = "esm" if bb.contact_head else "probe"
    if cfg.contacts is not None:
        train_s, test = collection_structures(bb.alphabet, cfg.contacts)
        if head == "esm":
            setup = {"train_chains": 0, "head": "the model's own ESM contact-regression head"}
        else:
            probe = fit_contact_probe(bb, train_s, cfg.contacts)
            setup = {"train_chains": len(train_s),
                     "head": "logistic-regression probe on APC attention (fitted on the original)"}
        results["contacts_original"] = contact_precision(bb, test, probe, head=head)
        results["contacts_setup"] = setup | {"test_chains": len(test)}
    for name, art in artifacts.items():
        target = eval_target(art, cfg.limit_eval)
        control = bool(art.config.get("run", {}).get("target", {}).get("random_control"))
        key = target.name + (" (control)" if control else "")
        if key not in cache:
            examples = cache[target.name][0] if target.name in cache else load_targets(target, bb.alphabet).eval
            own = random_control_examples(examples, target.level, target.seed) if control else None
            cache[key] = (examples, evaluate_perplexity(bb, examples, cfg.perplexity, own_targets=own), own)
            results["original"][key] = cache[key][1]
        examples, original, own = cache[key]
        masks = attach_artifact(art, bb)
        try:
            entry = {"target": target.name, "random_control": control, "removed_fraction": art.removed_fraction(),
                     "mask_folder": str(art.source) if art.source else None,
                     "deterministic": evaluate_perplexity(bb, examples, cfg.perplexity, masks, "deterministic",
                                                          own_targets=own)}
            if cfg.stochastic:
                entry["stochastic"] = evaluate_perplexity(bb, examples, cfg.perplexity, masks, "stochastic",
                                                          own_targets=own)
            if test is not None:
                with masks.mode("deterministic"):
                    entry["contacts"] = contact_precision(bb, test, probe, head=head)
        finally:
            masks.remove()
        entry["original"] = {k: original[k] for k in ("target", "non_target", "own_target", "kl_uniform_target",
                                                      "kl_uniform_non_target") if k in original}
        entry["original_key"] = key
        if cfg.esmfold:
            entry["esmfold"] = esmfold_evaluation(art.binary, [e.sequence for e in examples[:8]])
        results["subnetworks"][name] = entry
    return results


def _change(new: float | None, old: float | None) -> str:
    return "–" if new is None or old is None else f"{100 * (new / old - 1):+.1f}%"


def perplexity_rows(results: dict) -> list[list]:
    rows = []
    for name, e in results["subnetworks"].items():
        o = e["original"]
        for mode in ("deterministic", "stochastic"):
            if mode in e:
                t, n = e[mode]["target"], e[mode]["non_target"]
                rows.append([name, e["target"], mode, o["target"], t, _change(t, o["target"]), o["non_target"], n,
                             _change(n, o["non_target"])])
                if "own_target" in e[mode]:
                    oo, so = o["own_target"], e[mode]["own_target"]
                    rows.append([name, "its own random target", mode, oo["target"], so["target"],
                                 _change(so["target"], oo["target"]), oo["non_target"], so["non_target"],
                                 _change(so["non_target"], oo["non_target"])])
    return rows


def kl_rows(results: dict) -> list[list]:
    rows = []
    for name, e in results["subnetworks"].items():
        o = e["original"]
        for mode in ("deterministic", "stochastic"):
            if mode in e and "kl_uniform_target" in o:
                t, n = e[mode]["kl_uniform_target"], e[mode]["kl_uniform_non_target"]
                rows.append([name, e["target"], mode, o["kl_uniform_target"], t, _change(t, o["kl_uniform_target"]),
                             o["kl_uniform_non_target"], n, _change(n, o["kl_uniform_non_target"])])
    return rows


def report_markdown(results: dict, artifacts: dict[str, SubnetworkArtifact], out_dir: Path, *,
                    title: str = "Subnetwork evaluation") -> str:
    """The Markdown report (PNGs written beside it in ``out_dir``)."""
    out_dir = Path(out_dir)
    lines = [f"## {title}", "", f"Backbone `{results['backbone']}`. Masked-token perplexity (15% of residues "
             "masked, fixed seed) on held-out chains, target vs non-target residues. A random control is judged "
             "on the real target (does it hit the target's residues too?) and on its own random target (can a "
             "random set be suppressed selectively?).", "",
             markdown_table(["subnetwork", "evaluated on", "mask", "target ppl (orig)", "target ppl (sub)", "Δ target",
                             "non-target ppl (orig)", "non-target ppl (sub)", "Δ non-target"], perplexity_rows(results)),
             ""]
    folders = [f"`{name}` = `{art.source}`" for name, art in artifacts.items() if art.source is not None]
    if folders:
        lines[-1:-1] = ["", "Masks: " + "; ".join(folders) + "."]
    groups, modes = {}, set()
    for name, e in results["subnetworks"].items():
        mode = "stochastic" if "stochastic" in e else "deterministic"
        modes.add(mode)
        groups[name] = {"target (orig)": e["original"]["target"], "target (sub)": e[mode]["target"],
                        "non-target (orig)": e["original"]["non_target"], "non-target (sub)": e[mode]["non_target"]}
    png = bar_chart(groups, f"Masked-token perplexity ({' / '.join(sorted(modes))} mask)", "perplexity",
                    out_dir / "perplexity.png")
    lines += [f"![perplexity]({png.name})", "",
              "### Suppression: KL(prediction || uniform over the 20 residues) at masked positions, nats", "",
              "What the suppression term lowers, whether the model is better or worse than uniform "
              "(a model worse than uniform gets a *lower* perplexity when suppressed).", "",
              markdown_table(["subnetwork", "evaluated on", "mask", "target KL (orig)", "target KL (sub)", "Δ target",
                              "non-target KL (orig)", "non-target KL (sub)", "Δ non-target"], kl_rows(results)), ""]
    first = next(iter(results["subnetworks"].values()))
    by_state = first["deterministic"].get("by_state", {})
    if by_state:
        rows = []
        for name, e in results["subnetworks"].items():
            orig = results["original"][e["original_key"]]["by_state"]
            for s in by_state:
                rows.append([name, s, orig.get(s, {}).get("all"), e["deterministic"]["by_state"].get(s, {}).get("all"),
                             _change(e["deterministic"]["by_state"].get(s, {}).get("all"), orig.get(s, {}).get("all"))])
        lines += ["### Per DSSP state (binary mask)", "",
                  markdown_table(["subnetwork", "state", "ppl (orig)", "ppl (sub)", "Δ"], rows), ""]
    if "contacts_original" in results:
        keys = [k for k in results["contacts_original"] if "L/" in k]
        rows = [["original", *[results["contacts_original"][k] for k in keys]]]
        rows += [[n, *[e["contacts"][k] for k in keys]] for n, e in results["subnetworks"].items() if "contacts" in e]
        base = [k for k in results["contacts_original"] if "base rate" in k]
        setup = results["contacts_setup"]
        lines += ["### Contact precision (binary mask)", "",
                  f"{setup['head']}; "
                  + (f"{setup['train_chains']} training / " if setup["train_chains"] else "")
                  + f"{setup['test_chains']} test chains from the bundled structure collection. Base rates (random ranking): "
                  + ", ".join(f"{k.split()[0]} {results['contacts_original'][k]:.3f}" for k in base) + ".", "",
                  markdown_table(["model", *keys], rows), ""]
    skipped = {e["esmfold"]["skipped"] for e in results["subnetworks"].values() if "skipped" in e.get("esmfold", {})}
    if skipped:
        lines += [f"ESMFold: skipped ({'; '.join(sorted(skipped))}).", ""]
    lines.append(mask_section({n: a.binary for n, a in artifacts.items()}, out_dir))
    return "\n".join(lines)


def write_evaluation(results: dict, artifacts: dict[str, SubnetworkArtifact], out_dir: Path, *,
                     title: str = "Subnetwork evaluation") -> Path:
    """``out_dir/evaluation.json`` + ``out_dir/REPORT.md`` (+ PNGs); returns the report path."""
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "evaluation.json", json.dumps(results, indent=2))
    report = out_dir / "REPORT.md"
    atomic_write_text(report, report_markdown(results, artifacts, out_dir, title=title))
    return report
