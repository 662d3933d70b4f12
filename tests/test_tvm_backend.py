"""The TVM backend end to end: every example at -O2 against the float64 reference (the six
heaviest computed at a smaller input, and compiled at full size), the fused kernels netc's
Relax pipeline makes, the MODEL.tvm folder (loaded by TVM itself, written atomically, the same
bytes for the same source and seed), the build cache, symbolic dims and `--dim`, `--emit
relax`, targets (`--tvm-target`, CUDA without CUDA), a tuning database, threads, the session's
errors, `netc run` and `netc verify -t tvm`, and TVM never imported by `import netc` or
`netc check`.

Builds go to a cache private to this file (NETC_CACHE_DIR), so every build here is real.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conformance import INPUT_KINDS, inputs_for

import netc
import netc.runtime
from netc import driver
from netc.backends import to_tvm, tvm, tvm_build, tvm_schedules
from netc.cli import cli
from netc.runtime import reference
from netc.runtime import tvm as tvm_runtime
from netc.runtime.tolerance import assert_close
from netc.weights import randomized_weights

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.net"))
# Examples above this many FLOPs per sample (the 224 x 224 and 299 x 299 networks but the
# MobileNets, the video model) take TVM's unscheduled kernels 5-50 s a sample: they are built
# at full size, and computed at a smaller input (the same network: their heads are global
# pools, so every weight is the same) at batch 1 and 3 (docs/tvm.md, "Tolerances and tests").
# 224 x 224 inputs run at full size in the MobileNets.
HEAVY_FLOPS = 3e9
SMALLER = {
    "224, 224, 3]": "64, 64, 3]",
    "299, 299, 3]": "96, 96, 3]",
    "16, 112, 112, 3]": "8, 32, 32, 3]",
}

CNN = """\
model cnn(image: f32[N, 12, 12, 3]) -> (logits: f32[N, 5]) {
    x = image |> conv2d(8, 3, padding="same", bias=false) |> batchnorm |> relu |> maxpool(2)
    logits = x |> flatten |> dense(5)
}
"""

RESIDUAL = """\
model residual(x: f32[N, 8, 8, 4]) -> (y: f32[N, 8, 8, 4]) {
    y = relu(x + (x |> conv2d(4, 3, padding="same")))
}
"""

TWO_WAY = """\
model two_way(x: f32[N, T, 6], ids: i32[N, T]) -> (a: tensor, b: tensor, c: tensor) {
    a = x |> multi_head_attention(heads=2, key_dim=3, causal=true) |> layernorm
    b, h, cell = x |> lstm(4, return_sequences=true, return_state=true, go_backwards=true)
    c = ids |> embedding(20, 6) |> gru(3)
}
"""


@pytest.fixture(scope="module", autouse=True)
def build_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as mp:
        folder = tmp_path_factory.mktemp("tvm-backend-cache")
        mp.setenv("NETC_CACHE_DIR", str(folder))
        yield folder


def run_cli(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def heavy(model: netc.Model) -> bool:
    return model.flops > HEAVY_FLOPS


def smaller(path: Path) -> netc.Model:
    """A heavy example with a smaller input: its model line's image size replaced."""
    text = path.read_text()
    (header,) = [line for line in text.splitlines() if line.startswith("model ")]
    (size,) = [k for k in SMALLER if k in header]
    return netc.compile_text(
        text.replace(header, header.replace(size, SMALLER[size])), path=str(path)
    )


# --- every example, as deployed --------------------------------------------------------------


@cache
def example(stem: str):
    """The example (a heavy one at its smaller input), its drawn weights, and its session at
    -O2. Feeds and their float64 reference: batch 3 holds a normal, an all-negative and a large
    sample, batch 1 one with small values and zeros."""
    path = ROOT / "examples" / f"{stem}.net"
    model = netc.compile(path)
    if heavy(model):
        model = smaller(path)
    weights = randomized_weights(model.graph, seed=3)
    session = netc.runtime.load(driver.emit(model, "tvm", weights=weights))
    three = [inputs_for(model.graph, 1, kind, seed=i) for i, kind in enumerate(INPUT_KINDS[:3])]
    feeds = {
        3: {n: np.concatenate([f[n] for f in three]) for n in model.graph.inputs},
        1: inputs_for(model.graph, 1, INPUT_KINDS[3], seed=3),
    }
    wants = {b: reference.run(model.graph, f, weights, wide=True) for b, f in feeds.items()}
    return model, session, feeds, wants


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_matches_the_reference(path: Path, batch: int) -> None:
    model, session, feeds, wants = example(path.stem)
    got = session.run(feeds[batch])
    assert set(got) == set(wants[batch])
    for name, want in wants[batch].items():
        assert_close(got[name], want, scope="model", err_msg=f"{path.stem}.{name}")


HEAVY = [p for p in EXAMPLES if heavy(netc.compile(p))]


def test_the_heavy_examples_are_the_big_networks() -> None:
    assert [p.stem for p in HEAVY] == [
        "convnext_tiny",
        "inception_v3",
        "resnet18",
        "resnet50",
        "video_classifier",
        "xception",
    ]


# Full-size builds, one per input size of SMALLER (224, 299, 16x112): the others are the same
# ops at the same sizes, compiled at their smaller input by test_example_matches_the_reference.
FULL_SIZE_BUILDS = ("resnet50", "inception_v3", "video_classifier")


@pytest.mark.parametrize("path", HEAVY, ids=lambda p: p.stem)
def test_a_heavy_example_is_the_same_network_at_its_smaller_input(path: Path) -> None:
    """The same weights (names and shapes) at the smaller input, and (for one example of each
    input size) the full-size example lowered and compiled: its library loads with the
    example's own signature."""
    full, small = netc.compile(path), smaller(path)
    assert {n.name: n.type for n in full.graph.params} == {
        n.name: n.type for n in small.graph.params
    }
    assert small.flops < full.flops / 5
    if path.stem not in FULL_SIZE_BUILDS:
        return
    session = netc.runtime.load(driver.emit(full, "tvm"))
    assert (session.inputs, session.outputs) == netc.runtime.api.graph_signature(full.graph)


# --- the pipeline: fusion --------------------------------------------------------------------


def _kernels(artifact: to_tvm.Artifact) -> dict[str, str]:
    """The PrimFuncs `main` calls after netc's pipeline, each with its TVMScript."""
    t = tvm()
    module = to_tvm.optimize(artifact.module, to_tvm.make_target(artifact.target))
    return {
        g.name_hint: f.script()
        for g, f in module.functions.items()
        if isinstance(f, t.tirx.PrimFunc)
    }


