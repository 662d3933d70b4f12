"""The optimizer's benchmark report (not a test): for each workload, in one process and side by
side, netc's ONNX at -O0 and -O2 under ONNX Runtime's optimizer levels, and the same network
built in Keras and exported with tf2onnx. Writes a Markdown report with the machine it ran on.

    python bench/onnx_report.py -o docs/benchmarks.md    # its section; needs tensorflow, tf2onnx

Ratios are speeds (time of the reference / time of the contender): above 1 is faster.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import tf2onnx_proto  # noqa: E402

BEGIN = "<!-- bench/onnx_report.py: begin -->"  # its section of docs/benchmarks.md
END = "<!-- bench/onnx_report.py: end -->"

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WORKLOADS = ("mnist_mlp", "lenet", "resnet50", "mobilenet_v2", "transformer_classifier")
# contender name -> (netc opt level or "keras", ONNX Runtime optimizer level)
CONTENDERS = {
    "netc -O0, ort disable": (0, "disable"),
    "netc -O0, ort basic": (0, "basic"),
    "netc -O0, ort all": (0, "all"),
    "netc -O2, ort disable": (2, "disable"),
    "netc -O2, ort basic": (2, "basic"),
    "netc -O2, ort all": (2, "all"),
    "keras+tf2onnx, ort all": ("keras", "all"),
}


# --- the same networks in Keras -------------------------------------------------------------


def _keras_mnist_mlp(keras: Any) -> Any:
    x = inp = keras.Input((28, 28), name="image")
    x = keras.layers.Flatten()(x)
    for units in (512, 512):
        x = keras.layers.Dropout(0.2)(keras.layers.Dense(units, activation="relu")(x))
    return keras.Model(inp, keras.layers.Dense(10)(x))


def _keras_lenet(keras: Any) -> Any:
    L = keras.layers
    x = inp = keras.Input((28, 28, 1), name="image")
    x = L.AveragePooling2D(2)(L.Conv2D(6, 5, padding="same", activation="relu")(x))
    x = L.AveragePooling2D(2)(L.Conv2D(16, 5, activation="relu")(x))
    x = L.Flatten()(x)
    for units in (120, 84):
        x = L.Dense(units, activation="relu")(x)
    return keras.Model(inp, L.Dense(10)(x))


def _keras_transformer(keras: Any) -> Any:
    L, ops = keras.layers, keras.ops
    vocab, steps, width, heads = 20000, 128, 128, 4

    class AddPositions(L.Layer):
        def build(self, shape: Any) -> None:
            self.table = self.add_weight(shape=(steps, width), initializer="glorot_uniform")

        def call(self, x: Any) -> Any:
            return x + self.table[: ops.shape(x)[1]]

    def gelu(x: Any) -> Any:  # Keras' exact gelu, written with erf: tf2onnx cannot lower erfc
        return 0.5 * x * (1.0 + ops.erf(x * 0.7071067811865476))

    tokens = keras.Input((steps,), dtype="int32", name="tokens")
    x = AddPositions()(L.Embedding(vocab, width)(tokens))
    for _ in range(2):
        attended = L.MultiHeadAttention(heads, width // heads)(x, x)
        x = L.LayerNormalization(epsilon=1e-6)(x + L.Dropout(0.1)(attended))
        fed = L.Dense(width)(L.Dense(4 * width, activation=gelu)(x))
        x = L.LayerNormalization(epsilon=1e-6)(x + L.Dropout(0.1)(fed))
    x = L.GlobalAveragePooling1D()(x)
    return keras.Model(tokens, L.Dense(2)(L.Dropout(0.1)(x)))


KERAS: dict[str, Callable[[Any], Any]] = {
    "mnist_mlp": _keras_mnist_mlp,
    "lenet": _keras_lenet,
    "resnet50": lambda keras: keras.applications.ResNet50(weights=None),
    "mobilenet_v2": lambda keras: keras.applications.MobileNetV2(weights=None),
    "transformer_classifier": _keras_transformer,
}


def keras_onnx(workload: str, netc_params: int) -> Any:
    """The Keras network exported by tf2onnx (opset 17); its parameter count must equal
    netc's, so that both sides run the same network."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    model = KERAS[workload](keras)
    if model.count_params() != netc_params:
        raise SystemExit(
            f"{workload}: the Keras network has {model.count_params():,} params, "
            f"netc's {netc_params:,}: they are not the same network"
        )
    return tf2onnx_proto(model)


def ort_optimized_ops(proto: Any) -> Counter:
    """The op histogram of a model after ONNX Runtime's ENABLE_ALL optimizer (CPU)."""
    import tempfile

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
        graph = onnx.load(options.optimized_model_filepath).graph
    return Counter(f"{n.domain}:{n.op_type}" if n.domain else n.op_type for n in graph.node)


# --- the report -------------------------------------------------------------------------------


