"""The summary of a big model: block calls folded as deep as fits a screen (--depth N to
choose, --full for every layer), and a head and tail when even that is too long."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import netc
from netc.cli import cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def rows(output: str) -> list[list[str]]:
    """The body rows of the printed table, as lists of cells."""
    return [
        [c.strip() for c in line.split("│")[1:-1]]
        for line in output.splitlines()
        if line.startswith("│")
    ]


def summary(*args: str) -> str:
    r = CliRunner().invoke(cli, ["summary", *args])
    assert r.exit_code == 0, r.output
    return r.stdout


def test_resnet50_folds_to_one_row_per_bottleneck_by_default():
    out = summary(str(EXAMPLES / "resnet50.net"))
    table = rows(out)
    assert len(table) == 25  # the input, the stem's 5 layers, 16 bottlenecks, the head's 3
    assert table[6] == [
        "stage_0.bottleneck_0",
        "bottleneck: 12 layers",
        "f32[N, 56, 56, 256]",
        "76,928",
        "37",
    ]
    assert "176 layers: block calls 2 deep shown as one row each" in out
    assert "Total params: 25,636,712\n" in out
    m = netc.compile(EXAMPLES / "resnet50.net")
    assert sum(int(r[3].replace(",", "")) for r in table) == m.total_params


def test_depth_and_full_choose_how_much_is_shown():
    path = str(EXAMPLES / "resnet50.net")
    by_stage = rows(summary(path, "--depth", "1"))
    assert [r[0] for r in by_stage][6:10] == ["stage_0", "stage_1", "stage_2", "stage_3"]
    assert by_stage[7][1] == "stage: 42 layers"
    everything = summary(path, "--full")
    assert len(rows(everything)) == 177 and "shown as one row" not in everything
    assert len(rows(summary(path, "--depth", "3"))) == 1 + 5 + 4 * 8 + 12 * 7 + 3  # conv_bn folded
    assert rows(summary(path, "--depth", "4")) == rows(everything)
    for args in (["--depth", "1", "--full"], ["--full", "--depth", "1"]):
        assert rows(summary(path, *args)) == rows(everything)  # --full wins


def test_a_long_flat_model_shows_its_head_and_tail(tmp_path: Path):
    path = tmp_path / "flat.net"
    path.write_text(
        "model m(x: f32[N, 4]) -> (y: f32[N, 4]) {\n    y = x" + " |> relu" * 300 + "\n}\n"
    )
    out = summary(str(path))
    table = rows(out)
    assert len(table) == 1 + 40 + 1
    assert table[21][0] == "... 260 more rows"
    assert [table[1][0], table[20][0], table[22][0], table[-1][0]] == [
        "relu",
        "relu_19",
        "relu_280",
        "relu_299",
    ]
    assert "300 layers: 260 rows left out (--depth N or --full shows more)" in out
    assert len(rows(summary(str(path), "--full"))) == 301


def test_the_default_command_folds_the_same_way_and_json_lists_every_layer(tmp_path: Path):
    r = CliRunner().invoke(cli, [str(EXAMPLES / "resnet50.net"), "--no-write"])
    assert rows(r.stdout) == rows(summary(str(EXAMPLES / "resnet50.net")))
    r = CliRunner().invoke(cli, ["summary", str(EXAMPLES / "resnet50.net"), "--json"])
    import json

    assert len(json.loads(r.stdout)["layers"]) == 176


@pytest.mark.parametrize("flag", ["--depth", "--full"])
def test_check_takes_no_folding_options(flag: str):
    r = CliRunner().invoke(cli, ["check", str(EXAMPLES / "resnet50.net"), flag])
    assert r.exit_code == 2
