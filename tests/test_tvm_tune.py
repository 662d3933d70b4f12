"""`netc tune`: MetaSchedule tuning for -t tvm (netc.backends.tvm_tune). A tiny model is tuned
with a few trials for a fixed batch, and the database it writes is the one every later build of
that model, target and size uses, with numbers that agree with the reference. Where TVM cannot
serialize its IR (apache-tvm-ffi 0.1.15 crashes the process doing it; the tvm extra pins 0.1.14)
`netc tune` is one clear error before any work, and so is a model whose kernels all run over a
symbolic dim.
"""

from __future__ import annotations

import inspect
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conformance import INPUT_KINDS, inputs_for

import netc
from netc import driver
from netc.backends import to_tvm, tvm, tvm_schedules, tvm_tune
from netc.cli import cli
from netc.runtime import reference
from netc.runtime.tolerance import assert_close

TINY = """\
model tiny(x: f32[N, 6, 6, 3]) -> (y: tensor) {
    y = x |> conv2d(8, 3, padding="same") |> relu |> global_avgpool |> dense(4)
}
"""


@pytest.fixture(autouse=True)
def build_cache(tmp_path: Path) -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NETC_CACHE_DIR", str(tmp_path / "cache"))
        yield tmp_path / "cache"


def test_tune_writes_the_database_every_later_build_of_the_same_size_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A few trials on a tiny model whose kernels have no default schedule here (netc's
    schedules taken away while it tunes: every tuned kernel beats TVM's plain loop nests, so
    each is kept): the database is saved under the build's key, found by the next build of the
    same model, target and size (not by another), and computes the same."""
    monkeypatch.chdir(tmp_path)
    Path("tiny.net").write_text(TINY)
    root = logging.getLogger()
    before = (root.handlers[:], [h.stream for h in root.handlers if hasattr(h, "stream")])
    with monkeypatch.context() as m:
        m.setattr(tvm_schedules, "schedule_function", lambda func, info: None)
        r = CliRunner().invoke(
            cli, ["tune", "tiny.net", "--trials", "4", "--seed", "3", "--dim", "N=2"]
        )
    assert r.exit_code == 0, r.output
    assert "netc tune: 4/4 trials" in r.stderr and r.stdout.startswith("tuned tiny (4 trials)")
    # the process's logging as it was: MetaSchedule's own logger setup (dictConfig) would have
    # closed every handler there, pytest's among them, and left its own on a closed stdout
    assert (root.handlers, [h.stream for h in root.handlers if hasattr(h, "stream")]) == before
    assert not logging.getLogger("tvm.s_tir.meta_schedule").handlers
    model = netc.compile(tmp_path / "tiny.net")
    weights = driver.model_weights(model, None, 3)
    artifact = driver.emit(model, "tvm", seed=3, dims={"N": 2})
    summary = tvm_tune.tuning_summary(artifact)
    assert summary is not None and summary["trials"] == 4
    kernels = summary["kernels"]
    assert kernels and all(k["default_us"] is None and k["kept"] for k in kernels)
    assert f"{len(kernels)} of {len(kernels)} kernels measured faster tuned" in r.stdout
    database = tvm_tune.saved_database(artifact)
    assert database is not None and len(database.get_all_tuning_records()) == len(kernels)
    tuned = to_tvm.library(artifact)  # finds the database by itself
    assert tuned == to_tvm.library(artifact, database)
    assert tuned != to_tvm.library(driver.emit(model, "tvm", seed=4, dims={"N": 2}))
    assert tvm_tune.saved_database(driver.emit(model, "tvm", seed=3, dims={"N": 3})) is None
    session = netc.runtime.load(tuned)
    for kind in INPUT_KINDS:
        feed = inputs_for(model.graph, 2, kind)
        want = reference.run(model.graph, feed, weights, wide=True)["y"]
        assert_close(session.run(feed)["y"], want, scope="model", err_msg=kind)


def test_a_tuned_kernel_slower_than_netcs_schedule_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With netc's schedules, each kernel's best candidate is timed against netc's schedule
    measured the same way; the database keeps only the faster tuned ones, so a tuned build is
    never slower on a kernel than an untuned one (2 trials a kernel rarely beat netc here)."""
    monkeypatch.chdir(tmp_path)
    Path("tiny.net").write_text(TINY)
    r = CliRunner().invoke(cli, ["tune", "tiny.net", "--trials", "3", "--dim", "N=2", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    kernels = data["kernels"]
    assert {k["kernel"] for k in kernels} >= {"fused_conv2d_add_relu"}
    for k in kernels:
        assert k["default_us"] is not None and k["default_us"] > 0, k  # netc's, measured
        assert k["kept"] == (k["tuned_us"] < k["default_us"]), k
    artifact = driver.emit(netc.compile(tmp_path / "tiny.net"), "tvm", dims={"N": 2})
    database = tvm_tune.saved_database(artifact)
    assert database is not None
    assert len(database.get_all_tuning_records()) == sum(k["kept"] for k in kernels)


def test_a_model_whose_kernels_all_have_a_symbolic_dim_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("tiny.net").write_text(TINY)
    r = CliRunner().invoke(cli, ["tune", "tiny.net", "--trials", "2"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.stderr.splitlines()[:2] == [
        "netc: error: model `tiny` has no kernel of a fixed size to tune: its kernels run over "
        "the symbolic dims N, and MetaSchedule tunes kernels of known sizes",
        "  = help: tune for the size you deploy with --dim N=SIZE, and build with the same --dim",
    ]
    assert not (tmp_path / "cache" / "tvm-tuning").exists()  # nothing written


def test_a_tvm_that_cannot_serialize_its_ir_is_one_clear_error_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tvm_ffi

    monkeypatch.chdir(tmp_path)
    Path("tiny.net").write_text(TINY)
    # the crash apache-tvm-ffi 0.1.15 gives, in the child process the check runs
    monkeypatch.setattr(tvm_tune, "_SERIALIZES", "import os; os.kill(os.getpid(), 11)")
    tvm_tune.check_serialization.cache_clear()
    try:
        r = CliRunner().invoke(cli, ["tune", "tiny.net", "--trials", "2", "--dim", "N=2"])
    finally:
        tvm_tune.check_serialization.cache_clear()
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.stderr.startswith(
        "netc: error: netc tune needs MetaSchedule, which cannot run with the installed "
        f"apache-tvm {tvm().__version__} and apache-tvm-ffi {tvm_ffi.__version__}: "
        "serializing TVM's IR (tvm.ir.save_json, which MetaSchedule does to copy and measure "
        "every candidate) crashes the process (exit status -11)"
    )
    assert "-t tvm builds without tuning" in r.stderr
    assert not (tmp_path / "cache" / "tvm-tuning").exists()  # nothing written


def test_tune_checks_its_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("tiny.net").write_text(TINY)
    r = CliRunner().invoke(cli, ["tune", "tiny.net", "--trials", "0"])
    assert r.exit_code == 2 and "Invalid value for '--trials'" in r.output
    r = CliRunner().invoke(cli, ["tune", "missing.net"])
    assert r.exit_code == 1 and "Traceback" not in r.output


def test_a_build_key_does_not_depend_on_how_the_source_path_is_spelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a fused op keeps its source places (`origin`): they are not what the build computes, so
    # a database tuned from `tiny.net` serves a build of /its/absolute/path
    monkeypatch.chdir(tmp_path)
    Path("tiny.net").write_text(TINY)
    keys = {
        driver.emit(netc.compile(p), "tvm", dims={"N": 2}).key
        for p in ("tiny.net", str(tmp_path / "tiny.net"), "./tiny.net")
    }
    assert len(keys) == 1


def test_tvmscripts_decorators_get_from_the_shallow_stack_what_they_read_of_inspect_stack() -> None:
    """`netc tune` imports TVM's tensor intrinsics (~500 TVMScript functions) with a shallow
    `inspect.stack` (32 s -> 6 s in a bare process): the same frames, and the source line of
    the nearest three, which is all TVMScript's decorators read (frames[2]'s line, every
    frame's locals); TVM's parser modules have the real `inspect` back afterwards."""

    def both() -> tuple[list, list]:
        return tvm_tune._ShallowInspect.stack(), inspect.stack()

    shallow, full = both()
    assert [f.frame for f in shallow] == [f.frame for f in full]
    assert [(f.lineno, f.function) for f in shallow] == [(f.lineno, f.function) for f in full]
    near = [(f.filename, f.code_context, f.index) for f in full[:3]]
    assert [(f.filename, f.code_context, f.index) for f in shallow[:3]] == near
    assert near[0][1] == ["        return tvm_tune._ShallowInspect.stack(), inspect.stack()\n"]
    assert all(f.code_context is None for f in shallow[3:])
    tvm()
    tvm_tune._import_tensor_intrinsics()
    from tvm.relax.script.parser import entry as relax_entry
    from tvm.script.parser.ir import entry as ir_entry
    from tvm.tirx.script.parser import entry as tir_entry

    assert all(m.inspect is inspect for m in (relax_entry, ir_entry, tir_entry))
    assert "tvm.s_tir.tensor_intrin" in sys.modules
