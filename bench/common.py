"""What several benchmark reports in bench/ share: a Keras network exported to ONNX as a Keras
user exports it (tf2onnx), the float32 matrix-product peak of the machine they ran on, and
writing a report's own section of docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def tf2onnx_proto(network: Any, opset: int = 17) -> Any:
    """`network` (a Keras model) exported by tf2onnx from a tf.function in inference mode, with
    a symbolic batch; its inputs are named in0, in1, ..."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    import tf2onnx

    spec = tuple(
        tf.TensorSpec((None, *i.shape[1:]), i.dtype, name=f"in{k}")
        for k, i in enumerate(network.inputs)
    )
    fn = tf.function(lambda *xs: network(list(xs) if len(xs) > 1 else xs[0], training=False))
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=opset)
    return proto


def matmul_peak(sizes: tuple[int, ...] = (256, 512, 1024), threads: int = 1) -> dict[str, float]:
    """GFLOP/s of the fastest float32 n x n matrix product (2 n^3 FLOPs) over `sizes`, by numpy
    (its BLAS, with the threads the environment gives it: OPENBLAS_NUM_THREADS) and by ONNX
    Runtime's MatMul (`threads` intra-op threads). The best of many short products: on a
    machine shared with other jobs a long one is preempted, and a peak has to be unpreempted
    to bound the models' (their small calls often run within one time slice)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    best = {"numpy": 0.0, "onnxruntime": 0.0}
    for n in sizes:
        a = rng.standard_normal((n, n)).astype(np.float32)
        b = rng.standard_normal((n, n)).astype(np.float32)
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["a", "b"], ["c"])],
            "matmul",
            [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in "ab"],
            [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
        )
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        calls = {
            "numpy": lambda a=a, b=b: a @ b,
            "onnxruntime": lambda a=a, b=b, s=session: s.run(None, {"a": a, "b": b}),
        }
        rounds = max(5, int(2**28 / n**3))  # about 0.3 s of products per size and library
        for name, fn in calls.items():
            fn()  # warm-up: the first product allocates
            fastest = float("inf")
            for _ in range(rounds):
                start = time.perf_counter()
                fn()
                fastest = min(fastest, time.perf_counter() - start)
            best[name] = max(best[name], 2.0 * n**3 / fastest / 1e9)
    return best


def dispatch(
    args: Any,
    write: Callable[[Any, str | None], None],
    drive: Callable[[Any], None],
    measure: Callable[[], Any],
) -> None:
    """A report's main, once its arguments are parsed: with --render, `write` the report of a
    saved run; without --workload, `drive` every workload; with it, `measure` that one in this
    process and write its JSON to --json (default: stdout)."""
    if args.render:
        write(json.loads(Path(args.render).read_text()), args.output)
        return
    if args.workload is None:
        drive(args)
        return
    text = json.dumps(measure())
    if args.json:
        Path(args.json).write_text(text)
    else:
        print(text)


def write_section(path: str | Path, section: str, begin: str, end: str) -> None:
    """Write `section` (which holds its own `begin` and `end` marker lines) into the Markdown
    file `path` in place of the text between those markers, or append it; atomically, so the
    other reports' sections stay as they are."""
    from netc.files import write_bytes_atomic

    path = Path(path)
    document = path.read_text() if path.exists() else ""
    if begin in document and end in document:
        head, rest = document.split(begin, 1)
        document = head + section.rstrip("\n") + rest.split(end, 1)[1]
    elif document:
        document = document.rstrip("\n") + "\n\n" + section
    else:
        document = section
    write_bytes_atomic(path, document.encode())


def run_workloads(
    script: str, args: Any, machine: Callable[[], dict[str, Any]], extra: Sequence[str] = ()
) -> dict[str, Any]:
    """Each of `args.workloads` measured by `script --workload W` in its own process (with
    --repeat, --budget, --batches and `extra`), and the run's record: the results, the
    `machine()`, the load average before and after each workload and `args.note`. With
    --results, what ran so far is saved after each workload (should a later one fail), then
    the whole record."""
    import subprocess
    import sys
    import tempfile

    results: list[Any] = []
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        for workload in args.workloads:
            out = Path(tmp) / f"{workload}.json"
            command = [sys.executable, script, "--workload", workload, "--json", str(out)]
            command += ["--repeat", str(args.repeat), "--budget", str(args.budget)]
            command += ["--batches", *map(str, args.batches), *extra]
            subprocess.run(command, check=True)
            results.append(json.loads(out.read_text()))
            loads.append(os.getloadavg()[0])
            if args.results:
                Path(args.results).write_text(json.dumps({"results": results}))
    run = {"results": results, "machine": machine(), "loads": loads, "note": args.note}
    if args.results:
        Path(args.results).write_text(json.dumps(run))
    return run


def load_sentence(run: Mapping[str, Any]) -> str:
    """What a report says of the machine's load during `run` (run_workloads' record)."""
    loads = run["loads"]
    load = "Load average (1 min) before and after each workload: " + ", ".join(
        f"{x:.1f}" for x in loads
    )
    if run.get("note"):
        return load + f"; {run['note']}"
    # the load before the first workload is other jobs' (a benchmark's own threads load the
    # machine while it runs: tvm_report's two per runtime showed 1.5-1.8 on 2 quiet cores)
    if loads and loads[0] > 0.5 * (run["machine"]["cores"] or 1):
        return load + (
            " (a machine shared with other jobs: read the spreads, and the per-round ratios "
            "rather than single medians)."
        )
    return load + "."


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), or what platform knows of it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(**versions: Any) -> dict[str, Any]:
    """What a report's numbers ran on: date, CPU, cores, Python and netc, then `versions`."""
    from datetime import date

    import netc

    return {
        "date": date.today().isoformat(),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "netc": netc.__version__,
        **versions,
    }
