"""`netc tune`: MetaSchedule tuning for -t tvm (netc.backends.tvm_tune). On a TVM whose IR
serializes, a tiny model is tuned with a few trials, and the database it writes is the one
every later build of that model and target uses, with numbers that agree with the reference.
On the installed apache-tvm 0.27.0.post1 with apache-tvm-ffi 0.1.15.post2, serializing any
TIR node crashes the process (MetaSchedule copies every module it searches that way): there
`netc tune` is one clear error before any work. The test takes the path the installed TVM
allows (the other cannot run on it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conformance import INPUT_KINDS, inputs_for

import netc
from netc import driver
from netc.backends import to_tvm, tvm, tvm_tune
from netc.cli import cli
from netc.runtime import reference
from netc.runtime.tolerance import assert_close
from netc.source import NetcError

TINY = """\
model tiny(x: f32[N, 6, 6, 3]) -> (y: tensor) {
    y = x |> conv2d(8, 3, padding="same") |> relu |> global_avgpool |> dense(4)
}
"""


def serializes() -> bool:
    try:
        tvm_tune.check_serialization()
    except NetcError:
        return False
    return True


SERIALIZES = serializes()


@pytest.fixture(autouse=True)
def build_cache(tmp_path: Path) -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NETC_CACHE_DIR", str(tmp_path / "cache"))
        yield tmp_path / "cache"


def test_tune_writes_the_database_every_later_build_uses_or_says_why_it_cannot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("tiny.net").write_text(TINY)
    if SERIALIZES:
        tuned_build_uses_the_database(tmp_path)
    else:
        one_clear_error(tmp_path)


def one_clear_error(tmp_path: Path) -> None:
    """Where TVM cannot serialize its IR: one error, before any work; builds unaffected."""
    import tvm_ffi

    r = CliRunner().invoke(cli, ["tune", "tiny.net", "--trials", "2"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.stderr.startswith(
        "netc: error: netc tune needs MetaSchedule, which cannot run with the installed "
        f"apache-tvm {tvm().__version__} and apache-tvm-ffi {tvm_ffi.__version__}: "
        "serializing TVM's IR (tvm.ir.save_json, which MetaSchedule does to copy and measure "
        "every candidate) crashes the process (exit status "
    )
    assert "-t tvm builds without tuning" in r.stderr
    assert not (tmp_path / "cache" / "tvm-tuning").exists()  # nothing written
    # and the build itself is unaffected: no database, netc's default schedules
    artifact = driver.emit(netc.compile(tmp_path / "tiny.net"), "tvm")
    assert tvm_tune.saved_database(artifact) is None
    assert (to_tvm.library(artifact) / to_tvm.LIBRARY).is_file()


def tuned_build_uses_the_database(tmp_path: Path) -> None:
    """A few trials on a tiny model: the database is saved under the build's key, found by
    the next build of the same model and target (not by another), and computes the same."""
    r = CliRunner().invoke(cli, ["tune", "tiny.net", "--trials", "4", "--seed", "3"])
    assert r.exit_code == 0, r.output
    assert "netc tune: 4/4 trials" in r.stderr and r.stdout.startswith("tuned tiny (4 trials)")
    model = netc.compile(tmp_path / "tiny.net")
    weights = driver.model_weights(model, None, 3)
    artifact = driver.emit(model, "tvm", seed=3)
    database = tvm_tune.saved_database(artifact)
    assert database is not None and len(database.get_all_tuning_records()) >= 1
    tuned = to_tvm.library(artifact)  # finds the database by itself
    assert tuned == to_tvm.library(artifact, database)
    assert tuned != to_tvm.library(driver.emit(model, "tvm", seed=4))  # other weights
    session = netc.runtime.load(tuned)
    for batch in (1, 3):
        for kind in INPUT_KINDS:
            feed = inputs_for(model.graph, batch, kind)
            want = reference.run(model.graph, feed, weights, wide=True)["y"]
            assert_close(session.run(feed)["y"], want, scope="model", err_msg=kind)


def test_tune_checks_its_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("tiny.net").write_text(TINY)
    r = CliRunner().invoke(cli, ["tune", "tiny.net", "--trials", "0"])
    assert r.exit_code == 2 and "Invalid value for '--trials'" in r.output
    r = CliRunner().invoke(cli, ["tune", "missing.net"])
    assert r.exit_code == 1 and "Traceback" not in r.output