def test_a_conv_with_bias_activation_and_residual_is_one_kernel() -> None:
    model = netc.compile(RESIDUAL)
    weights = randomized_weights(model.graph, 1)
    artifact = driver.emit(model, "tvm", weights=weights)
    assert "R.nn.conv2d" in artifact.script()  # the Relax netc built: conv, adds, relu
    kernels = _kernels(artifact)
    (name,) = kernels  # one PrimFunc: the convolution, both adds and the relu
    assert name.startswith("fused_conv2d_add_add") and name.endswith("_relu"), name
    text = kernels[name]
    assert 'T.sblock("conv2d_nhwc")' in text and "T.max(" in text  # conv then relu, one func
    feed = inputs_for(model.graph, 3, "normal")
    want = reference.run(model.graph, feed, weights, wide=True)
    assert_close(netc.runtime.load(artifact).run(feed)["y"], want["y"], scope="model")


def test_dense_bias_and_gelu_are_one_kernel_and_batchnorm_folds_away() -> None:
    model = netc.compile(
        "model m(x: f32[N, 7]) -> (y: tensor) {\n  y = x |> dense(5) |> batchnorm |> gelu\n}\n"
    )
    kernels = _kernels(driver.emit(model, "tvm"))
    assert len(kernels) == 1, list(kernels)
    (name,) = kernels
    assert name.startswith("fused_matmul_add") and "erf" in kernels[name]


def test_pools_reach_schedules_and_tuning_without_topi_s_schedule_rule() -> None:
    # TOPI marks pool blocks "meta_schedule.pool_max"/"pool_avg", a custom MetaSchedule rule
    # no CPU target registers: `netc tune` logged a warning on stderr for each
    model = netc.compile(
        "model m(x: f32[N, 8, 8, 4]) -> (y: tensor) {\n"
        "  y = x |> maxpool(2) |> avgpool(2) |> global_avgpool\n}\n"
    )
    kernels = _kernels(driver.emit(model, "tvm"))
    assert any("pool" in name for name in kernels), list(kernels)
    assert not [name for name, text in kernels.items() if "schedule_rule" in text]


def test_weights_are_constants_and_the_layout_is_channels_last() -> None:
    artifact = driver.emit(netc.compile(CNN), "tvm")
    text = artifact.script()
    assert "def main(image: R.Tensor((N, 12, 12, 3)" in text  # one parameter: the input
    assert 'data_layout="NHWC", kernel_layout="HWIO"' in text
    assert 'metadata["ir.GenericConst"]' in text
    assert "permute_dims" not in text  # no transpose anywhere


def test_a_tuning_database_is_applied_where_schedules_are(monkeypatch) -> None:
    """The plug-in point for tuned kernels: a MetaSchedule database given to `library` (or
    `save`) reaches `schedule`, and its build is a cache entry of its own."""
    from tvm.s_tir import meta_schedule as ms

    seen = []
    real = tvm_build.schedule

    def spy(module, target, database=None, **options):
        seen.append(database)
        return real(module, target, database, **options)

    monkeypatch.setattr(tvm_build, "schedule", spy)
    model = netc.compile(CNN)
    weights = randomized_weights(model.graph, 7)
    artifact = driver.emit(model, "tvm", weights=weights)
    database = ms.database.MemoryDatabase()  # empty: every kernel keeps its loop nest
    plain, tuned = to_tvm.library(artifact), to_tvm.library(artifact, database=database)
    assert seen == [None, database] and plain != tuned
    feed = inputs_for(model.graph, 3)
    want = reference.run(model.graph, feed, weights, wide=True)["logits"]
    assert_close(netc.runtime.load(tuned).run(feed)["logits"], want, scope="model")


# --- the default schedules -------------------------------------------------------------------


@cache
def scheduled(stem: str) -> dict[str, str]:
    """The PrimFuncs of an example (at full size) after `schedule`, each with the default
    schedule's rule that scheduled it ("none" for a loop nest left as TVM made it)."""
    t = tvm()
    artifact = driver.emit(netc.compile(ROOT / "examples" / f"{stem}.net"), "tvm")
    target = to_tvm.make_target(artifact.target)
    module = to_tvm.schedule(to_tvm.optimize(artifact.module, target), target)
    return {
        g.name_hint: str((f.attrs or {}).get(tvm_schedules.SCHEDULE_ATTR, "none"))
        for g, f in module.functions.items()
        if isinstance(f, t.tirx.PrimFunc)
    }


def _rules_by_kind(kernels: dict[str, str]) -> dict[str, set[str]]:
    """Which rules scheduled the kernels of each kind (the op a fused kernel starts with;
    `fast_softmax`, FastMathTransform's, is a softmax)."""
    out: dict[str, set[str]] = {}
    for name, rule in kernels.items():
        op = name.removeprefix("fused_").removeprefix("fast_")
        kind = re.sub(r"\d+$", "", op.split("_")[0])
        out.setdefault(kind, set()).add(rule)
    return out


def test_every_kernel_of_resnet18_is_a_register_tile_with_its_weights_packed() -> None:
    kernels = scheduled("resnet18")
    assert _rules_by_kind(kernels) == {
        "conv2d": {"tile"},  # with its bias, residual and relu
        "matmul": {"tile"},  # the classifier
        "max": {"tile"},  # max_pool2d
        "mean": {"tile"},  # the global average pool
    }
    # every convolution's and the classifier's weights are repacked when it compiles: their
    # PrimFuncs take the packed constant (`_prepacked`), and no repacking is left to run
    convs = [k for k in kernels if k.startswith(("fused_conv2d", "fused_matmul"))]
    assert len(convs) == 19 and all(k.endswith("_prepacked") for k in convs), convs


def test_every_kernel_of_mobilenet_v2_is_scheduled() -> None:
    assert _rules_by_kind(scheduled("mobilenet_v2")) == {
        "conv2d": {"tile"},  # the depthwise ones too, with their relu6 (maximum, minimum)
        "matmul": {"tile"},
        "mean": {"tile"},
        "softmax": {"reduction"},  # dlight's CPU rule
    }


def test_the_transformer_s_kernels_take_each_rule() -> None:
    kinds = _rules_by_kind(scheduled("transformer_classifier"))
    assert kinds["matmul"] == {"tile"}  # projections, attention's batched matmuls, the MLP
    assert kinds["softmax"] == {"reduction"}
    assert kinds["mean"] == {"reduction", "tile"}  # layernorm's over the last axis; the pool
    assert kinds["take"] == kinds["transpose"] == kinds["reshape"] == {"injective"}
    assert "none" not in set().union(*kinds.values())


TRANSCENDENTAL = """\
model curves(x: f32[N, 16]) -> (a: tensor, b: tensor, c: tensor, d: tensor, e: tensor) {
    h = x |> dense(32)
    a = h |> gelu
    b = h |> gelu(approximate=true)
    c = (h |> sigmoid) + (h |> silu) + (h |> tanh)
    d = h |> softmax
    e = exp(x) |> elu
}
"""


