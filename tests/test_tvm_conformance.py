"""Op conformance of the TVM backend: every case of conformance.py lowered to Relax (randomized
weights), compiled by netc's Relax pipeline for the host CPU, run through netc's TVM session at
batch 1 and 3 on every input kind (normal, all negative, large, small with zeros), and compared
with the float64 reference within netc.runtime.tolerance's op tolerance.

An LLVM build costs about a second per Relax function, most of it per compile rather than per
kernel, so the cases are compiled GROUP to a module: each case is one Relax function of its
group's module, built once (into a build cache private to this file) and loaded per case by
name. A case that fails to lower fails alone; it is left out of its group's module.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from conformance import CASES, INPUT_KINDS, build, compare, inputs_for

import netc
from netc.backends import to_tvm
from netc.ops import OPS
from netc.runtime import reference
from netc.runtime import tvm as tvm_runtime
from netc.source import NetcError

GROUP = 64  # cases per compiled module

# Cases of this backend's own, beside every case of conformance.py: paths of its rules the
# shared cases leave out (symbolic dims through TE gathers, the transposed convolution's spread
# and reshapes; float16 values where a rule computes in float32; reductions of bools).
F16_IMG = "x: f16[N, 6, 5, 3]"
TVM_CASES = [
    ("slice", "symbolic_window_from_end", "x: f32[N, T, 3]", "y = x[:, -2:]"),
    ("slice", "symbolic_window", "x: f32[N, T, 3]", "y = x[:, 1:3, ::2]"),
    ("squeeze", "symbolic_last_step", "x: f32[N, T, 3]", "y = x[:, -1]"),
    ("reshape", "symbolic", "x: f32[N, T, 4]", "y = x |> reshape((-1, 2))"),
    ("flatten", "symbolic", "x: f32[N, T, 4]", "y = x |> flatten"),
    ("upsample", "symbolic", "x: f32[N, T, 2]", "y = x |> upsample(2)"),
    (
        "conv1d_transpose",
        "symbolic_same",
        "x: f32[N, T, 3]",
        'y = x |> conv1d_transpose(2, 3, stride=2, padding="same")',
    ),
    ("reduce_max", "bool", "x: f32[N, 4, 6]", 'y = (x |> relu) |> cast("bool") |> reduce_max(1)'),
    ("reduce_min", "bool", "x: f32[N, 4, 6]", 'y = (x |> relu) |> cast("bool") |> reduce_min(2)'),
    ("reduce_sum", "f16", "x: f16[N, 4, 6]", "y = x |> reduce_sum(axis=(1, 2))"),
    ("reduce_mean", "f16", "x: f16[N, 4, 6]", "y = x |> reduce_mean(axis=1)"),
    ("avgpool", "f16", F16_IMG, 'y = x |> avgpool(3, stride=2, padding="same")'),
    ("maxpool", "f16", F16_IMG, 'y = x |> maxpool(3, stride=2, padding="same")'),
    ("resize", "f16_bilinear", F16_IMG, "y = x |> resize((9, 4))"),
    ("elu", "f16", "x: f16[N, 7]", "y = x |> elu"),
    ("gelu", "f16", "x: f16[N, 7]", "y = x |> gelu"),
    (
        "conv2d_transpose",
        "f16",
        F16_IMG,
        'y = x |> conv2d_transpose(2, 3, stride=2, padding="same")',
    ),
    ("depthwise_conv2d", "f16", F16_IMG, 'y = x |> depthwise_conv2d(3, padding="same")'),
    ("gru", "f16_reset_before", "x: f16[N, 4, 6]", "y = x |> gru(3, reset_after=false)"),
    (
        "multi_head_attention",
        "f16",
        "x: f16[N, 4, 6]",
        "y = x |> multi_head_attention(heads=2, key_dim=3)",
    ),
    (
        "fused_conv",
        "f16_residual_relu",
        F16_IMG,
        'y = relu(x + (x |> conv2d(3, 3, padding="same")))',
    ),
]
ALL_CASES = CASES + TVM_CASES
IDS = [f"{c[0]}-{c[1]}" for c in ALL_CASES]


@pytest.fixture(scope="module", autouse=True)
def build_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Builds go to a cache of this file's own: each group compiles here, in this run."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NETC_CACHE_DIR", str(tmp_path_factory.mktemp("tvm-conformance-cache")))
        yield


class Groups:
    """The cases' graphs and weights, and each group's artifact, built when first asked."""

    def __init__(self) -> None:
        self.artifacts: dict[int, to_tvm.Artifact] = {}
        self.cases: dict[int, tuple[netc.Graph, dict[str, np.ndarray]]] = {}
        self.refused: dict[int, NetcError] = {}

    def case(self, index: int) -> tuple[netc.Graph, dict[str, np.ndarray]]:
        if index not in self.cases:
            op, _, inputs, body = ALL_CASES[index]
            self.cases[index] = build(op, inputs, body)
        return self.cases[index]

    def session(self, index: int) -> tvm_runtime.TvmSession:
        group = index // GROUP
        if group not in self.artifacts:
            graphs = {}
            for i in range(group * GROUP, min(len(ALL_CASES), (group + 1) * GROUP)):
                graph, weights = self.case(i)
                try:  # lowering alone is cheap: a case TVM cannot express fails by itself
                    to_tvm.emit(graph, weights)
                except NetcError as e:
                    self.refused[i] = e
                    continue
                graphs[f"case_{i}"] = (graph, weights)
            self.artifacts[group] = to_tvm.emit_functions(graphs)
        if index in self.refused:
            raise self.refused[index]
        return tvm_runtime.TvmSession(self.artifacts[group], function=f"case_{index}")


@pytest.fixture(scope="module")
def groups() -> Groups:
    return Groups()


@pytest.mark.parametrize("index", range(len(ALL_CASES)), ids=IDS)
def test_op_matches_the_reference(index: int, groups: Groups) -> None:
    graph, weights = groups.case(index)
    session = groups.session(index)
    assert session.device == "cpu"
    assert [s.name for s in session.inputs] == list(graph.inputs)
    for batch in (1, 3):
        for kind in INPUT_KINDS:
            feed = inputs_for(graph, batch, kind)
            want = reference.run(graph, feed, weights, wide=True)
            try:
                compare(session.run(feed), want)
            except AssertionError as e:
                raise AssertionError(f"{kind} inputs, batch {batch}: {e}") from None


def test_every_op_has_a_rule() -> None:
    assert to_tvm.RULES.missing(OPS) == []


def test_every_op_has_a_conformance_case() -> None:
    assert sorted(set(OPS) - {op for op, *_ in CASES}) == []
