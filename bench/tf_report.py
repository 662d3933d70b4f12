"""The TensorFlow benchmark report (not a test): for ResNet-50, MobileNetV2 and the Transformer
encoder at batch 1 and 8, netc's SavedModel (`-t tf`, with and without `--xla`) and netc's
`-t keras --inference` model against the same network hand-written in Keras (keras.applications
where it exists) holding the same weights, each called as its users call it.

    python bench/tf_report.py -o docs/benchmarks.md        # every workload; rewrites its section
    python bench/tf_report.py --workload resnet50 --json r.json   # one workload, in this process
    python bench/tf_report.py --results run.json -o docs/benchmarks.md   # keep the measurements
    python bench/tf_report.py --render run.json -o docs/benchmarks.md    # the report again
    python bench/tf_report.py --onednn -o docs/benchmarks.md   # oneDNN kernels, own section

Without --workload the driver runs each workload in its own Python process (so that one
network's caches, threads and XLA compilations never slow another's) and collects their JSON.
Within a workload every contender runs in the same process, interleaved run by run
(`netc.runtime.bench.side_by_side`). Before any timing, every contender's output is compared
with the float64 numpy reference at the "model" scope of `netc.runtime.tolerance`: a fast wrong
answer stops the report. Ratios are speeds against the hand-written Keras model under
`tf.function` (its time / the contender's): above 1, netc is faster.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dispatch, load_sentence, machine_info, run_workloads, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
WORKLOADS = ("resnet50", "mobilenet_v2", "transformer_classifier")
BATCHES = (1, 8)
BASELINE = "keras: tf.function"
# the contenders, in the order they run in each round and appear in the table
CONTENDERS = (
    "netc tf: signature",
    "netc tf: serving",
    "netc tf --xla: signature",
    "netc keras --inference: model(x)",
    "netc keras --inference: predict",
    "keras: predict",
    "keras: model(x)",
    "keras: tf.function",
    "keras: tf.function(jit_compile)",
)
# the ratio columns: against the baseline, and like for like (netc's, the hand-written model's)
AGAINST_BASELINE = (
    "netc tf: signature",
    "netc tf: serving",
    "netc tf --xla: signature",
    "netc keras --inference: model(x)",
    "keras: tf.function(jit_compile)",
)
LIKE_FOR_LIKE = (
    ("netc tf --xla: signature", "keras: tf.function(jit_compile)"),
    ("netc keras --inference: model(x)", "keras: model(x)"),
    ("netc keras --inference: predict", "keras: predict"),
)
BEGIN = "<!-- bench/tf_report.py: begin -->"
END = "<!-- bench/tf_report.py: end -->"
ONEDNN = "TF_ENABLE_ONEDNN_OPTS"  # TensorFlow reads it when it loads: 1 for oneDNN's kernels


def markers(info: Mapping[str, Any]) -> tuple[str, str]:
    """The section's (begin, end) markers: a run with --onednn has a section of its own."""
    if info.get("onednn") == "1":
        return BEGIN.replace(":", " --onednn:", 1), END.replace(":", " --onednn:", 1)
    return BEGIN, END


# --- the same networks, hand-written in Keras ---------------------------------------------------


