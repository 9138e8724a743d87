"""The top-level CLI: ``info`` reports versions, device, backbones and the real datasets; every
command group has ``--help``; the demo refuses unknown parts."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from plmstruct.cli.main import app

runner = CliRunner()


def test_info_lists_versions_device_backbones_and_data():
    result = runner.invoke(app, ["info"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for expected in ("torch", "transformers", "peft", "lightning", "torch_geometric", "device", "cpu",
                     "default present: True", "antiberty", "esm2_t6_8M_UR50D", "secondary_structure",
                     "structures_collection", "cath"):
        assert expected in result.output, expected


@pytest.mark.parametrize("group", [[], ["pretrain"], ["pst"], ["pst", "pretrain"], ["pst", "embed"], ["probe"],
                                   ["subnetwork"], ["ss"], ["demo"]])
def test_every_group_has_help(group):
    result = runner.invoke(app, [*group, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_demo_rejects_an_unknown_part(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "d"), "--only", "nope"])
    assert result.exit_code == 2
    assert "unknown demo part" in result.output
    assert not (tmp_path / "d" / "REPORT.md").exists()
