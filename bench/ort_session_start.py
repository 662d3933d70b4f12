"""Time to first result of a deployed ONNX model (not a test): the plain model netc writes,
loaded with ONNX Runtime's optimizer at "all", against the optimized graph netc saved
(`--ort-optimize`, an `.onnx`, and ONNX Runtime's `.ort` format), loaded with the optimizer
off. Each load runs in a fresh process (what a deployment pays), contenders interleaved.

    python bench/ort_session_start.py --rounds 5

Prints, per workload and form, the median seconds from creating the session to the first
result, and the session creation alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WORKLOADS = ("resnet50", "mobilenet_v2", "transformer_classifier")

# runs in a fresh interpreter: ONNX Runtime imported first, then only the session is timed
_CHILD = """
import json, sys, time
import numpy as np
import onnxruntime as ort
path, level, feed = sys.argv[1], sys.argv[2], dict(np.load(sys.argv[3]))
options = ort.SessionOptions()
options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
t0 = time.perf_counter()
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
t1 = time.perf_counter()
session.run(None, feed)
t2 = time.perf_counter()
print(json.dumps({"load": t1 - t0, "first": t2 - t0}))
"""


def main() -> None:
    """Measure and print the table."""
    import netc
    from netc import driver
    from netc.backends import onnx_deploy, to_onnx
    from netc.runtime.verify import random_inputs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("workloads", nargs="*", default=WORKLOADS)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    print("| workload | form | session (s) | first result (s) |")
    print("|---|---|---:|---:|")
    for workload in args.workloads:
        model = netc.compile(EXAMPLES / f"{workload}.net")
        proto = driver.emit(model, "onnx")
        forms = {
            "plain .onnx, ort all": (tmp / f"{workload}.onnx", "ORT_ENABLE_ALL"),
            "optimized .onnx, ort off": (tmp / f"{workload}.opt.onnx", "ORT_DISABLE_ALL"),
            "ORT format .ort, ort off": (tmp / f"{workload}.ort", "ORT_DISABLE_ALL"),
        }
        to_onnx.save(proto, forms["plain .onnx, ort all"][0])
        onnx_deploy.save_optimized(proto, forms["optimized .onnx, ort off"][0], "all")
        onnx_deploy.save_optimized(proto, forms["ORT format .ort, ort off"][0], "all")
        feed = random_inputs(model.graph, {"N": 1}, 0, "normal")
        np.savez(tmp / f"{workload}.npz", **feed)
        times: dict[str, list[dict]] = {f: [] for f in forms}
        for _ in range(args.rounds):
            for form, (path, level) in forms.items():
                done = subprocess.run(
                    [sys.executable, "-c", _CHILD, str(path), level, str(tmp / f"{workload}.npz")],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                times[form].append(json.loads(done.stdout))
        for form, rows in times.items():
            load = float(np.median([r["load"] for r in rows]))
            first = float(np.median([r["first"] for r in rows]))
            print(f"| {workload} | {form} | {load:.3f} | {first:.3f} |")


if __name__ == "__main__":
    main()