def _keras_transformer(keras: Any) -> Any:
    """examples/transformer_classifier.net as a Keras user writes it (the keras.io example
    "Text classification with Transformer", post-norm): Keras' own layers, except the learned
    position table, which keras.layers lacks (keras_hub's PositionEmbedding, written here)."""
    from netc import keras_weights

    L, ops = keras.layers, keras.ops
    vocab, steps, width, heads = 20000, 128, 128, 4

    class PositionEmbedding(L.Layer):
        def build(self, shape: Any) -> None:
            self.embeddings = self.add_weight(
                shape=(steps, width), initializer="glorot_uniform", name="embeddings"
            )

        def call(self, x: Any) -> Any:
            return x + self.embeddings[: ops.shape(x)[1]]

    # the weight pairing knows Keras' classes by name; this one holds positional_embedding's
    keras_weights.KERAS_OPS.setdefault("PositionEmbedding", "positional_embedding")
    tokens = keras.Input((steps,), dtype="int32", name="tokens")
    x = PositionEmbedding()(L.Embedding(vocab, width)(tokens))
    for _ in range(2):
        attended = L.MultiHeadAttention(heads, width // heads)(x, x)
        x = L.LayerNormalization(epsilon=1e-6)(x + L.Dropout(0.1)(attended))
        fed = L.Dense(width)(L.Dense(4 * width, activation="gelu")(x))
        x = L.LayerNormalization(epsilon=1e-6)(x + L.Dropout(0.1)(fed))
    x = L.GlobalAveragePooling1D()(x)
    return keras.Model(tokens, L.Dense(2)(L.Dropout(0.1)(x)))


KERAS: dict[str, Callable[[Any], Any]] = {
    "resnet50": lambda keras: keras.applications.ResNet50(weights=None),
    "mobilenet_v2": lambda keras: keras.applications.MobileNetV2(weights=None),
    "transformer_classifier": _keras_transformer,
}


def keras_network(workload: str, model: Any, weights: Mapping[str, np.ndarray]) -> Any:
    """The hand-written Keras network holding netc's `weights`, each assigned to the Keras
    variable `keras_weights` pairs it with by the two graphs' structure (the direction netc ->
    Keras of `netc weights --from-keras`)."""
    import keras

    from netc import keras_weights

    network = KERAS[workload](keras)
    if network.count_params() != model.total_params:
        raise SystemExit(
            f"{workload}: the Keras network has {network.count_params():,} params, netc's "
            f"{model.total_params:,}: they are not the same network"
        )
    assigned = set()
    for mine, theirs in keras_weights._pairing(model, network, None).pairs():
        for name, param in mine.weights.items():
            theirs.weights[name].assign(weights[param.name])
            assigned.add(param.name)
    missing = {p.name for p in model.graph.params} - assigned
    if missing:
        raise SystemExit(f"{workload}: no Keras variable for {sorted(missing)}")
    return network


# --- the contenders -----------------------------------------------------------------------------


class Call:
    """One way of running a model, behind the `run(feed)` that `side_by_side` times: numpy in
    (converted as the caller would), numpy out (so that every contender waits for its result).
    `cpu` collects the process's CPU time of each call (every thread's: TensorFlow's pools),
    which other jobs on a shared machine disturb much less than the wall clock."""

    def __init__(self, fn: Callable[[Mapping[str, np.ndarray]], Any]):
        self.fn = fn
        self.cpu: list[float] = []

    def run(self, feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        start = time.process_time()
        out = self.fn(feed)
        if isinstance(out, Mapping):
            out = list(out.values())
        elif not isinstance(out, (list, tuple)):
            out = [out]
        result = [np.asarray(o) for o in out]
        self.cpu.append(time.process_time() - start)
        return result


def contenders(
    workload: str, model: Any, weights: Mapping[str, np.ndarray], folder: Path
) -> dict[str, Call]:
    """Every contender of a workload, built from files written as a user writes them."""
    from netc import driver
    from netc.backends import keras_layers, tensorflow, to_keras, to_tf  # noqa: F401

    tf = tensorflow("tf")
    import keras

    names = list(model.graph.inputs)

    def tensors(feed: Mapping[str, np.ndarray]) -> list[Any]:
        return [tf.constant(feed[n]) for n in names]

    def keras_x(feed: Mapping[str, np.ndarray]) -> Any:
        return feed[names[0]] if len(names) == 1 else [feed[n] for n in names]

    calls: dict[str, Call] = {}
    for xla in (False, True):
        path = folder / f"{workload}{'_xla' if xla else ''}.savedmodel"
        to_tf.save(driver.emit(model, "tf", weights=weights, xla=xla), path)
        loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures[to_tf.SIGNATURE_KEY]
        flag = " --xla" if xla else ""
        calls[f"netc tf{flag}: signature"] = Call(
            lambda f, s=signature: s(**dict(zip(names, tensors(f), strict=True)))
        )
        if not xla:
            calls["netc tf: serving"] = Call(lambda f, m=loaded: m.serving(*tensors(f)))
    path = folder / f"{workload}.keras"
    to_keras.save(driver.emit(model, "keras", weights=weights, inference=True), path)
    inference = keras.models.load_model(path)
    calls["netc keras --inference: model(x)"] = Call(lambda f: inference(keras_x(f)))
    calls["netc keras --inference: predict"] = Call(
        lambda f: inference.predict(keras_x(f), verbose=0)
    )
    network = keras_network(workload, model, weights)
    graph_fn = tf.function(network)
    xla_fn = tf.function(network, jit_compile=True)
    calls["keras: predict"] = Call(lambda f: network.predict(keras_x(f), verbose=0))
    calls["keras: model(x)"] = Call(lambda f: network(keras_x(f)))
    calls["keras: tf.function"] = Call(lambda f: graph_fn(*tensors(f)))
    calls["keras: tf.function(jit_compile)"] = Call(lambda f: xla_fn(*tensors(f)))
    return {name: calls[name] for name in CONTENDERS}


def check(
    calls: Mapping[str, Call], model: Any, weights: Mapping[str, np.ndarray], feed: Any
) -> dict[str, float]:
    """Every contender's outputs against the float64 reference at the "model" tolerance; the
    largest error relative to that tolerance (<= 1 passes), or SystemExit naming the one that
    differs."""
    from netc.runtime import reference
    from netc.runtime.tolerance import elementwise, mismatch, tolerance

    want = reference.run(model.graph, feed, weights, wide=True)
    wants = [np.asarray(want[out]) for out, _ in model.graph.outputs]
    worst = {}
    for name, call in calls.items():
        got = call.run(feed)
        worst[name] = 0.0
        for g, w, (out, _) in zip(got, wants, model.graph.outputs, strict=True):
            g = g.reshape(w.shape)
            found = mismatch(g, w, scope="model")
            if found is not None:
                raise SystemExit(f"{model.graph.name}: `{name}` computes another `{out}`: {found}")
            rtol, atol = tolerance("f32", "model")
            err, bound, _ = elementwise(g, w, rtol, atol)
            worst[name] = max(worst[name], float((err / np.maximum(bound, 1e-300)).max()))
    return worst


# --- where the time goes -----------------------------------------------------------------------

# TF's convolution and matrix-product kernels, by name (Conv2D, _FusedConv2D,
# DepthwiseConv2dNative, MatMul, _FusedMatMul, BatchMatMulV2/V3, Einsum, and oneDNN's
# _MklNative... forms of them): both sides call the same ones
KERNEL_NAMES = ("Conv2D", "Conv2d", "MatMul", "Einsum")


def is_kernel(op: str) -> bool:
    """Whether TF op type `op` is a convolution or matrix-product kernel."""
    return any(name in op for name in KERNEL_NAMES)


PROFILED = ("netc tf: serving", "keras: tf.function")


def op_times(
    calls: Mapping[str, Call], feed: Mapping[str, np.ndarray], rounds: int, per_round: int = 2
) -> dict[str, dict[str, float]] | None:
    """ms per call spent in each TF op type by each of `calls`, from TensorFlow's profiler:
    `rounds` rounds, each tracing `per_round` calls of one contender, then of the next (so
    that the machine's drift reaches all alike); None where this TensorFlow writes no trace
    that can be read here. Ops that run in parallel are all counted."""
    from netc.backends import tensorflow

    tf = tensorflow("tf")
    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError:
        return None
    totals: dict[str, dict[str, float]] = {name: {} for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            with tempfile.TemporaryDirectory() as logdir:
                tf.profiler.experimental.start(logdir)
                try:
                    for _ in range(per_round):
                        call.run(feed)
                finally:
                    tf.profiler.experimental.stop()
                traces = list(Path(logdir).rglob("*.xplane.pb"))
                if not traces:
                    return None
                space = xplane_pb2.XSpace()
                space.ParseFromString(traces[0].read_bytes())
            mine = totals[name]
            for plane in space.planes:
                names = {k: v.name for k, v in plane.event_metadata.items()}
                for line in plane.lines:
                    for event in line.events:
                        label = names.get(event.metadata_id, "")
                        # an op's event is "node name:OpType"; the runtime's "Class::Method"
                        if ":" not in label or "::" in label or " " in label:
                            continue
                        op = label.rsplit(":", 1)[1]
                        ms = event.duration_ps / 1e9 / (rounds * per_round)
                        mine[op] = mine.get(op, 0.0) + ms
    return totals


# --- one workload -------------------------------------------------------------------------------


def measure(
    workload: str, batches: tuple[int, ...], repeat: int, budget_s: float, profile_rounds: int = 5
) -> dict:
    """Time every contender of `workload` at each batch size, interleaved, then profile netc's
    serving function and Keras' tf.function (`profile_rounds` rounds of 2 calls each, in
    turn); JSON-able."""
    import netc
    from netc.runtime.api import Signature
    from netc.runtime.bench import random_inputs, side_by_side
    from netc.weights import randomized_weights

    model = netc.compile(EXAMPLES / f"{workload}.net")
    # every bias, mean and variance drawn: with the initial weights (zero biases, unit
    # variances) grappler drops the additions of zeros, which a trained network never has
    weights = randomized_weights(model.graph, seed=0)
    graph = model.graph
    signature = [
        Signature(n, graph[n].tensor_type.dtype, graph[n].tensor_type.shape) for n in graph.inputs
    ]
    result: dict[str, Any] = {"workload": workload, "params": model.total_params, "batches": {}}
    with tempfile.TemporaryDirectory() as tmp:
        calls = contenders(workload, model, weights, Path(tmp))
        for batch in batches:
            feed = random_inputs(signature, batch)
            start = time.perf_counter()
            loads = [os.getloadavg()[0]]
            errors = check(calls, model, weights, feed)
            for call in calls.values():  # warm-up, then only the timed calls' CPU times
                for _ in range(3):
                    call.run(feed)
                call.cpu.clear()
            timings = side_by_side(
                calls,  # type: ignore[arg-type]
                {name: feed for name in calls},
                warmup=0,
                repeat=repeat,
                budget_s=budget_s,
            )
            cpu = {name: list(call.cpu) for name, call in calls.items()}
            loads.append(os.getloadavg()[0])
            profiles = op_times({name: calls[name] for name in PROFILED}, feed, profile_rounds)
            result["batches"][str(batch)] = {
                "errors": errors,
                "times": {name: list(t.times) for name, t in timings.items()},
                "cpu": cpu,
                "loads": loads,
                "ops": profiles,
                "seconds": time.perf_counter() - start,
            }
            line = "; ".join(f"{k} {t.median * 1e3:.2f} ms" for k, t in timings.items())
            print(f"{workload} batch {batch}: {line}", file=sys.stderr, flush=True)
    return result


# --- the report ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the numbers ran on."""
    import keras

    from netc.backends import tensorflow

    tf = tensorflow("tf")
    return machine_info(
        tensorflow=tf.__version__,
        keras=keras.__version__,
        onednn=os.environ.get("TF_ENABLE_ONEDNN_OPTS", "TensorFlow's default"),
    )


def _speeds(times: Mapping[str, list[float]], contender: str, base: str) -> tuple[float, float]:
    """`base`'s time / `contender`'s: the ratio of the medians, the median per-round ratio."""
    mine, theirs = np.asarray(times[contender]), np.asarray(times[base])
    return float(np.median(theirs) / np.median(mine)), float(np.median(theirs / mine))


def _ratio(times: Mapping[str, list[float]], contender: str, base: str) -> str:
    """`base`'s time / `contender`'s: of the medians, then the per-round ratios' median and
    (p10 .. p90)."""
    mine, theirs = np.asarray(times[contender]), np.asarray(times[base])
    p10, median, p90 = np.percentile(theirs / mine, [10, 50, 90])
    overall = np.median(theirs) / np.median(mine)
    return f"**{overall:.2f}x**; {median:.2f}x ({p10:.2f} .. {p90:.2f})"


def _stats(times: list[float]) -> tuple[float, float, float]:
    p10, median, p90 = np.percentile(np.asarray(times) * 1e3, [10, 50, 90])
    return float(median), float(p10), float(p90)


def markdown(results: list[dict], info: Mapping[str, Any], load: str) -> str:
    """The report's section of docs/benchmarks.md."""
    begin, end = markers(info)
    flag = " --onednn" if info.get("onednn") == "1" else ""
    title = " (oneDNN's kernels)" if flag else ""
    lines = [
        begin,
        "",
        f"# Benchmark: netc's TensorFlow and Keras output against hand-written Keras{title}",
        "",
        f"Generated by `python bench/tf_report.py{flag} -o docs/benchmarks.md` on {info['date']}: "
        f"{info['cpu']}, {info['cores']} CPU cores ({info['machine']}), Python "
        f"{info['python']}, netc {info['netc']}, TensorFlow {info['tensorflow']}, Keras "
        f"{info['keras']} (CPU; oneDNN: {info['onednn']}). {load}",
        "",
        f"Regenerate with `python bench/tf_report.py{flag} -o docs/benchmarks.md` (about half "
        "an hour on 2 cores; it replaces only this section, between its markers; `--onednn` "
        f"runs TensorFlow with {ONEDNN}=1 into a section of its own). `python "
        "bench/onnx_report.py -o docs/benchmarks.md` rewrites the whole file: run it first.",
        "",
        "Each workload ran in its own process; there, every contender ran interleaved with the "
        "others, run by run, on the same input (random, as `netc bench` draws it), converted "
        "from numpy and its output fetched back to numpy as a user's call does. netc's models "
        "hold `netc.weights.randomized_weights` (Keras' initial kernels, every bias, mean and "
        "variance drawn), and the hand-written Keras network (keras.applications.ResNet50 and "
        "MobileNetV2 with `weights=None`; the Transformer written with Keras' layers) holds "
        "the same values, copied by `netc.keras_weights`' structural pairing. Before timing, "
        "every contender's output matched the float64 reference at the model tolerance. "
        "Contenders:",
        "",
        "- `netc tf`: the SavedModel of `netc MODEL.net -t tf` loaded with "
        "`tf.saved_model.load`, called through its `serving_default` signature (keyword "
        "tensors, a dict back) or as the `serving` tf.function (positional tensors); `--xla`: "
        "the SavedModel of `-t tf --xla`;",
        "- `netc keras --inference`: the `.keras` file of `-t keras --inference` loaded with "
        "`keras.models.load_model`, called as `model(x)` and `model.predict(x)`;",
        "- `keras`: the hand-written network, called as `model.predict(x)`, `model(x)`, "
        "`tf.function(model)(x)` and `tf.function(model, jit_compile=True)(x)`.",
        "",
        "Times per batch in ms: median (p10 .. p90), n runs per contender.",
        "",
    ]
    for row in results:
        lines += [
            f"## {row['workload']} ({row['params']:,} params)",
            "",
            "| contender | " + " | ".join(f"batch {b}" for b in row["batches"]) + " |",
            "|---|" + "---:|" * len(row["batches"]),
        ]
        for name in CONTENDERS:
            cells = []
            for data in row["batches"].values():
                median, p10, p90 = _stats(data["times"][name])
                n = len(data["times"][name])
                cells.append(f"{median:.2f} ({p10:.2f} .. {p90:.2f}) n={n}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        loads = [
            f"batch {b}: {d['loads'][0]:.1f} .. {d['loads'][1]:.1f}"
            for b, d in row["batches"].items()
            if "loads" in d
        ]
        if loads:
            lines += ["", "Load average (1 min) before and after the timing: " + "; ".join(loads)]
        lines.append("")
    lines += [
        "## Ratios",
        "",
        "Speed against the hand-written Keras model under `tf.function` (its time / the "
        "contender's; above 1: faster than Keras). Goal: netc's TF output >= 1.15x. Each cell: "
        "the ratio of the medians, then the median and (p10 .. p90) of the per-round ratios "
        "(both contenders ran back to back in every round, so a round's ratio cancels most of "
        "the machine's drift).",
        "",
        "| workload | batch | " + " | ".join(f"{name}" for name in AGAINST_BASELINE) + " |",
        "|---|---:|" + "---:|" * len(AGAINST_BASELINE),
    ]
    for row in results:
        for batch, data in row["batches"].items():
            cells = [_ratio(data["times"], name, BASELINE) for name in AGAINST_BASELINE]
            lines.append(f"| {row['workload']} | {batch} | " + " | ".join(cells) + " |")
    if all("cpu" in d for row in results for d in row["batches"].values()):
        lines += [
            "",
            "The same ratios by CPU time: the process's CPU time of each call (every thread's), "
            "which other jobs on a shared machine disturb far less than the wall clock (a call "
            "that waits for a core costs wall time, not CPU time); what each graph asks of the "
            "machine.",
            "",
            "| workload | batch | " + " | ".join(AGAINST_BASELINE) + " |",
            "|---|---:|" + "---:|" * len(AGAINST_BASELINE),
        ]
        for row in results:
            for batch, data in row["batches"].items():
                cells = [_ratio(data["cpu"], name, BASELINE) for name in AGAINST_BASELINE]
                lines.append(f"| {row['workload']} | {batch} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Like for like: netc's contender against the hand-written Keras model called the same "
        "way (above 1: netc is faster).",
        "",
        "| workload | batch | " + " | ".join(f"{a} vs {b}" for a, b in LIKE_FOR_LIKE) + " |",
        "|---|---:|" + "---:|" * len(LIKE_FOR_LIKE),
    ]
    for row in results:
        for batch, data in row["batches"].items():
            cells = [_ratio(data["times"], a, b) for a, b in LIKE_FOR_LIKE]
            lines.append(f"| {row['workload']} | {batch} | " + " | ".join(cells) + " |")
    lines += _op_table(results)
    lines += _findings(results)
    lines += ["", end]
    return "\n".join(lines) + "\n"


GOAL = 1.15  # netc's TF output against the hand-written Keras model under tf.function
# What differs between the two graphs, per workload (it changes with the code, not the run)
WHY = {
    "resnet50": "netc's graph folds the 53 batchnorms into the convolutions' kernels and "
    "biases (Keras computes each from its variables, then a Mul and an Add over the whole "
    "tensor), takes the max pool's padding inside MaxPool (Keras runs 2 Pad ops) and otherwise "
    "runs what Keras runs: 53 Conv2D + BiasAdd (+ Relu) fused by grappler, and 16 residual "
    "AddV2 + Relu. With TensorFlow's Eigen kernels (its default on a CPU without AVX-512 VNNI, "
    "BF16 or AMX) the convolutions are the same kernels on both sides and take over 90 % of "
    "the op time; what the graph removes (the Mul, AddV2, AddN and Pad ops, some 15 % of "
    "Keras' op time) is the most it can gain, and Eigen's fused Conv2D takes no residual Add "
    "(it takes BiasAdd or FusedBatchNorm, then Relu, Relu6, Elu or LeakyRelu). Rewrites "
    "measured and dropped: a stride-2 1x1 convolution as a strided slice then a stride-1 one "
    "(0.26-0.82x: StridedSlice copies slowly), 1x1 convolutions as MatMul + BiasAdd "
    "(0.96-1.00x: the same Eigen contraction). XLA does not help on CPU: it calls the same "
    "convolution and adds a pass for the bias. With oneDNN's kernels (the --onednn section), "
    "netc's forms are the ones oneDNN fuses, the residual Add and Relu into the convolution "
    "included, while Keras' batchnorm ops sit between its convolutions and their "
    "activations.",
    "mobilenet_v2": "netc's graph folds the 52 batchnorms into the convolutions (Keras: a Mul "
    "and an Add after each), runs the stride-2 depthwise convolutions with SAME padding where "
    "Keras pads explicitly (4 Pad ops), and fuses Conv2D + BiasAdd + Relu6; the depthwise "
    "convolutions' BiasAdd and Relu6 stay separate ops on both sides (TensorFlow has no fused "
    "depthwise kernel on CPU). Under XLA, netc computes a depthwise convolution as a sum over "
    "its taps, which XLA fuses with the bias and relu6 into one pass; XLA's own depthwise "
    "convolution, which Keras' jit_compile runs, is 10-40x slower than TensorFlow's kernel on "
    "CPU.",
    "transformer_classifier": "netc's attention projects q, k and v with one MatMul + BiasAdd "
    "(the query's 1/sqrt(key_dim) folded into its kernel), moves the heads to the batch axes "
    "with one transpose and computes scores and context as batched matmuls; Keras' "
    "MultiHeadAttention runs 4 EinsumDense einsums (TensorFlow's CPU Einsum transposes its "
    "operands on every call) and scales the query with its own Mul. The feed-forward MatMuls, "
    "the softmax and the exact gelu's Erfc are the same ops on both sides; at batch 1 they "
    "take most of the time.",
}


def _findings(results: list[dict]) -> list[str]:
    """The goal, workload by workload: met or not, and what differs between the graphs."""
    lines = ["", "## Findings", ""]
    for row in results:
        verdicts = []
        for batch, data in row["batches"].items():
            graph, xla = (
                _speeds(data["times"], name, BASELINE)
                for name in ("netc tf: signature", "netc tf --xla: signature")
            )
            met = "met" if min(graph) >= GOAL else "not met"
            cpu = (
                f", {_speeds(data['cpu'], 'netc tf: signature', BASELINE)[1]:.2f}x by CPU time"
                if "cpu" in data
                else ""
            )
            verdicts.append(
                f"batch {batch}: netc's SavedModel {graph[0]:.2f}x ({graph[1]:.2f}x per round"
                f"{cpu}; goal {GOAL}x {met}), with --xla {xla[0]:.2f}x ({xla[1]:.2f}x)"
            )
        lines += [f"- **{row['workload']}**: " + "; ".join(verdicts) + ". " + WHY[row["workload"]]]
    return lines


def _op_table(results: list[dict]) -> list[str]:
    """Where the time goes: op time in TF's convolution and matmul kernels, and in the rest."""
    rows = []
    for row in results:
        for batch, data in row["batches"].items():
            ops = data.get("ops")
            if not ops:
                continue
            (n_k, n_o), (k_k, k_o) = (
                (
                    sum(t for op, t in ops[name].items() if is_kernel(op)),
                    sum(t for op, t in ops[name].items() if not is_kernel(op)),
                )
                for name in PROFILED
            )
            bound = f"{(k_k + k_o) / n_k:.2f}x" if n_k else "-"
            rows.append(
                f"| {row['workload']} | {batch} | {n_k:.1f} | {n_o:.1f} | {k_k:.1f} | {k_o:.1f} | "
                f"{bound} |"
            )
    if not rows:
        return []
    return [
        "",
        "## Where the time goes",
        "",
        "Op time per call from TensorFlow's profiler (after the timing: 5 rounds of 2 traced "
        "calls of each contender in turn; ops that ran in parallel all count, so a row's sum "
        "may exceed the wall time): in the convolution and matrix-product kernels (Conv2D, "
        "DepthwiseConv2dNative, MatMul, batched MatMul, Einsum, their fused and oneDNN forms), "
        "which "
        "both sides call from the same TensorFlow, and in every other op. The last column is "
        "the most netc's graph could gain over Keras without faster kernels: Keras' whole op "
        "time over netc's kernel time alone.",
        "",
        "| workload | batch | netc tf: kernels ms | netc tf: other ops ms | keras: kernels ms | "
        "keras: other ops ms | bound: keras total / netc kernels |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]


def drive(args: argparse.Namespace) -> None:
    """Each workload in its own process, then the report (and, with --results, everything it
    was made from, for --render)."""
    if args.onednn:  # the workloads' processes inherit it; machine() reports it
        os.environ[ONEDNN] = "1"
    write(run_workloads(__file__, args, machine), args.output)


def write(run: Mapping[str, Any], output: str | None) -> None:
    """The report of a run (drive's record of it) into `output`'s section, or to stdout."""
    section = markdown(run["results"], run["machine"], load_sentence(run))
    if output:
        write_section(output, section, *markers(run["machine"]))
    else:
        print(section)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("-o", "--output", help="replace the report's section of this Markdown file")
    ap.add_argument("--workload", choices=WORKLOADS, help="run this workload in this process")
    ap.add_argument("--json", help="with --workload: write its timings here")
    ap.add_argument("--workloads", nargs="*", default=list(WORKLOADS), choices=WORKLOADS)
    ap.add_argument("--batches", nargs="*", type=int, default=list(BATCHES))
    ap.add_argument("--repeat", type=int, default=40, help="rounds per batch size at most")
    ap.add_argument("--budget", type=float, default=240.0, help="seconds per batch size")
    ap.add_argument("--note", help="a sentence about the machine's load for the report")
    ap.add_argument("--results", help="also write the run's measurements here (JSON)")
    ap.add_argument("--render", help="write the report of a --results file; run nothing")
    ap.add_argument(
        "--onednn",
        action="store_true",
        help=f"run TensorFlow with its oneDNN kernels ({ONEDNN}=1), in a section of its own",
    )
    args = ap.parse_args()
    dispatch(
        args,
        write,
        drive,
        lambda: measure(args.workload, tuple(args.batches), args.repeat, args.budget),
    )


if __name__ == "__main__":
    main()
