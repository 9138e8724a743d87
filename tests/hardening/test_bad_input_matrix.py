"""Bad input matrix (issue 3): every CLI command that reads user files and every public loader,
against every kind of bad input. Each case must end in ONE clear line naming the file (and the
record and position where they apply), a non-zero exit code (2 from ``friendly_errors``), and no
output file, not even a half-written one. Awkward but valid inputs (chains over the model limit,
residues without Cα, insertion codes, several models) must follow the documented policy instead.

The inputs are made in ``tmp_path`` from real data (see ``hardening_inputs.py``). A new command is one row
of ``CLI_CASES``: ``(command template, input builder)``; the template may use ``{input}`` (the bad
input), ``{fasta}`` (a good FASTA), ``{out}`` (an output file that must not appear) and ``{tmp}``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import hardening_inputs as bad
import numpy as np
import pytest
from typer.testing import CliRunner

from plmstruct.errors import InputError

runner = CliRunner()


@dataclass(frozen=True)
class CliCase:
    """One row: a command line template and the bad input it is given."""

    args: tuple[str, ...]
    build: Callable[[Path], tuple[Path, tuple[str, ...]]]
    folder: bool = False  # hand the command the folder holding the built file, not the file

    @property
    def name(self) -> str:
        build = getattr(self.build, "__qualname__", "case").split(".<locals>")[0]
        return f"{self.args[0]}-{self.args[1] if len(self.args) > 1 and not self.args[1].startswith('{') else ''}" \
               f"-{build}".replace("--", "-")


EMBED = ("pst", "embed", "{input}", "--out", "{out}.npz", "--backbone", "tiny-esm", "--threads", "1")
EMBED_PARQUET = ("pst", "embed", "{input}", "--out", "{out}.parquet", "--backbone", "tiny-esm", "--threads", "1")
EMBED_BACKBONE = ("pst", "embed", "{fasta}", "--out", "{out}.npz", "--backbone", "{input}", "--threads", "1")
EMBED_CHECKPOINT = ("pst", "embed", "{fasta}", "--out", "{out}.npz", "--checkpoint", "{input}", "--threads", "1")
PST_PRETRAIN = ("pst", "pretrain", "--structures", "{input}", "--backbone", "tiny-esm", "--out-dir", "{tmp}/run",
                "--export", "{out}", "--steps", "1", "--batch-size", "2", "--threads", "1")
PST_RESUME = ("pst", "pretrain", "--structures", "{tmp}/structures", "--backbone", "tiny-esm", "--out-dir", "{input}",
              "--resume", "--export", "{out}", "--steps", "2", "--batch-size", "2", "--threads", "1")
PROBE = ("probe", "{input}", "--labels", "{tmp}/labels.tsv", "--out", "{out}.json", "--epochs", "2")
PROBE_LABELS = ("probe", "{tmp}/good.npz", "--labels", "{input}", "--out", "{out}.json", "--epochs", "2")
PRETRAIN_RESUME = ("pretrain", "--out-dir", "{input}", "--resume", "--export", "{out}", "--steps", "2",
                   "--layers", "1", "--hidden", "16", "--heads", "2", "--crop", "32", "--batch-size", "2",
                   "--limit-sequences", "8", "--threads", "1")

SS_PREDICT = ("ss", "predict", "{input}", "--output", "{out}.tsv", "--model", "{ssmodel}", "--threads", "1")
SS_PREDICT_MODEL = ("ss", "predict", "{fasta}", "--output", "{out}.tsv", "--model", "{input}", "--threads", "1")
SS_EVALUATE = ("ss", "evaluate", "{input}", "--out", "{out}")
SUBNETWORK_APPLY = ("subnetwork", "apply", "{input}", "--out", "{out}")
SUBNETWORK_EVALUATE = ("subnetwork", "evaluate", "{input}", "--out", "{out}")

FASTA_CASES = [bad.fasta_with_letter("J"), bad.fasta_with_letter("a"), bad.fasta_with_letter("-"),
               bad.fasta_with_letter("*"), bad.fasta_empty_record, bad.fasta_duplicate_ids,
               bad.fasta_without_header, bad.fasta_binary]
STRUCTURE_FILE_CASES = [bad.pdb_truncated, bad.pdb_binary, bad.cif_truncated, bad.cif_binary_gz]

CLI_CASES: list[CliCase] = [
    *(CliCase(EMBED, b) for b in FASTA_CASES),
    CliCase(EMBED_PARQUET, bad.fasta_with_letter("*")),
    *(CliCase(EMBED, b) for b in STRUCTURE_FILE_CASES),
    *(CliCase(EMBED, b, folder=True) for b in STRUCTURE_FILE_CASES),
    CliCase(EMBED, bad.missing_path("no_such.fasta")),
    CliCase(EMBED, bad.missing_path("no_such_folder")),
    CliCase(EMBED_BACKBONE, bad.hf_folder_with_nan),
    CliCase(EMBED_BACKBONE, bad.hf_folder_other_backbone),
    CliCase(EMBED_BACKBONE, bad.fair_esm_pt_with_inf),
    CliCase(EMBED_BACKBONE, bad.pt_with_pickled_object),
    CliCase(EMBED_BACKBONE, bad.pt_garbage),
    CliCase(EMBED_BACKBONE, bad.lone_safetensors),
    CliCase(EMBED_BACKBONE, bad.missing_path("no_such_model")),
    CliCase(EMBED_CHECKPOINT, bad.pst_export_with_nan),
    CliCase(EMBED_CHECKPOINT, bad.pst_export_other_backbone),
    CliCase(EMBED_CHECKPOINT, bad.missing_path("no_such_export")),
    *(CliCase(PST_PRETRAIN, b, folder=True) for b in STRUCTURE_FILE_CASES[:2]),
    CliCase(PST_PRETRAIN, bad.missing_path("no_such_folder")),
    CliCase(PST_RESUME, bad.pretrain_run_with_corrupt_checkpoint),
    CliCase(PROBE, bad.npz_with_object_array),
    CliCase(PROBE, bad.npz_garbage),
    CliCase(PROBE, bad.npz_with_nan),
    CliCase(PROBE, bad.missing_path("no_such.npz")),
    CliCase(PROBE_LABELS, bad.missing_path("no_such_labels.tsv")),
    CliCase(PRETRAIN_RESUME, bad.pretrain_run_with_corrupt_checkpoint),
    # plmstruct ss (fine-tuning) and plmstruct subnetwork
    *(CliCase(SS_PREDICT, b) for b in FASTA_CASES),
    CliCase(SS_PREDICT, bad.missing_path("no_such.fasta")),
    # (a missing model/mask folder says what was expected there; an empty one is "not a ... folder")
    CliCase(SS_PREDICT_MODEL, bad.missing_path("no_such_model", says="no such folder (expected a fine-tuned model folder)")),
    CliCase(SS_PREDICT_MODEL, bad.empty_folder("not_a_model")),
    CliCase(SS_EVALUATE, bad.missing_path("no_such_model", says="no such folder (expected a fine-tuned model folder)")),
    CliCase(SUBNETWORK_APPLY, bad.missing_path("no_such_mask", says="no such folder (expected a subnetwork artifact)")),
    CliCase(SUBNETWORK_APPLY, bad.empty_folder("not_a_mask")),
    CliCase(SUBNETWORK_EVALUATE, bad.missing_path("no_such_mask", says="no such folder (expected a subnetwork artifact)")),
]


def _render(template: tuple[str, ...], **values: str) -> list[str]:
    return [part.format(**values) for part in template]


def _good_inputs(tmp: Path, case: CliCase) -> None:
    """The good companions of a bad input: a FASTA, embeddings, a label table, structures, and
    (for `ss` rows) a saved tiny fine-tuning model."""
    if any("{ssmodel}" in a for a in case.args):
        bad.tiny_ss_model(tmp)
    recs = bad.real_ss_records(3)
    (tmp / "good.fasta").write_text("".join(f">{r.id}\n{r.sequence}\n" for r in recs))
    rng = np.random.default_rng(0)
    ids = [f"p{i}" for i in range(12)]
    np.savez(tmp / "good.npz", **{i: rng.normal(size=8).astype(np.float32) for i in ids})
    (tmp / "labels.tsv").write_text("".join(f"{i}\t{'ab'[k % 2]}\n" for k, i in enumerate(ids)))
    (tmp / "structures").mkdir()
    for name in ("ts50_pdb/1ahsA.pdb.gz", "ts50_pdb/2cviA.pdb.gz", "ts50_pdb/1i8nA.pdb.gz"):
        shutil.copy(bad._data() / "structures_collection" / name, tmp / "structures")


def _assert_one_clear_line(output: str, fragments: tuple[str, ...]) -> str:
    lines = [ln for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, f"expected one 'error:' line, got:\n{output}"
    assert "Traceback" not in output, output
    for fragment in fragments:
        assert fragment.lower() in errors[0].lower(), f"{fragment!r} missing from: {errors[0]}"
    return errors[0]


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: c.name)
def test_cli_bad_input_is_one_clear_error_and_no_output(case: CliCase, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    _good_inputs(work, case)
    path, fragments = case.build(work)
    target = path.parent if case.folder else path
    out = tmp_path / "outputs" / "result"
    args = _render(case.args, input=str(target), fasta=str(work / "good.fasta"), out=str(out), tmp=str(work),
                   ssmodel=str(work / "ss_model"))
    result = runner.invoke(_app(), args)
    assert result.exit_code == 2, f"exit {result.exit_code}: {args}\n{result.output}\n{result.exception!r}"
    _assert_one_clear_line(result.output, fragments)
    written = sorted(p.name for p in (tmp_path / "outputs").glob("**/*")) if (tmp_path / "outputs").exists() else []
    assert written == [], f"output left behind after a failure: {written}"


def _app():
    from plmstruct.cli.main import app

    return app


# ---- awkward but valid: the documented policies ------------------------------------------------
def test_cli_chain_over_the_model_limit_is_split_and_stitched(tmp_path: Path) -> None:
    """Policy: `pst embed` splits a chain longer than the model limit into overlapping windows and
    stitches per-residue outputs back to the full length (tiny-esm: 254 residues)."""
    path, _ = bad.fasta_long_chain(600)(tmp_path)
    out = tmp_path / "emb.npz"
    result = runner.invoke(_app(), ["pst", "embed", str(path), "--out", str(out), "--backbone", "tiny-esm",
                                    "--per-residue", "--threads", "1"])
    assert result.exit_code == 0, result.output
    from plmstruct.pst.embed import read_embeddings

    arrays, _ = read_embeddings(out)
    first = bad.real_ss_records(1)[0].id
    assert arrays[first].shape[0] == 600


def test_structure_policies_on_awkward_but_valid_files(tmp_path: Path) -> None:
    """Residues without Cα stay (NaN, flagged); insertion codes are kept in the residue ids;
    several models: model 1 unless another is asked for, and a model that is not there is an error
    naming the file and the count."""
    from plmstruct.data.structure import load_structure

    full = load_structure(bad._data() / bad.REAL_PDB)
    no_ca, _ = bad.pdb_without_some_ca(tmp_path)
    s = load_structure(no_ca)
    assert len(s) == len(full) and s.sequence == full.sequence
    assert s.missing_ca.tolist() == [9 <= i < 14 for i in range(len(s))]

    icodes, _ = bad.pdb_with_insertion_codes(tmp_path)
    s = load_structure(icodes)
    assert len(s) == len(full)
    assert [r[-1] for r in s.residue_ids[19:22]] == ["A", "B", "C"]
    assert len(set(s.residue_ids)) == len(s)

    models, _ = bad.pdb_two_models(tmp_path)
    one, two = load_structure(models), load_structure(models, model=2)
    assert np.allclose(two.ca - one.ca, [5.0, 0.0, 0.0], atol=1e-3, equal_nan=True)
    with pytest.raises(InputError, match=r"models\.pdb.*model 3 requested but the file has 2"):
        load_structure(models, model=3)


@pytest.mark.parametrize("build", [bad.pdb_without_some_ca, bad.pdb_with_insertion_codes, bad.pdb_two_models],
                         ids=lambda b: b.__name__)
def test_cli_embeds_awkward_structures(build, tmp_path: Path) -> None:
    path, _ = build(tmp_path)
    out = tmp_path / "emb.npz"
    result = runner.invoke(_app(), ["pst", "embed", str(path.parent), "--out", str(out), "--backbone", "tiny-esm",
                                    "--per-residue", "--threads", "1"])
    assert result.exit_code == 0, result.output
    from plmstruct.data.structure import load_structure
    from plmstruct.pst.embed import read_embeddings

    arrays, meta = read_embeddings(out)
    assert meta["skipped"] == []
    assert [a.shape[0] for a in arrays.values()] == [len(load_structure(path))]


# ---- public loaders -------------------------------------------------------------------------------
def _read_fasta(path: Path):
    from plmstruct.backbone.model import ESM_RESIDUE_LETTERS
    from plmstruct.data.fasta import read_fasta

    return read_fasta(path, alphabet=ESM_RESIDUE_LETTERS)


def _read_three_line(path: Path):
    from plmstruct.data.secondary_structure import read_three_line

    return read_three_line(path)


def _load_structure(path: Path):
    from plmstruct.data.structure import load_structure

    return load_structure(path)


def _load_structures(path: Path):
    from plmstruct.data.structure import load_structures

    return load_structures(path)


def _load_backbone(path: Path):
    from plmstruct.backbone import load_backbone

    return load_backbone(str(path))


def _read_embeddings(path: Path):
    from plmstruct.pst.embed import read_embeddings

    return read_embeddings(path)


LOADER_CASES = [
    *((_read_fasta, b) for b in FASTA_CASES),
    (_read_fasta, bad.missing_path("no_such.fasta")),
    (_read_three_line, bad.three_line_label_mismatch),
    (_read_three_line, bad.three_line_bad_label),
    (_read_three_line, bad.fasta_binary),
    (_read_three_line, bad.missing_path("no_such.txt")),
    *((_load_structure, b) for b in STRUCTURE_FILE_CASES),
    (_load_structure, bad.missing_path("no_such.pdb")),
    (_load_structures, bad.missing_path("no_such_folder")),
    (_load_backbone, bad.hf_folder_with_nan),
    (_load_backbone, bad.hf_folder_other_backbone),
    (_load_backbone, bad.fair_esm_pt_with_inf),
    (_load_backbone, bad.pt_with_pickled_object),
    (_load_backbone, bad.pt_garbage),
    (_load_backbone, bad.lone_safetensors),
    (_load_backbone, bad.missing_path("no_such_model")),
    (_load_backbone, bad.missing_path("no_such.pt")),
    (_read_embeddings, bad.npz_with_object_array),
    (_read_embeddings, bad.npz_garbage),
]


@pytest.mark.parametrize(("loader", "build"), LOADER_CASES,
                         ids=[f"{fn.__name__.strip('_')}-{getattr(b, '__qualname__', '').split('.<locals>')[0]}"
                              for fn, b in LOADER_CASES])
def test_loader_bad_input_raises_input_error_naming_file_record_position(loader, build, tmp_path: Path) -> None:
    path, fragments = build(tmp_path)
    with pytest.raises(InputError) as info:
        loader(path)
    message = str(info.value)
    assert "\n" not in message.strip(), message
    for fragment in fragments:
        assert fragment.lower() in message.lower(), f"{fragment!r} missing from: {message}"
    if len(fragments) > 2 and fragments[2].startswith("position"):
        assert info.value.position == int(re.search(r"\d+", fragments[2]).group())


def test_fasta_errors_carry_record_and_position(tmp_path: Path) -> None:
    path, _ = bad.fasta_with_letter("J", position=7)(tmp_path)
    with pytest.raises(InputError) as info:
        _read_fasta(path)
    rid = bad.real_ss_records(2)[1].id
    assert (Path(str(info.value.path)).name, info.value.record, info.value.position) == (path.name, rid, 7)


def test_the_matrix_covers_every_command_that_reads_user_files() -> None:
    """Adding a command that reads files means adding rows here (one line each)."""
    covered = {" ".join(a for a in c.args[:2] if not a.startswith(("{", "-"))) for c in CLI_CASES}
    assert {"pst embed", "pst pretrain", "probe", "pretrain", "ss predict", "ss evaluate",
            "subnetwork apply", "subnetwork evaluate"} <= covered
