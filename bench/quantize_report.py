"""int8 against float under ONNX Runtime (not a test): for each workload, netc's float model
and its `--quantize int8` model (static QDQ calibrated on seeded inputs for the convnets,
dynamic for the Transformer), both at ONNX Runtime's optimizer level all, timed side by side
in one process (runs interleaved), with the report's accuracy cost on the held-out samples;
for a model with self-attention, the same with --ort-contrib (com.microsoft Attention, and
QAttention in int8). Speed-ups are medians of the per-round ratios against plain float.

    python bench/quantize_report.py --batch 1 --batch 8 [--method percentile] [WORKLOAD ...]

Weights are netc.weights.randomized_weights (no trained weights here), inputs seeded
(standard normal images, token ids): top-1 agreement on them is a proxy for a trained
model's on real data, which netc reports the same way when given --calib.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

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
        proto = driver.emit(model, "onnx", weights=weights)
        data = quantize.random_inputs(model.graph, args.samples, seed=1)
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


if __name__ == "__main__":
    main()
