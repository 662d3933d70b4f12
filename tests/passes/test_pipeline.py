"""The optimizer's pipeline: every example verified at every opt level, what -O2 does to the
big ones, keep_training, print_after, stats, the checker catching broken passes, and a
property test: random small networks compute the same at -O0 and -O2."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netc
from netc.passes import (
    LEVELS,
    O2,
    PASSES,
    PassError,
    eliminate_dead_nodes,
    fold_batchnorm,
    optimize,
    pipeline,
)
from netc.passes.checking import Checker, random_inputs
from netc.weights import randomized_weights

EXAMPLES_DIR = Path(__file__).parent.parent.parent / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.net"))

# The big examples at small sizes, so the reference runs each in well under a second; the
# structure (every layer, every fold) is unchanged.
SMALLER = {
    "resnet18": [("224, 224", "32, 32")],
    "resnet50": [("224, 224", "32, 32")],
    "mobilenet_v2": [("224, 224", "32, 32")],
    "unet": [("128, 128", "16, 16")],
    "video_classifier": [("16, 112, 112", "8, 16, 16")],
    "inception_v3": [("299, 299", "75, 75")],  # its valid convolutions need 75
    "xception": [("299, 299", "71, 71")],  # ... and these 71
    "mobilenet_v3_small": [("224, 224", "32, 32")],
    "convnext_tiny": [("224, 224", "32, 32")],
}


def example(stem: str) -> tuple[netc.Graph, dict]:
    text = (EXAMPLES_DIR / f"{stem}.net").read_text()
    for old, new in SMALLER.get(stem, []):
        assert old in text, f"{stem}.net no longer has {old}: update SMALLER"
        text = text.replace(old, new)
    graph = netc.compile_text(text, path=f"examples/{stem}.net").graph
    return graph, randomized_weights(graph)


@pytest.mark.parametrize("level", [0, 1, 2])
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_verifies_at_every_level(path, level):
    g, w = example(path.stem)
    g2, w2 = optimize(g, w, level, verify=True)
    assert sorted(w2) == sorted(n.name for n in g2.params)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_verifies_when_training(path):
    g, w = example(path.stem)
    g2, _ = optimize(g, w, 2, keep_training=True, verify=True)
    assert sum(n.op in ("batchnorm", "dropout") for n in g2.nodes) == sum(
        n.op in ("batchnorm", "dropout") for n in g.nodes
    )


def op_counts(graph: netc.Graph) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in graph.nodes:
        out[n.op] = out.get(n.op, 0) + 1
    return out


def test_o2_folds_every_batchnorm_of_resnet50_and_fuses_its_relus():
    g, w = example("resnet50")
    stats: dict = {}
    g2, w2 = optimize(g, w, 2, stats=stats)
    before, after = op_counts(g), op_counts(g2)
    assert before["batchnorm"] == stats["fold_batchnorm"].fused == 53
    assert "batchnorm" not in after and "relu" not in after and "pad" not in after
    # 49 convs take their relu (16 of them with the residual add); the 4 projections do not
    assert after["fused_conv"] == 49 and after["conv2d"] == 4 and "add" not in after
    assert len(g.nodes) == 497 and len(g2.nodes) == 166
    assert sum(v.size for v in w2.values()) == sum(
        v.size for k, v in w.items() if "batchnorm" not in k
    )


def test_o2_folds_every_batchnorm_of_mobilenet_v2_and_fuses_its_relu6s():
    g, w = example("mobilenet_v2")
    g2, _ = optimize(g, w, 2)
    before, after = op_counts(g), op_counts(g2)
    assert before["batchnorm"] == 52 and "batchnorm" not in after
    assert before["relu6"] == 35 and "relu6" not in after and after["fused_conv"] == 35
    # the linear projections stay plain convs; their residual adds stay adds
    assert after["conv2d"] == 17 and after["add"] == before["add"] == 10
    assert len(g.nodes) == 415 and len(g2.nodes) == 172


def test_keep_training_keeps_batchnorm_dropout_and_every_weight():
    g, w = example("speech_classifier")
    g2, w2 = optimize(g, w, 2, keep_training=True)
    assert sorted(w2) == sorted(w)
    assert op_counts(g2)["batchnorm"] == 2 and op_counts(g2)["dropout"] == 1
    assert fold_batchnorm not in pipeline(2, keep_training=True)


def test_level_0_changes_nothing():
    g, w = example("lenet")
    g2, w2 = optimize(g, w, 0, verify=True)
    assert g2 is g and w2 is w


def test_an_unknown_level_or_pass_name_is_an_error():
    g, w = example("mnist_mlp")
    with pytest.raises(ValueError, match="opt level 3"):
        optimize(g, w, 3)
    with pytest.raises(ValueError, match="unknown pass fold_everything"):
        optimize(g, w, print_after=["fold_everything"])


def test_print_after_hands_the_named_passes_ir_to_the_callback():
    g, w = example("mnist_mlp")
    printed: list[tuple[str, str]] = []
    optimize(g, w, 2, print_after=["fuse_activation"], on_print=lambda *a: printed.append(a))
    assert [name for name, _ in printed] == ["fuse_activation"]
    assert "fused_dense" in printed[0][1]
    printed.clear()
    optimize(g, w, 1, print_after=["all"], on_print=lambda *a: printed.append(a))
    assert [name for name, _ in printed] == [p.__name__ for p in LEVELS[1]]


def test_print_after_writes_to_stderr_by_default(capsys):
    g, w = example("mnist_mlp")
    optimize(g, w, 1, print_after=["eliminate_inference_ops"])
    err = capsys.readouterr().err
    assert err.startswith("# IR after eliminate_inference_ops\ngraph mnist_mlp(")


def test_stats_record_what_each_pass_did():
    g, w = example("speech_classifier")
    stats: dict = {}
    optimize(g, w, 2, stats=stats)
    assert list(stats) == [p.__name__ for p in O2]
    assert stats["eliminate_inference_ops"].removed == 1  # the dropout
    assert stats["fold_batchnorm"].fused == 2 and stats["fold_batchnorm"].added == 4
    assert stats["fuse_activation"].fused == 2
    assert stats["eliminate_dead_nodes"].removed == 10  # 2 batchnorms' 4 weights, 2 kernels
    assert stats["fold_pad"].changed_graph == 0 and stats["fold_pad"].runs == 1


def test_every_pass_has_a_name_for_print_after():
    assert set(PASSES) >= {p.__name__ for level in LEVELS.values() for p in level}


# --- the checker -----------------------------------------------------------------------------


def test_verify_names_the_first_pass_that_changes_an_output(monkeypatch):
    g, w = example("mnist_mlp")

    def sabotage(graph, weights):
        """Scales the last kernel: a wrong fold."""
        return graph, {**weights, "dense.kernel": weights["dense.kernel"] * 1.01}

    monkeypatch.setitem(LEVELS, 2, (*O2[:3], sabotage, *O2[3:]))
    with pytest.raises(
        PassError,
        match=r"pass `sabotage` changed output `logits` beyond the "
        r"f32 tolerance",
    ):
        optimize(g, w, 2, verify=True)


def test_verify_catches_a_pass_that_breaks_the_ir(monkeypatch):
    g, w = example("mnist_mlp")

    def reorder(graph, weights):
        return graph.with_nodes(graph.nodes[::-1]), weights

    monkeypatch.setitem(LEVELS, 1, (reorder,))
    with pytest.raises(PassError, match="IR invariant broken after reorder"):
        optimize(g, w, 1, verify=True)


def test_verify_catches_weights_that_no_longer_fit(monkeypatch):
    g, w = example("mnist_mlp")
    monkeypatch.setitem(LEVELS, 1, (lambda graph, weights: (graph, {}),))
    with pytest.raises(PassError, match="has no weight"):
        optimize(g, w, 1, verify=True)


def test_verify_catches_a_pass_that_writes_into_its_weights(monkeypatch):
    g, w = example("mnist_mlp")

    def scribble(graph, weights):
        weights["dense.bias"][0] = 1.0
        return graph, weights

    monkeypatch.setitem(LEVELS, 1, (scribble,))
    before = w["dense.bias"].copy()
    with pytest.raises(ValueError, match="read-only"):
        optimize(g, w, 1, verify=True)
    assert np.array_equal(w["dense.bias"], before)


def test_the_checker_computes_in_float64_on_seeded_inputs():
    g, w = example("lstm_forecaster")
    inputs = random_inputs(g, seed=3)
    assert inputs["history"].dtype == np.float64 and inputs["history"].shape == (2, 3, 8)
    assert np.array_equal(inputs["history"], random_inputs(g, seed=3)["history"])
    assert Checker(g, w).outputs["forecast"].dtype == np.float64


# --- property: random small networks agree at -O0 and -O2 ----------------------------------


DIMS = st.sampled_from([1, 2, 3, 5])


@st.composite
def networks(draw) -> str:
    """A random valid .net model over [N, H, W, C], biased to awkward sizes (H = W = C, 1s,
    odd sizes) and to the patterns the passes rewrite."""
    h = draw(DIMS)
    w = draw(st.one_of(st.just(h), DIMS))
    c = draw(st.one_of(st.just(h), DIMS))
    shape = x_shape = [h, w, c]
    lines: list[str] = []
    cur = "x"

    def emit(expr: str, new_shape: list[int]) -> None:
        nonlocal cur, shape
        cur, shape = f"v{len(lines)}", new_shape
        lines.append(f"    {cur} = {expr}")

    for _ in range(draw(st.integers(1, 6))):
        h, w, c = shape
        kind = draw(
            st.sampled_from(
                [
                    "conv",
                    "depthwise",
                    "transpose",
                    "bn",
                    "act",
                    "scale",
                    "pad_conv",
                    "pad_pool",
                    "transposes",
                    "dropout",
                    "residual",
                    "twice",
                ]
            )
        )
        if kind == "conv":
            k = draw(st.integers(1, 3))
            f = draw(st.sampled_from([1, 2, 3, c]))
            groups = draw(st.sampled_from([g for g in (1, 2, 3) if c % g == 0 and f % g == 0]))
            bias = draw(st.booleans())
            emit(
                f'{cur} |> conv2d({f}, {k}, padding="same", groups={groups}, '
                f"bias={str(bias).lower()})",
                [h, w, f],
            )
        elif kind == "depthwise":
            m = draw(st.sampled_from([1, 2]))
            emit(
                f'{cur} |> depthwise_conv2d(3, padding="same", depth_multiplier={m})', [h, w, c * m]
            )
        elif kind == "transpose":
            f = draw(st.sampled_from([1, 2, 3]))
            emit(f'{cur} |> conv2d_transpose({f}, 2, stride=2, padding="same")', [2 * h, 2 * w, f])
        elif kind == "bn":
            eps = draw(st.sampled_from(["1e-3", "1e-5", "0.5"]))
            emit(f"{cur} |> batchnorm(epsilon={eps})", shape)
        elif kind == "act":
            act = draw(
                st.sampled_from(
                    ["relu", "relu6", "sigmoid", "tanh", "gelu", "silu", "leaky_relu(alpha=0.2)"]
                )
            )
            emit(f"{cur} |> {act}", shape)
        elif kind == "scale":
            emit(f"{cur} * {draw(st.sampled_from(['0.5', '2.0', '-1.0']))} + 0.25", shape)
        elif kind == "pad_conv":
            emit(f"{cur} |> pad(((0, 0), (1, 0), (0, 2), (0, 0))) |> conv2d({c}, 2)", [h, w + 1, c])
        elif kind == "pad_pool":
            emit(
                f"{cur} |> relu |> pad(((0, 0), (1, 1), (1, 1), (0, 0))) |> maxpool(2, stride=1)",
                [h + 1, w + 1, c],
            )
        elif kind == "transposes":
            emit(
                f"{cur} |> transpose((0, 2, 1, 3)) |> relu |> transpose((0, 2, 1, 3)) "
                f"|> transpose((0, 1, 2, 3))",
                shape,
            )
        elif kind == "dropout":
            emit(f"{cur} |> dropout(0.5)", shape)
        elif kind == "residual":
            emit(f'relu({cur} + ({cur} |> conv2d({c}, 3, padding="same")))', shape)
        else:  # the same computation twice, for CSE
            emit(f"tanh({cur}) + tanh({cur})", shape)
    out = ", ".join(str(d) for d in shape)
    if draw(st.booleans()):  # a dense head: flatten, dense, batchnorm, activation
        units = draw(DIMS)
        emit(f"{cur} |> flatten |> dense({units}) |> batchnorm |> gelu", [units])
        out = str(units)
    body = "\n".join(lines)
    return (
        f"model random(x: f32[N, {', '.join(map(str, x_shape))}]) -> (y: f32[N, {out}]) "
        f"{{\n{body}\n    y = {cur}\n}}\n"
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=networks(), seed=st.integers(0, 2**16))
def test_random_networks_compute_the_same_at_o0_and_o2(text, seed):
    graph = netc.compile_text(textwrap.dedent(text), path="random.net").graph
    weights = randomized_weights(graph, seed)
    g2, w2 = optimize(graph, weights, 2, verify=True, seed=seed)
    checker = Checker(graph, weights, seed)
    checker.check("-O2 as a whole", graph, g2, w2)
    assert eliminate_dead_nodes(g2, w2)[0] is g2