def run(workloads: tuple[str, ...], batch: int, repeat: int, budget_s: float) -> list[dict]:
    import netc
    from netc import driver
    from netc.runtime import load
    from netc.runtime.bench import random_inputs, side_by_side

    rows = []
    for workload in workloads:
        model = netc.compile(EXAMPLES / f"{workload}.net")
        keras_proto = keras_onnx(workload, model.total_params)
        sessions = {}
        for name, (level, ort_level) in CONTENDERS.items():
            source = keras_proto if level == "keras" else model
            sessions[name] = load(
                source,
                level=level if level != "keras" else 2,
                graph_optimization=ort_level,
                device="cpu",
            )
        base = random_inputs(sessions["netc -O0, ort all"].inputs, batch)
        feeds = {}
        for name, s in sessions.items():  # the same arrays, under each model's input names
            feeds[name] = {sig.name: value for sig, value in zip(s.inputs, base.values())}
        timings = side_by_side(sessions, feeds, repeat=repeat, budget_s=budget_s)
        graphs = {
            "netc -O2": ort_optimized_ops(driver.emit(model, level=2)),
            "keras+tf2onnx": ort_optimized_ops(keras_proto),
        }
        rows.append(
            {
                "workload": workload,
                "params": model.total_params,
                "timings": timings,
                "graphs": graphs,
            }
        )
        print(
            f"{workload}: " + "; ".join(f"{k} {t.median * 1e3:.2f} ms" for k, t in timings.items()),
            file=sys.stderr,
        )
    return rows


def markdown(rows: list[dict], batch: int) -> str:
    import onnxruntime

    import netc

    def ratio(row: dict, a: str, b: str) -> str:
        return f"{row['timings'][b].median / row['timings'][a].median:.2f}x"

    lines = [
        BEGIN,
        "",
        "# Benchmark: netc's optimizer against ONNX Runtime's and against Keras + tf2onnx",
        "",
        f"Generated by `python bench/onnx_report.py` on {date.today().isoformat()}: "
        f"{platform.machine()}, {os.cpu_count()} CPU cores ({platform.processor() or 'cpu'}), "
        f"Python {platform.python_version()}, netc {netc.__version__}, ONNX Runtime "
        f"{onnxruntime.__version__} (CPU provider), batch {batch}. Every contender of a "
        "workload ran in the same process, interleaved run by run. Times are per batch: "
        "median (min .. max) in ms.",
        "",
        "| workload | params | " + " | ".join(CONTENDERS) + " |",
        "|---|---:|" + "---:|" * len(CONTENDERS),
    ]
    for row in rows:
        cells = [
            f"{t.median * 1e3:.2f} ({t.min * 1e3:.2f} .. {t.max * 1e3:.2f})"
            for t in row["timings"].values()
        ]
        lines.append(f"| {row['workload']} | {row['params']:,} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Ratios of medians (above 1: the first contender is faster). On a small shared "
        "machine the medians of one graph move by a few percent from run to run: read ratios "
        "within 0.97 .. 1.03 as ties, and the op table below for what each side runs.",
        "",
        "| workload | netc -O2 / -O0, ort disable | netc -O2 / -O0, ort all | "
        "netc -O2 + ort disable / netc -O0 + ort basic (goal >= 0.95) | "
        "netc -O2 + ort all / keras+tf2onnx + ort all (goal >= 1.0) |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['workload']} | {ratio(row, 'netc -O2, ort disable', 'netc -O0, ort disable')}"
            f" | {ratio(row, 'netc -O2, ort all', 'netc -O0, ort all')}"
            f" | {ratio(row, 'netc -O2, ort disable', 'netc -O0, ort basic')}"
            f" | {ratio(row, 'netc -O2, ort all', 'keras+tf2onnx, ort all')} |"
        )
    lines += [
        "",
        "What ONNX Runtime runs after its ENABLE_ALL optimizer (nodes, and whether both graphs "
        "have the same op histogram):",
        "",
        "| workload | netc -O2 | keras+tf2onnx | same ops | ops that differ |",
        "|---|---:|---:|---|---|",
    ]
    for row in rows:
        a, b = row["graphs"]["netc -O2"], row["graphs"]["keras+tf2onnx"]
        diff = (
            ", ".join(
                f"{op} {a[op]} vs {b[op]}" for op in sorted(set(a) | set(b)) if a[op] != b[op]
            )
            or "none"
        )
        lines.append(
            f"| {row['workload']} | {sum(a.values())} | {sum(b.values())} | "
            f"{'yes' if a == b else 'no'} | {diff} |"
        )
    return "\n".join([*lines, "", END]) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("-o", "--output", help="write the Markdown report here (default: stdout)")
    ap.add_argument("--workloads", nargs="*", default=list(WORKLOADS), choices=WORKLOADS)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--budget", type=float, default=120.0, help="seconds per workload")
    args = ap.parse_args()
    text = markdown(run(tuple(args.workloads), args.batch, args.repeat, args.budget), args.batch)
    if args.output:
        from common import write_section

        write_section(args.output, text, BEGIN, END)
    else:
        print(text)


if __name__ == "__main__":
    main()
