"""`netc bench`: every target compiled, checked against the float64 reference, then timed.

Cheap on purpose: a two-layer MLP, two targets (onnx, tf), two runs a batch size. The tests
check what the command reports (its JSON's structure, the statistics' order, the ratios to
the fastest, each target's agreement with the reference), never how fast anything is, and
that a target computing a wrong answer stops the benchmark before any timing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from netc.cli import cli
from netc.cli.bench import KINDS
from netc.runtime.bench import BLOCK, side_by_side

TINY = """\
model tiny(x: f32[N, 6]) -> (y: f32[N, 3]) {
    y = x |> dense(4) |> relu |> dense(3)
}
"""
SEQ = """\
model seq(x: f32[N, T, 4]) -> (y: f32[N, T, 2]) {
    y = x |> dense(2)
}
"""
QUICK = ("--repeat", "2", "--warmup", "0", "--budget", "0")


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("tiny.net").write_text(TINY)
    Path("seq.net").write_text(SEQ)
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def bench_json(*args: str) -> dict:
    r = run("bench", *args, *QUICK, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_the_targets_are_the_runtimes(files):
    from netc.runtime.bench import BENCH_TARGETS, LABELS

    assert KINDS == tuple(BENCH_TARGETS) == tuple(LABELS)


def test_json_reports_every_target_at_every_batch_size(files):
    data = bench_json("tiny.net", "-t", "onnx", "-t", "tf", "--batch", "1,3")
    assert (data["ok"], data["model"], data["checked"]) == (True, "tiny", True)
    assert (data["batches"], data["dims"], data["skipped"]) == ([1, 3], {}, [])
    assert data["machine"]["cores"] >= 1 and len(data["machine"]["load_average"]) == 3
    targets = data["targets"]
    assert [(t["name"], t["target"], t["device"], t["level"]) for t in targets] == [
        ("onnx", "onnx", "cpu", 2),
        ("tf", "tf", "cpu", 2),
    ]
    for t in targets:
        assert t["compile_s"] > 0 and (t["cached"], t["tuned"]) == (False, False)
        assert t["memory_mib"] is not None and t["memory_mib"] >= 0
        assert [row["batch"] for row in t["batches"]] == [1, 3]
        for row in t["batches"]:
            # --repeat 2 rounds (the budget stops no earlier than 5) of BLOCK timed calls each
            assert row["runs"] == 2 * BLOCK
            assert 0 < row["min_ms"] <= row["p10_ms"] <= row["median_ms"] <= row["p90_ms"]
            assert row["p90_ms"] <= row["max_ms"] and row["first_ms"] > 0
            assert row["throughput"] == pytest.approx(row["batch"] / row["median_ms"] * 1e3)
            assert 0 <= row["max_error"] <= 1  # within the model tolerance of the reference
    for b in (0, 1):  # the fastest of each batch size is 1.0, every other its time over it
        medians = [t["batches"][b]["median_ms"] for t in targets]
        ratios = [t["batches"][b]["vs_fastest"] for t in targets]
        assert ratios == pytest.approx([m / min(medians) for m in medians]) and min(ratios) == 1


def test_side_by_side_times_each_session_in_blocks_after_an_untimed_call():
    calls: list[str] = []

    class Fake:
        def __init__(self, name: str):
            self.name = name

        def run(self, feed):
            calls.append(self.name)
            return {}

    sessions = {"a": Fake("a"), "b": Fake("b")}
    feeds: dict = {"a": {}, "b": {}}
    # settle_s: each turn starts with untimed calls for that long, at least one
    timings = side_by_side(sessions, feeds, warmup=1, repeat=5, block=3, settle_s=1e-9)
    assert {name: len(t.times) for name, t in timings.items()} == {"a": 15, "b": 15}
    turns = calls[2:]  # after one warm-up call each: 5 rounds of two turns of 1 + 3 calls
    assert len(turns) == 40
    assert all(len(set(turns[i : i + 4])) == 1 for i in range(0, 40, 4))
    assert sorted(turns[:8:4]) == ["a", "b"]
    calls.clear()
    timings = side_by_side(sessions, feeds, warmup=0, repeat=2, settle_s=0.02)
    assert len(calls) > 4 and len(timings["a"].times) == 2  # calls for 20 ms, then one timed
    calls.clear()
    timings = side_by_side(sessions, feeds, warmup=0, repeat=5)
    assert len(calls) == 10 and len(timings["a"].times) == 5  # one timed call a turn
    with pytest.raises(ValueError, match="block must be >= 1, got 0"):
        side_by_side(sessions, feeds, block=0)


def test_levels_and_a_keras_target_are_named_by_their_flags(files):
    data = bench_json("tiny.net", "-t", "onnx", "-t", "keras", "-O", "0", "-O", "2")
    names = [(t["name"], t["level"], t["options"]) for t in data["targets"]]
    assert names == [
        ("onnx -O0", 0, {}),
        ("onnx -O2", 2, {}),
        ("keras --inference -O0", 0, {"inference": True}),
        ("keras --inference -O2", 2, {"inference": True}),
    ]
    assert data["batches"] == [1, 8, 32]  # the default sizes


def test_a_wrong_target_stops_the_benchmark_before_timing(files, monkeypatch):
    from netc.runtime import bench
    from netc.runtime.onnx import OnnxSession

    right = OnnxSession.run

    def wrong(self, inputs):
        return {k: v + np.float32(1e-2) for k, v in right(self, inputs).items()}

    def never(*args, **kwargs):
        raise AssertionError("timed a target that computes a wrong answer")

    monkeypatch.setattr(OnnxSession, "run", wrong)
    monkeypatch.setattr(bench, "side_by_side", never)
    r = run("bench", "tiny.net", "-t", "onnx", "--batch", "2", *QUICK)
    assert r.exit_code == 1
    assert "error: `onnx` does not agree with the reference on output `y` at batch 2: " in r.stderr
    assert "values differ" in r.stderr
    assert "help: a fast wrong answer is no answer: `netc verify MODEL.net -t onnx`" in r.stderr
    r = run("bench", "tiny.net", "-t", "onnx", "--batch", "2", *QUICK, "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["ok"] is False


def test_a_target_not_installed_is_skipped_with_one_line(files, monkeypatch):
    from netc.runtime import bench

    installed = bench._installed
    monkeypatch.setattr(bench, "_installed", lambda name: name != "tvm" and installed(name))
    data = bench_json("tiny.net", "-t", "onnx", "-t", "tvm", "--batch", "1")
    assert data["skipped"] == ["tvm: skipped, tvm is not installed (pip install 'netc[tvm]')"]
    assert [t["name"] for t in data["targets"]] == ["onnx"]
    r = run("bench", "tiny.net", "-t", "onnx", "-t", "tvm", "--batch", "1", *QUICK)
    assert r.exit_code == 0
    assert r.stderr == "tvm: skipped, tvm is not installed (pip install 'netc[tvm]')\n"
    assert "│ onnx   │ cpu    │" in r.stdout and "of tolerance" in r.stdout


def test_dim_sizes_a_symbol_other_than_the_batch(files):
    data = bench_json("seq.net", "-t", "onnx", "--dim", "T=5", "--batch", "2")
    assert data["dims"] == {"T": 5} and data["targets"][0]["batches"][0]["max_error"] <= 1
    r = run("bench", "seq.net", "--dim", "N=5", *QUICK)
    assert r.exit_code == 1 and "error: --dim N: `N` is the batch size here" in r.stderr
    r = run("bench", "seq.net", "--dim", "Q=5", *QUICK)
    assert r.exit_code == 1
    assert "error: --dim Q: the model's inputs have no symbol `Q` (T)" in r.stderr
    r = run("bench", "seq.net", "--batch", "1,0", *QUICK)
    assert r.exit_code == 2 and "write batch sizes >= 1 separated by commas" in r.stderr


def test_an_artifact_is_timed_alone_unchecked(files):
    assert run("tiny.net", "-q", "-o", "tiny.onnx").exit_code == 0
    data = bench_json("tiny.onnx", "--batch", "2")
    assert data["checked"] is False
    [target] = data["targets"]
    assert (target["name"], target["target"]) == ("tiny.onnx", "onnx")
    assert "max_error" not in target["batches"][0] and target["batches"][0]["runs"] == 2
    r = run("bench", "tiny.onnx", "-t", "tf")
    assert r.exit_code == 2 and "apply to a .net model, not to an artifact" in r.stderr
