"""Weights loaded from a file: NaN and infinite values (in the file, or made by the cast to
the weight's dtype) are a warning that names each weight, in the library and the CLI."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import netc
from netc import driver
from netc.cli import cli
from netc.weights import WeightWarning, initial_weights

MODEL = "model m(x: f32[N, 4]) -> (y: f32[N, 3]) {\n    y = x |> dense(3)\n}\n"


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "m.net").write_text(MODEL)
    w = initial_weights(netc.compile(tmp_path / "m.net").graph)
    np.savez(tmp_path / "good.npz", **w)
    w["dense.kernel"][0, 0] = np.nan
    w["dense.kernel"][1, 1] = np.inf
    bias = np.array([1e300, 0.0, 0.0])  # float64: fine as read, infinite as f32
    np.savez(tmp_path / "bad.npz", **{"dense.kernel": w["dense.kernel"], "dense.bias": bias})
    return tmp_path


def test_non_finite_weights_warn_by_name(files: Path):
    m = netc.compile(files / "m.net")
    with pytest.warns(WeightWarning) as caught:
        values = driver.model_weights(m, files / "bad.npz")
    (warning,) = [w.message for w in caught]
    assert str(warning) == (
        f"{files / 'bad.npz'}: weight `dense.kernel` has 2 NaN or infinite values (of 12); "
        "weight `dense.bias` has 1 value that becomes infinite in f32 (of 3)"
    )
    assert [(d.span.line, d.span.col) for d in warning.diagnostics] == [(2, 14), (2, 14)]
    assert values["dense.bias"].dtype == np.float32


def test_finite_weights_say_nothing(files: Path):
    m = netc.compile(files / "m.net")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        driver.model_weights(m, files / "good.npz")


def test_the_cli_shows_it_once_per_weight_at_its_layer_and_quiet_hides_it(files: Path):
    args = [str(files / "m.net"), "--weights", str(files / "bad.npz"), "-o", str(files / "m.onnx")]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    bad, at = files / "bad.npz", f"{files / 'm.net'}:2:14"
    assert r.stderr == (
        f"{at}: warning: {bad}: weight `dense.kernel` has 2 NaN or infinite values (of 12)\n"
        "2 |     y = x |> dense(3)\n"
        "  |              ^^^^^^^^\n"
        "\n"
        f"{at}: warning: {bad}: weight `dense.bias` has 1 value that becomes infinite in f32 "
        "(of 3)\n"
        "2 |     y = x |> dense(3)\n"
        "  |              ^^^^^^^^\n"
    )
    r = CliRunner().invoke(cli, [*args, "-q"])
    assert (r.exit_code, r.stderr) == (0, "")


def test_a_pipe_is_not_read_as_weights(files: Path):
    os.mkfifo(files / "w.npz")  # nobody writes to it: reading would block forever
    m = netc.compile(files / "m.net")
    with pytest.raises(netc.NetcError, match=r"w\.npz is not a regular file, not a weights file"):
        driver.model_weights(m, files / "w.npz")