def test_no_kernel_calls_the_c_library_s_scalar_exp_erf_or_tanh() -> None:
    """exp, tanh, erf and softmax reach LLVM as arithmetic it vectorizes (FastMathTransform,
    and sigmoid, silu and gelu written with them): no kernel of a model taking each calls
    T.exp, T.erf, T.tanh or T.sigmoid, which compile to libm's one-element calls."""
    t = tvm()
    artifact = driver.emit(netc.compile(TRANSCENDENTAL), "tvm")
    target = to_tvm.make_target(artifact.target)
    module = to_tvm.optimize(artifact.module, target)
    kernels = {g.name_hint: f.script() for g, f in module.functions.items()}
    kernels = {k: v for k, v in kernels.items() if isinstance(module[k], t.tirx.PrimFunc)}
    assert any("fast_erf" in k for k in kernels) and any("fast_tanh" in k for k in kernels)
    for name, text in kernels.items():
        for call in ("T.exp(", "T.erf(", "T.tanh(", "T.sigmoid("):
            assert call not in text, f"{name} calls {call}"


def test_the_scans_exp_and_tanh_are_float32_accurate_and_saturate() -> None:
    """The recurrent scans' exp and tanh (arithmetic LLVM vectorizes, not libm's scalar
    calls), compiled for this CPU, against float64 on 200,000 points: exp within 1e-7
    relative where float32 holds it, 0 below and inf above; tanh within 2e-7 absolute, -1
    and 1 at the ends."""
    from netc.backends.tvm_sequence import _exp, _tanh

    t = tvm()
    count = 200_000
    a = t.te.placeholder((count,), "float32", "a")
    exp_of_a = t.te.compute((count,), lambda i: _exp(a[i]), "exp")
    tanh_of_a = t.te.compute((count,), lambda i: _tanh(a[i]), "tanh")
    func = t.te.create_prim_func([a, exp_of_a, tanh_of_a])
    library = t.compile(t.IRModule({"main": func}), target=to_tvm.make_target(to_tvm.host_target()))
    x = np.concatenate([np.linspace(-100, 100, count // 2), np.linspace(-3, 3, count // 2)])
    x = x.astype(np.float32)
    args = [t.runtime.tensor(x), *(t.runtime.tensor(np.zeros_like(x)) for _ in range(2))]
    library["main"](*args)
    exp, tanh = args[1].numpy(), args[2].numpy()
    want = np.exp(x.astype(np.float64))
    held = (x > -87.3) & (x < 88.37)
    assert np.max(np.abs(exp[held] - want[held]) / want[held]) < 1e-7
    assert np.all(exp[x < -88.38] == 0) and np.all(np.isposinf(exp[x > 88.38]))
    assert np.max(np.abs(tanh - np.tanh(x.astype(np.float64)))) < 2e-7
    assert tanh[0] == -1 and tanh[count // 2 - 1] == 1


def test_the_recurrent_scans_keep_their_loops_and_the_rest_is_scheduled() -> None:
    kernels = scheduled("lstm_forecaster")
    assert {k: r for k, r in kernels.items() if r == "none"} == {
        "lstm_32": "none",
        "lstm_64": "none",
    }


def test_several_sequences_scan_in_parallel_and_one_alone() -> None:
    # each sequence's recurrence is its own: the rows run in parallel (the forecaster 1.5x
    # faster at batch 8 on two threads), a single one in a serial loop (no pool to wake);
    # both paths agree with the reference in the conformance tests (batch 1 and 3)
    model = netc.compile(
        "model m(x: f32[N, T, 4]) -> (a: tensor, b: tensor, c: tensor) {\n"
        "  a = x |> lstm(3)\n  b = x |> gru(3)\n  c = x |> gru(3, reset_after=false)\n}\n"
    )
    kernels = _kernels(driver.emit(model, "tvm"))
    scans = {k: v for k, v in kernels.items() if k.startswith(("lstm", "gru"))}
    assert sorted(k.split("_")[0] for k in scans) == ["gru", "gru", "lstm"], list(kernels)
    for name, text in scans.items():
        parallel, serial = text.split("else:")
        assert "if n > T.int64(1):" in parallel and "T.parallel(n)" in parallel, name
        assert "T.parallel" not in serial and "for i in range(n)" in serial, name


WIDE = """\
model wide(x: f32[N, 8, 8, 32]) -> (y: tensor) {
    y = x |> conv2d(64, 3, padding="same") |> relu
}
"""


@pytest.mark.parametrize(
    ("mcpu", "bits", "rows", "vector"),
    [("skylake-avx512", 512, 8, 32), ("haswell", 256, 4, 16), (None, 128, 4, 8)],
)
def test_the_register_tile_follows_the_target_s_vectors(mcpu, bits, rows, vector) -> None:
    """The tile of a convolution for AVX-512 (32 registers of 16 floats: up to 13 rows of 2
    vectors), AVX2 (16 of 8: up to 6 rows of 2) and generic x86-64 (SSE: up to 6 rows of 2 x
    4), in rows that divide the image's 64 cells: 8, 4 and 4."""
    spec = {"kind": "llvm", **({"mcpu": mcpu} if mcpu else {})}
    target = to_tvm.make_target(spec)
    assert tvm_schedules.cpu(target).vector_bits == bits
    artifact = driver.emit(netc.compile(WIDE), "tvm", tvm_target=spec)
    module = to_tvm.schedule(to_tvm.optimize(artifact.module, target), target)
    (conv,) = [f for g, f in module.functions.items() if g.name_hint.startswith("fused_conv")]
    assert str(conv.attrs[tvm_schedules.SCHEDULE_ATTR]) == "tile"
    text = conv.script()
    update = text[text.index('T.sblock("conv2d_nhwc_update")') - 400 :]
    assert f"T.unroll(T.int64({rows}))" in update and f"T.vectorized(T.int64({vector}))" in update


def test_a_tile_s_rows_divide_the_axis_where_they_can() -> None:
    # AVX2, 2 vectors: up to 6 rows. 128 tokens: 4 (no partial tile); 49 cells (7 x 7): 5, as
    # no divisor up to 6 but 1 does; 3136 (56 x 56): 4; AVX-512 (13 rows): 64 cells in 8
    rows = tvm_schedules._rows
    assert [rows(e, 6, 2) for e in (128, 49, 3136, 6, 5, 7, 1)] == [4, 5, 4, 6, 5, 4, 1]
    assert rows(64, 13, 2) == 8 and rows(49, 13, 2) == 7
    assert rows(None, 6, 2) == 1  # a symbolic axis: one row (the dense test below)


NARROW = """\
model narrow(x: f32[N, 6, 6, 32]) -> (y: tensor) {
    y = x |> conv2d(24, 1)
}
"""


def test_a_tile_of_three_vectors_computes_them_one_at_a_time() -> None:
    """24 output channels on AVX2 are a tile 3 vectors wide: vectorized as one 24-float
    vector, LLVM compiled it into code 10-15x slower than a tile of 2 (MobileNetV2's 1x1
    convolutions to 24 channels: 1.2 and 1.7 ms at batch 1, 0.08 and 0.15 ms after); each
    vector is a step of an unrolled loop now. The numbers: `test_scheduled_and_unscheduled_
    builds_compute_the_same_numbers` (its 1x1 convolution to 24 channels)."""
    spec = {"kind": "llvm", "mcpu": "haswell"}
    target = to_tvm.make_target(spec)
    artifact = driver.emit(netc.compile(NARROW), "tvm", tvm_target=spec, dims={"N": 1})
    module = to_tvm.schedule(to_tvm.optimize(artifact.module, target), target)
    (conv,) = [f for g, f in module.functions.items() if g.name_hint.startswith("fused_conv")]
    text = conv.script()
    at = text.index('T.sblock("conv2d_nhwc_update")')
    update = text[at - 300 : at]
    assert "T.unroll(T.int64(3))" in update and "T.vectorized(T.int64(8))" in update, update
    assert "T.vectorized(T.int64(24))" not in text


SOFTMAX = "model probs(x: f32[N, 1000]) -> (y: tensor) { y = x |> softmax }"


@pytest.mark.parametrize(("dims", "rule"), [({"N": 1}, "none"), ({"N": 4}, "reduction")])
def test_a_softmax_of_one_row_keeps_tvms_loop_nest(dims, rule) -> None:
    """dlight's CPU reduction rule, given a softmax of one row (--dim N=1), nested every
    block under a parallel loop over the 1000 outputs: the whole softmax computed once per
    element (1.4 ms a call instead of microseconds). One row keeps TVM's loop nest; several
    rows take the rule. Both agree with the reference."""
    model = netc.compile(SOFTMAX)
    artifact = driver.emit(model, "tvm", dims=dims)
    target = to_tvm.make_target(artifact.target)
    module = to_tvm.schedule(to_tvm.optimize(artifact.module, target), target)
    (softmax,) = [f for g, f in module.functions.items() if "softmax" in g.name_hint]
    assert str((softmax.attrs or {}).get(tvm_schedules.SCHEDULE_ATTR, "none")) == rule
    session = netc.runtime.load(artifact)
    for kind in INPUT_KINDS:
        feed = inputs_for(model.graph, dims["N"], kind)
        want = reference.run(model.graph, feed, {}, wide=True)["y"]
        assert_close(session.run(feed)["y"], want, scope="model", err_msg=kind)


DENSE = """\
model dense(x: f32[N, 32]) -> (y: tensor) {
    y = x |> dense(128) |> relu
}
"""


@pytest.mark.parametrize(("dims", "rows", "vector"), [(None, 1, 64), ({"N": 8}, 4, 16)])
def test_a_symbolic_batch_is_tiled_one_row_at_a_time(dims, rows, vector) -> None:
    """A dense layer's tile over a symbolic batch is one row of 8 vectors (AVX2: 64 columns),
    with no predicate in it (a tile of several rows of a symbolic axis checks each row, and
    was 1.6-2.3x slower); a known batch of 8 takes 2 tiles of 4 rows of 2 vectors."""
    spec = {"kind": "llvm", "mcpu": "haswell"}
    target = to_tvm.make_target(spec)
    artifact = driver.emit(netc.compile(DENSE), "tvm", tvm_target=spec, dims=dims)
    module = to_tvm.schedule(to_tvm.optimize(artifact.module, target), target)
    (dense,) = [f for g, f in module.functions.items() if g.name_hint.startswith("fused_matmul")]
    assert str(dense.attrs[tvm_schedules.SCHEDULE_ATTR]) == "tile"
    text = dense.script()
    start = text.index("for k in range(T.int64(32))")
    update = text[start : text.index("T.sblock(", text.index("matmul_update", start) + 20)]
    assert f"T.unroll(T.int64({rows}))" in update and f"T.vectorized(T.int64({vector}))" in update
    assert "T.where" not in update


SCHEDULED = """\
model every_rule(x: f32[N, 9, 9, 8], s: f32[N, T, 12]) -> (a: tensor, b: tensor, c: tensor) {
    y = x |> conv2d(16, 3, padding="same") |> batchnorm |> relu
    z = y |> depthwise_conv2d(3, stride=2) |> relu6 |> maxpool(2)
    w = y |> conv2d(24, 1, bias=false)
    a = concat(z |> global_avgpool, w |> global_maxpool) |> dense(7) |> softmax
    h = s |> multi_head_attention(heads=3, key_dim=4) |> layernorm
    b = (s + h) |> dense(20) |> gelu |> dense(5)
    c = s |> lstm(6, return_sequences=true) |> reduce_mean(2)
}
"""


def test_scheduled_and_unscheduled_builds_compute_the_same_numbers() -> None:
    """A network taking every rule (convolutions with their epilogues, depthwise, pools,
    dense, softmax, attention, layernorm, a recurrent scan), built with and without netc's
    default schedules: both agree with the reference and with each other, on every input
    kind, at batch 1 and 3 (one library)."""
    t = tvm()
    model = netc.compile(SCHEDULED)
    weights = randomized_weights(model.graph, 11)
    artifact = driver.emit(model, "tvm", weights=weights)
    target = to_tvm.make_target(artifact.target)
    module = to_tvm.schedule(to_tvm.optimize(artifact.module, target), target)
    rules = {
        str((f.attrs or {}).get(tvm_schedules.SCHEDULE_ATTR))
        for f in module.functions.values()
        if isinstance(f, t.tirx.PrimFunc)
    }
    assert {"tile", "reduction", "injective"} <= rules
    plain = tvm_runtime.TvmSession(to_tvm.library(artifact, defaults=False))
    fast = netc.runtime.load(artifact)
    for batch in (1, 3):
        for kind in INPUT_KINDS:
            feed = inputs_for(model.graph, batch, kind)
            want = reference.run(model.graph, feed, weights, wide=True)
            got, unscheduled = fast.run(feed), plain.run(feed)
            for name in want:
                where = f"{name}, {kind}, batch {batch}"
                assert_close(got[name], want[name], scope="model", err_msg=where)
                assert_close(unscheduled[name], want[name], scope="model", err_msg=where)
                assert_close(got[name], unscheduled[name], scope="model", err_msg=where)


# --- the artifact folder ---------------------------------------------------------------------


def test_the_folder_holds_a_library_tvm_loads_and_netcs_signature(tmp_path: Path) -> None:
    model = netc.compile(TWO_WAY)
    weights = randomized_weights(model.graph, 2)
    path = tmp_path / "two_way.tvm"
    to_tvm.save(driver.emit(model, "tvm", weights=weights), path)
    assert sorted(p.name for p in path.iterdir()) == ["model.so", "netc.json"]
    info = json.loads((path / "netc.json").read_text())
    assert info["model"] == "two_way" and info["tvm"] == tvm().__version__
    assert info["layout"] == "NHWC" and info["target"] == to_tvm.host_target()
    assert info["functions"]["main"]["inputs"] == [
        {"name": "x", "dtype": "f32", "shape": ["N", "T", 6]},
        {"name": "ids", "dtype": "i32", "shape": ["N", "T"]},
    ]
    assert [o["name"] for o in info["functions"]["main"]["outputs"]] == ["a", "b", "c"]
    # TVM alone (no netc) loads and runs the library: outputs in the model's order
    t = tvm()
    vm = t.relax.VirtualMachine(t.runtime.load_module(str(path / "model.so")), t.cpu())
    feed = inputs_for(model.graph, 3, "normal")
    raw = vm["main"](*(t.runtime.tensor(feed[n]) for n in model.graph.inputs))
    want = reference.run(model.graph, feed, weights, wide=True)
    for i, name in enumerate(("a", "b", "c")):
        assert_close(raw[i].numpy(), want[name], scope="model", err_msg=name)
    session = netc.runtime.load(path)
    assert isinstance(session, tvm_runtime.TvmSession)
    assert session.inputs == netc.runtime.api.graph_signature(model.graph)[0]
    assert session.outputs == netc.runtime.api.graph_signature(model.graph)[1]


def test_the_same_source_and_seed_give_the_same_bytes(tmp_path: Path) -> None:
    """Two processes, two caches: two real builds (symbolic dims, TE and TIR kernels: TVM
    orders the shape functions' stores by pointer, netc by slot)."""
    (tmp_path / "two_way.net").write_text(TWO_WAY)
    folders = []
    for i in range(2):
        env = {**os.environ, "NETC_CACHE_DIR": str(tmp_path / f"cache{i}")}
        out = tmp_path / f"two_way{i}.tvm"
        subprocess.run(
            [sys.executable, "-m", "netc", "two_way.net", "-t", "tvm", "-q", "-o", str(out)],
            cwd=tmp_path,
            env=env,
            check=True,
            capture_output=True,
        )
        folders.append(out)
    for name in ("model.so", "netc.json"):
        assert (folders[0] / name).read_bytes() == (folders[1] / name).read_bytes(), name


def test_a_failed_write_leaves_the_previous_folder(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "cnn.tvm"
    model = netc.compile(CNN)
    to_tvm.save(driver.emit(model, "tvm", seed=1), path)
    before = (path / "netc.json").read_bytes()

    def failing(executable, where):
        Path(where).write_bytes(b"half a library")
        raise OSError("disk full")

    monkeypatch.setattr(tvm_build, "_export", failing)
    with pytest.raises(netc.NetcError) as info:
        to_tvm.save(driver.emit(model, "tvm", seed=2), path)  # another seed: a new build
    assert "cannot write the TVM build cache" in info.value.diagnostics[0].message
    assert (path / "netc.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn.tvm"]


def test_netc_does_not_replace_a_folder_of_something_else(tmp_path: Path) -> None:
    other = tmp_path / "photos.tvm"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(netc.NetcError) as info:
        to_tvm.save(driver.emit(netc.compile(CNN), "tvm"), other)
    assert "is a folder that is not a netc TVM artifact" in info.value.diagnostics[0].message
    assert sorted(p.name for p in other.iterdir()) == ["cat.jpg"]


# --- the build cache -------------------------------------------------------------------------


def test_a_second_run_with_nothing_changed_does_not_rebuild(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NETC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    Path("cnn.net").write_text(CNN)
    builds = []
    real = tvm_build.build

    def counting(module, target, database=None, **options):
        builds.append(module)
        return real(module, target, database, **options)

    monkeypatch.setattr(tvm_build, "build", counting)
    for _ in range(2):
        r = run_cli("cnn.net", "-t", "tvm", "-q")
        assert r.exit_code == 0, r.output
    assert len(builds) == 1  # the second run found the library in the cache
    first = Path("cnn.tvm/model.so").read_bytes()
    assert run_cli("cnn.net", "-t", "tvm", "-q", "--seed", "5").exit_code == 0
    assert len(builds) == 2  # other weights: another library
    assert Path("cnn.tvm/model.so").read_bytes() != first
    assert run_cli("cnn.net", "-t", "tvm", "-q", "--tvm-target", "llvm").exit_code == 0
    assert len(builds) == 3  # another target
    assert run_cli("cnn.net", "-t", "tvm", "-q", "--seed", "5").exit_code == 0
    assert len(builds) == 3
    netc.runtime.load("cnn.net", target="tvm", seed=5).run(inputs_for(netc.compile(CNN).graph, 2))
    assert len(builds) == 3  # a session of the same model: the same cache entry


# --- symbolic dims ---------------------------------------------------------------------------


def test_one_library_runs_at_every_batch_and_length() -> None:
    model = netc.compile(TWO_WAY)
    weights = randomized_weights(model.graph, 4)
    session = netc.runtime.load(driver.emit(model, "tvm", weights=weights))
    rng = np.random.default_rng(0)
    for n, t in ((1, 1), (3, 7), (2, 12)):
        feed = {
            "x": rng.standard_normal((n, t, 6)).astype(np.float32),
            "ids": rng.integers(0, 20, (n, t)).astype(np.int32),
        }
        got = session.run(feed)
        want = reference.run(model.graph, feed, weights, wide=True)
        for name in want:
            assert_close(got[name], want[name], scope="model", err_msg=f"{name} at N={n}, T={t}")


def _on_a_64_byte_boundary(a: np.ndarray) -> np.ndarray:
    raw = np.empty(a.nbytes + 64, np.uint8)
    at = -raw.ctypes.data % 64
    out = raw[at : at + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def test_inputs_of_any_layout_and_outputs_that_outlive_the_next_call() -> None:
    # the session hands aligned C-contiguous arrays to the VM in place (DLPack) and returns the
    # VM's own buffers: every other layout is copied, and no call changes an earlier result
    model = netc.compile(RESIDUAL)
    weights = randomized_weights(model.graph, 2)
    session = netc.runtime.load(driver.emit(model, "tvm", weights=weights))
    rng = np.random.default_rng(0)
    base = rng.standard_normal((3, 8, 8, 4)).astype(np.float32)
    aligned, frozen = _on_a_64_byte_boundary(base), _on_a_64_byte_boundary(base)
    frozen.flags.writeable = False  # numpy exports no read-only array by DLPack: copied
    raw = np.empty(base.nbytes + 128, np.uint8)
    at = -raw.ctypes.data % 64 + 4  # 4 bytes past a boundary
    off = raw[at : at + base.nbytes].view(np.float32).reshape(base.shape)
    off[...] = base
    assert aligned.ctypes.data % 64 == 0 and frozen.ctypes.data % 64 == 0
    assert off.ctypes.data % 64 != 0
    want = reference.run(model.graph, {"x": base}, weights, wide=True)["y"]
    layouts = {
        "aligned": aligned,
        "read-only": frozen,
        "unaligned": off,
        "fortran": np.asfortranarray(base),
        "strided": np.repeat(base, 2, axis=2)[:, :, ::2],
    }
    results = {kind: session.run({"x": x})["y"] for kind, x in layouts.items()}
    session.run({"x": -base})  # a later call with other numbers
    for kind, got in results.items():
        assert_close(got, want, scope="model", err_msg=kind)
        assert got.flags.writeable and not np.shares_memory(got, layouts[kind]), kind
    np.testing.assert_array_equal(aligned, base)  # the VM did not write into an input


def test_an_output_that_is_an_input_is_the_caller_s_own_copy() -> None:
    model = netc.compile(
        "model same(x: f32[N, 4]) -> (y: f32[N, 4], z: tensor) {\n  y = x\n  z = x |> relu\n}\n"
    )
    session = netc.runtime.load(driver.emit(model, "tvm", weights={}))
    x = np.empty(4 * 3 + 16, np.float32)
    at = (-x.ctypes.data % 64) // 4
    x = x[at : at + 12].reshape(3, 4)
    x[...] = np.arange(-6, 6).reshape(3, 4)
    out = session.run({"x": x})
    np.testing.assert_array_equal(out["y"], x)
    np.testing.assert_array_equal(out["z"], np.maximum(x, 0))
    out["y"][...] = 7  # the caller's result, not its input
    np.testing.assert_array_equal(x, np.arange(-6, 6).reshape(3, 4))
    # an input TVM cannot read in place is copied into a staging buffer the session keeps
    # for the next call: a result returned from it is the caller's own copy too
    first = session.run({"x": np.asfortranarray(x)})
    second = session.run({"x": np.asfortranarray(-x)})
    np.testing.assert_array_equal(first["y"], x)
    np.testing.assert_array_equal(second["y"], -x)
    np.testing.assert_array_equal(second["z"], np.maximum(-x, 0))


def test_dim_fixes_a_symbol_at_compile_time() -> None:
    model = netc.compile(TWO_WAY)
    weights = randomized_weights(model.graph, 4)
    artifact = driver.emit(model, "tvm", weights=weights, dims={"N": 2})
    # (TVMScript prints the symbol T as T_1 beside the module alias T of a PrimFunc)
    assert re.search(r"def main\(x: R\.Tensor\(\(2, T\w*, 6\)", artifact.script())
    session = netc.runtime.load(artifact)
    assert [s.shape for s in session.inputs] == [(2, "T", 6), (2, "T")]
    feed = inputs_for(model.graph, 2, "normal")
    want = reference.run(model.graph, feed, weights, wide=True)
    got = session.run(feed)
    for name in want:
        assert_close(got[name], want[name], scope="model", err_msg=name)
    with pytest.raises(netc.NetcError) as info:
        session.run(inputs_for(model.graph, 3, "normal"))
    assert "input `x` has shape [3, 5, 6], the model needs f32[2, T, 6] (axis 0 must be 2)" in (
        info.value.diagnostics[0].notes
    )


def test_dim_names_a_symbol_of_the_model(tmp_path: Path, monkeypatch) -> None:
    model = netc.compile(CNN)
    with pytest.raises(netc.NetcError) as info:
        driver.emit(model, "tvm", dims={"T": 4})
    assert info.value.diagnostics[0].message == (
        "--dim T=4: model `cnn` has no symbolic dim `T` (its symbols: N)"
    )
    with pytest.raises(netc.NetcError) as info:
        driver.emit(model, "tvm", dims={"N": 0})
    assert info.value.diagnostics[0].message == "--dim N=0: a dim needs a size >= 1"
    monkeypatch.chdir(tmp_path)
    Path("cnn.net").write_text(CNN)
    r = CliRunner().invoke(cli, ["cnn.net", "--dim", "N=4"])
    assert (r.exit_code, r.stderr.splitlines()[0]) == (
        1,
        "netc: error: --dim applies to -t tvm, not to -t onnx",
    )
    r = CliRunner().invoke(cli, ["cnn.net", "-t", "tvm", "--dim", "N4"])
    assert r.exit_code == 2 and "'N4': write SYMBOL=SIZE, e.g. N=8" in r.stderr
    r = run_cli("cnn.net", "-t", "tvm", "-q", "--dim", "N=3", "-o", "cnn3.tvm")
    assert r.exit_code == 0, r.output
    assert json.loads(Path("cnn3.tvm/netc.json").read_text())["dims"] == {"N": 3}


# --- --emit relax ----------------------------------------------------------------------------


def test_emit_relax_prints_the_module_as_tvmscript(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("cnn.net").write_text(CNN)
    r = run_cli("cnn.net", "-t", "tvm", "--emit", "relax")
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "@I.ir_module" in out and "@R.function" in out
    assert 'def main(image: R.Tensor((N, 12, 12, 3), dtype="float32"))' in out
    # -O2: the batchnorm folded into the convolution, relu fused after it
    assert "R.nn.conv2d(" in out and "batchnorm" not in out and "R.nn.relu(" in out
    assert not Path("cnn.tvm").exists()  # printed, not written
    r0 = run_cli("cnn.net", "-t", "tvm", "--emit", "relax", "-O0")
    assert "batchnorm: R.Tensor((N, 12, 12, 8)" in r0.stdout  # named after the IR value
    bad = CliRunner().invoke(cli, ["cnn.net", "--emit", "relax"])
    assert bad.exit_code == 1
    assert bad.stderr.startswith("netc: error: --emit relax applies to -t tvm, not to -t onnx")


# --- targets and devices ---------------------------------------------------------------------


def test_tvm_target_forms() -> None:
    host = to_tvm.host_target()
    assert host["kind"] == "llvm" and host["mcpu"] == tvm().target.codegen.llvm_get_system_cpu()
    assert to_tvm.target_spec(None) == host == to_tvm.target_spec("host")
    assert to_tvm.target_spec("llvm") == {"kind": "llvm"}
    assert to_tvm.target_spec('{"kind": "llvm", "mcpu": "skylake-avx512"}') == {
        "kind": "llvm",
        "mcpu": "skylake-avx512",
    }
    assert to_tvm.target_spec("llvm -mcpu=haswell -num-cores=4 -mattr=+avx2,+fma") == {
        "kind": "llvm",
        "mcpu": "haswell",
        "num-cores": 4,
        "mattr": ["+avx2", "+fma"],
    }
    for text, message in (
        ('{"kind": "llvm"', "--tvm-target is not valid JSON: Expecting ',' delimiter"),
        ('{"mcpu": "x"}', '--tvm-target needs a JSON object with a "kind"'),
        ("llvm mcpu=x", "--tvm-target: cannot read `mcpu=x`"),
    ):
        with pytest.raises(netc.NetcError) as info:
            to_tvm.target_spec(text)
        assert info.value.diagnostics[0].message.startswith(message), text
    with pytest.raises(netc.NetcError) as info:
        to_tvm.make_target({"kind": "quantum"})
    assert info.value.diagnostics[0].message.startswith(
        'TVM refuses the target {"kind": "quantum"}: '
    )


def test_a_generic_llvm_target_at_tvms_own_optimization_level() -> None:
    """`--tvm-target llvm`: portable x86-64 code (SSE2: 128-bit vectors in the schedules) in
    place of the host's instruction set; the numbers agree either way."""
    model = netc.compile(TWO_WAY)
    weights = randomized_weights(model.graph, 5)
    session = netc.runtime.load(driver.emit(model, "tvm", weights=weights, tvm_target="llvm"))
    assert session.target == {"kind": "llvm"}
    for kind in INPUT_KINDS:
        feed = inputs_for(model.graph, 3, kind)
        want = reference.run(model.graph, feed, weights, wide=True)
        got = session.run(feed)
        for name in want:
            assert_close(got[name], want[name], scope="model", err_msg=f"{name}, {kind}")


NO_CUDA = (
    "needs a TVM built with CUDA; the installed apache-tvm {} has no CUDA (the PyPI wheel is "
    "built for CPUs, with LLVM only)"
)


@pytest.mark.skipif(tvm_runtime.cuda_available(), reason="this TVM has CUDA and a GPU")
def test_cuda_without_a_cuda_tvm_is_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    message = NO_CUDA.format(tvm().__version__)
    model = netc.compile(CNN)
    with pytest.raises(netc.NetcError) as info:
        driver.emit(model, "tvm", tvm_target="cuda")
    (d,) = info.value.diagnostics
    assert d.message == f"the tvm target `cuda` {message}"
    assert d.hint and "USE_CUDA=ON" in d.hint
    with pytest.raises(netc.NetcError) as info:
        netc.runtime.load(model, target="tvm", device="cuda")
    assert info.value.diagnostics[0].message == f"device cuda {message}"
    monkeypatch.chdir(tmp_path)
    Path("cnn.net").write_text(CNN)
    assert run_cli("cnn.net", "-t", "tvm", "-q").exit_code == 0
    np.save("x.npy", np.zeros((1, 12, 12, 3), np.float32))
    r = CliRunner().invoke(cli, ["run", "cnn.tvm", "-i", "x.npy", "--device", "cuda"])
    assert r.exit_code == 1 and r.stderr.startswith(f"netc: error: device cuda {message}")
    r = CliRunner().invoke(cli, ["cnn.net", "-t", "tvm", "--tvm-target", "cuda"])
    assert r.exit_code == 1 and "Traceback" not in r.output


# --- the session -----------------------------------------------------------------------------


def test_threads_size_tvms_thread_pool() -> None:
    model = netc.compile(CNN)
    feed = inputs_for(model.graph, 2)
    for threads in (2, 1):
        session = netc.runtime.load(model, target="tvm", threads=threads)
        assert tvm().runtime.num_threads() == threads
        assert session.run(feed)["logits"].shape == (2, 5)
    with pytest.raises(netc.NetcError) as info:
        netc.runtime.load(model, target="tvm", threads=0)
    assert info.value.diagnostics[0].message == "threads must be >= 1, got 0"


def _cpuinfo_cores() -> int:
    """The physical cores this process may use, from /proc/cpuinfo (another source than the
    sysfs topology netc reads)."""
    allowed = os.sched_getaffinity(0)
    cores, cpu, package = set(), None, "0"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "processor":
            cpu = int(value)
        elif key == "physical id":
            package = value
        elif key == "core id" and cpu in allowed:
            cores.add((package, value))
    return len(cores) or len(allowed)


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="Linux's /proc/cpuinfo")
def test_the_default_pool_has_a_thread_per_physical_core(tmp_path: Path) -> None:
    # TVM's own default on x86 is half the logical CPUs: one thread on a 2-core machine
    # without hyper-threads, where ONNX Runtime runs two
    assert tvm_runtime.physical_cores() == _cpuinfo_cores()
    (tmp_path / "cnn.net").write_text(CNN)
    code = (
        "import netc, netc.runtime, tvm\n"
        "netc.runtime.load(netc.compile(open('cnn.net').read()), target='tvm')\n"
        "print(tvm.runtime.num_threads())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TVM_NUM_THREADS", "OMP_NUM_THREADS")}
    runs = {}
    for name, extra in (("default", {}), ("TVM_NUM_THREADS", {"TVM_NUM_THREADS": "1"})):
        r = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env={**env, **extra},
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr
        runs[name] = int(r.stdout.split()[-1])
    assert runs == {"default": _cpuinfo_cores(), "TVM_NUM_THREADS": 1}


def test_netc_run_runs_a_tvm_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("cnn.net").write_text(CNN)
    assert run_cli("cnn.net", "-t", "tvm", "-q", "--seed", "2").exit_code == 0
    feed = inputs_for(netc.compile(CNN).graph, 3)
    np.save("x.npy", feed["image"])
    r = run_cli("run", "cnn.tvm", "-i", "x.npy", "-o", "y.npz", "--threads", "1")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("logits: float32[3, 5]  min ")
    model = netc.compile(CNN)
    want = reference.run(model.graph, feed, driver.model_weights(model, seed=2), wide=True)
    with np.load("y.npz") as got:
        assert_close(got["logits"], want["logits"], scope="model")
    with pytest.raises(netc.NetcError) as info:
        netc.runtime.load("cnn.tvm", graph_optimization="basic")
    assert info.value.diagnostics[0].message == (
        "inter_op_threads and graph_optimization are ONNX Runtime's, not tvm's"
    )


def test_the_session_checks_its_inputs_and_reads_only_netc_folders(tmp_path: Path) -> None:
    model = netc.compile(CNN)
    session = netc.runtime.load(model, target="tvm")
    with pytest.raises(netc.NetcError) as info:
        session.run({"image": np.zeros((1, 12, 12, 3), np.float64)})
    assert list(info.value.diagnostics[0].notes) == [
        "input `image` has dtype float64, the model needs f32[N, 12, 12, 3]"
    ]
    with pytest.raises(netc.NetcError) as info:
        netc.runtime.load(tmp_path / "none.tvm")
    assert info.value.diagnostics[0].message == f"no such TVM artifact: {tmp_path / 'none.tvm'}"
    (tmp_path / "empty.tvm").mkdir()
    with pytest.raises(netc.NetcError) as info:
        netc.runtime.load(tmp_path / "empty.tvm")
    assert "is not a netc TVM artifact (it needs model.so and netc.json)" in (
        info.value.diagnostics[0].message
    )


def test_a_sequence_longer_than_a_positional_table_is_refused_when_it_runs() -> None:
    """The table has max_length rows: the library checks the symbolic length before it reads
    one (the reference refuses such a sequence too); the check keeps the ops fused."""
    model = netc.compile(
        "model m(x: f32[N, T, 3]) -> (y: tensor) {\n  y = x |> positional_embedding(9) |> relu\n}\n"
    )
    weights = randomized_weights(model.graph, 3)
    artifact = driver.emit(model, "tvm", weights=weights)
    assert len(_kernels(artifact)) == 1
    session = netc.runtime.load(artifact)
    feed = {"x": np.random.default_rng(0).standard_normal((2, 9, 3)).astype(np.float32)}
    want = reference.run(model.graph, feed, weights, wide=True)["y"]
    assert_close(session.run(feed)["y"], want, scope="model")
    with pytest.raises(netc.NetcError) as info:
        session.run({"x": np.zeros((2, 10, 3), np.float32)})
    assert info.value.diagnostics[0].message == (
        "TVM failed to run model `m`: positional_embedding `positional_embedding` got a "
        "sequence of 10 steps, more than max_length=9"
    )


def test_a_resize_of_a_symbolic_size_needs_the_size_fixed() -> None:
    model = netc.compile(
        "model m(x: f32[N, H, W, 2]) -> (y: tensor) {\n"
        '  y = x |> upsample(2, method="bilinear")\n'
        "}\n"
    )
    with pytest.raises(netc.NetcError) as info:
        driver.emit(model, "tvm")
    (d,) = info.value.diagnostics
    assert d.message == (
        "the tvm backend cannot lower `upsample` of a symbolic height or width: the tvm "
        "backend resizes with index tables made at compile time (fix the size with --dim)"
    )
    assert (d.span.line, d.span.col) == (2, 12)
    session = netc.runtime.load(driver.emit(model, "tvm", dims={"H": 3, "W": 4}))
    feed = {"x": np.random.default_rng(1).standard_normal((2, 3, 4, 2)).astype(np.float32)}
    want = reference.run(model.graph, feed, {}, wide=True)["y"]
    assert_close(session.run(feed)["y"], want)


def test_bf16_is_refused_at_its_input() -> None:
    model = netc.compile("model m(x: bf16[N, 4]) -> (y: tensor) {\n  y = x |> relu\n}\n")
    with pytest.raises(netc.NetcError) as info:
        driver.emit(model, "tvm")
    (d,) = info.value.diagnostics
    assert d.message.startswith("the tvm backend cannot take bf16 input `x`")
    assert (d.span.line, d.span.col) == (1, 9)


def test_a_rule_that_makes_the_wrong_type_is_a_located_error(monkeypatch) -> None:
    def wrong_flatten(ctx, node):  # a broken lowering: the wrong shape
        return ctx.emit(ctx.R.reshape(ctx.get(node.inputs[0]), [ctx.dim("N"), 6, 48]))

    monkeypatch.setitem(to_tvm.RULES.table, "flatten", wrong_flatten)
    with pytest.raises(netc.NetcError) as info:
        driver.emit(netc.compile(CNN), "tvm")
    (d,) = info.value.diagnostics
    assert d.message.startswith("the tvm backend cannot lower `flatten`: its rule made ")
    assert d.message.endswith("netc's type is f32[N, 288] (a bug in the tvm backend)")
    assert (d.span.line, d.span.col) == (3, 19)


# --- netc verify -----------------------------------------------------------------------------


def test_verify_agrees_and_points_at_a_broken_rule(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("lenet.net").write_text((ROOT / "examples" / "lenet.net").read_text())
    ok = run_cli("verify", "lenet.net", "-t", "tvm")
    assert ok.exit_code == 0, ok.output
    assert "lenet.net: the tvm backend agrees with the reference" in ok.stdout

    def wrong_pool(ctx, node):  # a broken lowering: max where netc means the average
        a = node.attrs
        return ctx.emit(
            ctx.R.nn.max_pool2d(ctx.get(node.inputs[0]), a["size"], a["stride"], layout="NHWC")
        )

    monkeypatch.setitem(to_tvm.RULES.table, "avgpool", wrong_pool)
    bad = CliRunner().invoke(cli, ["verify", "lenet.net", "-t", "tvm"])
    assert bad.exit_code == 1
    assert bad.stderr.startswith(
        "lenet.net:14:64: error: the tvm backend differs from the reference here"
    ), bad.stderr
    assert "IR value `conv_pool_0.avgpool` (avgpool), emitted as tvm tensor" in bad.stderr
    assert "Traceback" not in bad.output


def test_verify_bisects_to_a_value_tvm_cannot_compute(monkeypatch) -> None:
    model = netc.compile(CNN)

    def failing_flatten(ctx, node):  # a broken lowering that fails only at run time
        n = ctx.dim("N")
        halves = ctx.emit(ctx.R.reshape(ctx.get(node.inputs[0]), [n * 2, 144]))
        some = ctx.bb.match_cast(halves, ctx.relax.TensorType(None, "float32", ndim=2))
        return ctx.bb.match_cast(some, ctx.relax.TensorType([n, 288], "float32"))

    monkeypatch.setitem(to_tvm.RULES.table, "flatten", failing_flatten)
    from netc.runtime.verify import verify

    report = verify(model, target="tvm", level=0, device="cpu")
    d = report.first
    assert (d.node, d.op, d.span.line, d.span.col) == ("flatten", "flatten", 3, 19)
    assert "TVM failed to run model" in d.failure
    assert report.diagnostic().message.startswith("the tvm backend fails to compute this value")


# --- packaging -------------------------------------------------------------------------------


def test_without_tvm_the_target_is_one_error_naming_the_extra(tmp_path: Path) -> None:
    (tmp_path / "cnn.net").write_text(CNN)
    code = (
        "import sys\n"
        "sys.modules['tvm'] = None  # as if apache-tvm were not installed\n"
        "from netc.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    for args in (["cnn.net", "-t", "tvm"], ["verify", "cnn.net", "-t", "tvm"]):
        r = subprocess.run(
            [sys.executable, "-c", code, *args], cwd=tmp_path, capture_output=True, text=True
        )
        assert r.returncode == 1, r.stderr
        assert r.stderr.splitlines()[:2] == [
            "netc: error: the tvm target needs TVM (apache-tvm), which is not installed",
            "  = help: pip install 'netc[tvm]' (the PyPI package `tvm` is another project)",
        ], r.stderr
    assert not (tmp_path / "cnn.tvm").exists()


def test_import_netc_check_and_help_never_import_tvm(tmp_path: Path) -> None:
    (tmp_path / "cnn.net").write_text(CNN)
    code = (
        "import sys\n"
        "import netc, netc.runtime\n"
        "from netc.cli import main\n"
        "for args in (['--help'], ['check', 'cnn.net'], ['cnn.net', '-t', 'tvm', '--help']):\n"
        "    main(args, standalone_mode=False)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tvm', 'tvm_ffi')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.splitlines()[-1] == "[]"
