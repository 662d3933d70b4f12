"""int8 against float under ONNX Runtime (not a test): for each workload, netc's float model
and its `--quantize int8` model (static QDQ calibrated on seeded inputs for the convnets,
dynamic for the Transformer), both at ONNX Runtime's optimizer level all, timed side by side
in one process (runs interleaved), with the report's accuracy cost on the held-out samples;
for a model with self-attention, the same with --ort-contrib (com.microsoft Attention, and
QAttention in int8). Speed-ups are medians of the per-round ratios against plain float.

    python bench/quantize_report.py --batch 1 --batch 8 [--method percentile] [WORKLOAD ...]

Weights are netc.weights.randomized_weights (no trained weights here), inputs seeded
(standard normal images, token ids): top-1 agreement on them is a proxy for a trained
model's on real data, which netc reports the same way when given --calib. `--data-init` sets
every batchnorm's statistics to those of its input on the first calibration samples, layer
by layer, as training leaves them: random batchnorm statistics saturate a deep relu6 network
(MobileNetV2's outputs then hardly depend on its input, and its top-1 is a near-tie).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WORKLOADS = ("resnet50", "mobilenet_v2", "transformer_classifier")


def main() -> None:
    """Measure and print a Markdown table."""
    import netc
    import netc.runtime
    from netc import driver, quantize
    from netc.backends import onnx_contrib
    from netc.runtime.bench import side_by_side
    from netc.weights import randomized_weights

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, action="append")
    parser.add_argument(
        "--threads", type=int, default=None, help="ONNX Runtime's intra-op threads (default all)"
    )
    parser.add_argument("--samples", type=int, default=40, help="calibration samples")
    parser.add_argument("--method", default="percentile")
    parser.add_argument(
        "--data-init", action="store_true", help="batchnorm statistics from the data"
    )
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("workloads", nargs="*", default=WORKLOADS)
    args = parser.parse_args()
    batches = args.batch or [1, 8]
    tmp = Path(tempfile.mkdtemp())
    threads = args.threads or os.cpu_count()
    print(f"ONNX Runtime, {threads} threads, optimizer at all; medians of {args.repeat}")
    print()
    print("| workload | contender | batch | median (ms) | speed vs float | top-1 | max error |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for workload in args.workloads:
        model = netc.compile(EXAMPLES / f"{workload}.net")
        weights = randomized_weights(model.graph, 0)
        data = quantize.random_inputs(model.graph, args.samples, seed=1)
        if args.data_init:
            weights = batchnorm_from_data(model.graph, weights, {k: v[:8] for k, v in data.items()})
        proto = driver.emit(model, "onnx", weights=weights)
        np.savez(tmp / "calib.npz", **data)
        options = quantize.QuantizeOptions(
            calib=tmp / "calib.npz", method=args.method, warn_only=True
        )
        models = {"float": proto}
        contrib = onnx_contrib.use_contrib_ops(proto, model.graph)
        if contrib is not proto:
            models["float --ort-contrib"] = contrib
        reports = {}
        t0 = time.perf_counter()
        for name, float_model in list(models.items()):
            int8, report = quantize.quantize(float_model, model.graph, options)
            models[name.replace("float", "int8")] = int8
            reports[name.replace("float", "int8")] = report
        took = time.perf_counter() - t0
        sessions = {
            k: netc.runtime.load(m, device="cpu", threads=args.threads) for k, m in models.items()
        }
        for batch in batches:
            feed = quantize.random_inputs(model.graph, batch, seed=2)
            times = side_by_side(sessions, {k: feed for k in sessions}, repeat=args.repeat)
            base = times["float"].times
            for name, t in times.items():
                ratio = float(np.median(np.asarray(base) / np.asarray(t.times)))
                cost = reports[name].outputs[0] if name in reports else None
                accuracy = (
                    f"{cost.top1_agreement:.1f} % of {cost.rows} | "
                    f"{100 * cost.max_relative_error:.1f} %"
                    if cost
                    else " | "
                )
                print(
                    f"| {workload} | {name} | {batch} | {t.median * 1e3:.2f} | {ratio:.2f}x | "
                    f"{accuracy} |",
                    flush=True,
                )
        report = reports["int8"]
        print(f"<!-- {workload}: quantized in {took:.0f} s; {report.lines()[0]} -->", flush=True)


def batchnorm_from_data(graph: Any, weights: dict, feed: dict, passes: int = 80) -> dict:
    """`weights` with each batchnorm's moving mean and variance set to its input's statistics
    on `feed` (per channel, the last axis), repeated until no statistic moves by 0.1 %: a
    pass fixes every batchnorm whose upstream ones were already right."""
    from netc.runtime.verify_values import run_values

    weights = dict(weights)
    norms = [n for n in graph if n.op == "batchnorm"]
    for _ in range(passes):
        values = run_values("onnx", graph, weights, feed, "cpu").values
        moved = 0.0
        for n in norms:
            x = values[(n.inputs[0], None)] if n.inputs[0] not in feed else feed[n.inputs[0]]
            axes = tuple(range(x.ndim - 1))
            mean, var = x.mean(axes), x.var(axes)
            old_mean, old_var = weights[n.inputs[3]], weights[n.inputs[4]]
            moved = max(moved, float(np.max(np.abs(var - old_var) / (var + 1e-3))))
            moved = max(moved, float(np.max(np.abs(mean - old_mean) / np.sqrt(var + 1e-3))))
            weights[n.inputs[3]], weights[n.inputs[4]] = (
                mean.astype(np.float32),
                var.astype(np.float32),
            )
        if moved < 1e-3:
            break
    return weights


if __name__ == "__main__":
    main()
