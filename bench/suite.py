"""The benchmark suite (not a test): for each workload, netc's targets against what a user would
pick instead, on the same weights and inputs, one thread per runtime; then the compiler's own
speed. Writes its section of docs/benchmarks.md and a chart (docs/benchmarks/suite.png).

    python bench/suite.py                          # everything (about 20 minutes on 2 cores)
    python bench/suite.py --quick                  # batch 1 only, fewer rounds
    python bench/suite.py --workloads mnist_mlp lenet --no-compiler -o /tmp/b.md
    python bench/suite.py --results run.json       # also keep the measurements
    python bench/suite.py --render run.json        # the report of a run again; runs nothing

Contenders: netc's targets (`-t onnx` under ONNX Runtime ENABLE_ALL, `-t tf`, `-t tf --xla`,
`-t keras --inference`, `-t tvm`), each loaded with `netc.runtime.load`; and the same network
written in Keras (bench/tf_report.py's and bench/onnx_report.py's networks, an LSTM here)
holding the same weights (copied by `netc.keras_weights`' structural pairing), called with
`predict`, `predict_on_batch`, `tf.function` and `tf.function(jit_compile=True)` (XLA),
exported with tf2onnx and run in ONNX Runtime (DISABLE, BASIC, ALL) and built by TVM from that
ONNX (`tvm.relax.frontend.onnx.from_onnx`, then `tvm.compile`, untuned).

Each workload runs in its own process. There, before any timing, every contender's output is
compared with netc's float64 reference at the "model" tolerance (netc's must agree or the run
stops; a peer that differs is left out, with the reason in the report); then all run
interleaved, round by round, in a new order each round. A contender 20x slower than the fastest
runs in rounds of its own (a few calls). Every runtime gets one thread (ORT intra-op 1,
TensorFlow intra/inter-op 1, TVM's pool 1, BLAS 1), so that other jobs on a shared machine
disturb the ratios less, and each time is also given as a fraction of the float32 matmul peak
of one core, measured in the same process (numpy and ONNX Runtime, the better of the two; FLOPs
from netc's summary).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TVM_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy loads its BLAS: one thread per runtime
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Mapping  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from suite_report import (  # noqa: E402
    INT8,
    NETC,
    PEERS,
    ROOT,
    SLOW,
    SLOW_S,
    machine,
    write,
)

EXAMPLES = ROOT / "examples"
WORKLOADS = (
    "mnist_mlp",
    "lenet",
    "resnet50",
    "mobilenet_v2",
    "transformer_classifier",
    "lstm_forecaster",
)
SMALL = ("mnist_mlp", "lenet", "lstm_forecaster")  # also at batch 32
# netc's contenders: runtime.bench's target keys
KINDS = {
    "netc onnx": "onnx",
    "netc tf": "tf",
    "netc tf --xla": "tf-xla",
    "netc keras --inference": "keras",
    "netc tvm": "tvm",
}
INT8_WORKLOADS = ("resnet50", "mobilenet_v2", "transformer_classifier")


# --- the Keras networks ---------------------------------------------------------------------


def _keras_lstm(keras: Any) -> Any:
    """examples/lstm_forecaster.net as the TensorFlow time-series tutorial writes it."""
    L = keras.layers
    x = inp = keras.Input((None, 8), name="history")
    x = L.LSTM(32)(L.LSTM(64, return_sequences=True)(x))
    return keras.Model(inp, L.Dense(1)(x))


def keras_networks(workload: str, model: Any, weights: Mapping[str, np.ndarray]) -> Any:
    """(the Keras network holding netc's weights, the twin that tf2onnx exports). They differ
    for the Transformer only: tf2onnx cannot lower the Erfc of Keras' exact gelu, so its twin
    (bench/onnx_report.py's) writes gelu with Erf, and takes the same weights in order."""
    import keras
    import onnx_report
    import tf_report

    # tf_report's builder pairs the weights; it knows its three workloads, these join them
    for name in ("mnist_mlp", "lenet"):
        tf_report.KERAS.setdefault(name, onnx_report.KERAS[name])
    tf_report.KERAS.setdefault("lstm_forecaster", _keras_lstm)
    network = tf_report.keras_network(workload, model, weights)
    if workload != "transformer_classifier":
        return network, network
    twin = onnx_report.KERAS[workload](keras)
    twin.set_weights(network.get_weights())
    return network, twin


# --- the contenders -------------------------------------------------------------------------


def tvm_from_onnx(proto: Any) -> Callable[[Mapping[str, np.ndarray]], Any]:
    """The tf2onnx export built by TVM as its documentation shows (from_onnx, tvm.compile for
    this host, untuned), behind a call taking numpy inputs in0, in1, ..."""
    from netc.backends import tvm as import_tvm
    from netc.backends.tvm_build import host_target, make_target

    tvm = import_tvm("tvm")
    from tvm.relax.frontend.onnx import from_onnx

    module = from_onnx(proto, keep_params_in_input=False)
    executable = tvm.compile(module, target=make_target(host_target()))
    device = tvm.cpu()
    vm = tvm.relax.VirtualMachine(executable, device)
    names = [i.name for i in proto.graph.input]

    def call(feed: Mapping[str, np.ndarray]) -> Any:
        args = [tvm.runtime.tensor(np.ascontiguousarray(feed[n]), device) for n in names]
        out = vm["main"](*args)
        return [out.numpy()] if hasattr(out, "numpy") else [o.numpy() for o in out]

    return call


def int8_session(model: Any, weights: Mapping[str, np.ndarray]) -> tuple[Any, str]:
    """netc's int8 model of `model` in an ONNX Runtime session (one thread), and what its
    quantization report says of it (top-1 agreement and largest error on held-out samples)."""
    import netc.runtime
    from netc import driver, quantize
    from netc.backends.onnx_contrib import use_contrib_ops

    proto = use_contrib_ops(driver.emit(model, "onnx", weights=weights), model.graph)
    with tempfile.TemporaryDirectory() as tmp:
        calib = Path(tmp) / "calib.npz"
        np.savez(calib, **quantize.random_inputs(model.graph, 40, seed=1))
        options = quantize.QuantizeOptions(calib=calib, warn_only=True)
        int8, report = quantize.quantize(proto, model.graph, options)
    session = netc.runtime.load(int8, device="cpu", threads=1, inter_op_threads=1)
    cost = report.outputs[0]
    return session, (
        f"{report.lines()[0]}; {report.lines()[1].rstrip(':')}: top-1 agreement "
        f"{cost.top1_agreement:.1f} % of {cost.rows}, largest error "
        f"{100 * cost.max_relative_error:.1f} % of the largest output"
    )


def contenders(
    workload: str, model: Any, weights: Mapping[str, np.ndarray], dims: Mapping[str, int]
) -> tuple[dict[str, Any], dict[str, float], dict[str, str]]:
    """Every contender of a workload as a tf_report.Call (numpy in, numpy out), each one's
    build seconds, and the peers that could not be built, with why."""
    import tf_report
    from common import tf2onnx_proto

    import netc
    from netc.backends import tensorflow
    from netc.runtime.bench import Contender, _import_framework, _session

    tf = tensorflow("tf")
    names = list(model.graph.inputs)
    calls: dict[str, Any] = {}
    builds: dict[str, float] = {}
    failed: dict[str, str] = {}
    for name, kind in KINDS.items():
        _import_framework(kind)
        start = time.perf_counter()
        # the session is the first of what _session returns (then whether TVM used its cache)
        session = _session(model, Contender(kind, "cpu", 2, name), weights, dims, 1, "all")[0]
        builds[name] = time.perf_counter() - start
        calls[name] = tf_report.Call(lambda f, s=session: s.run(f))

    def x(feed: Mapping[str, np.ndarray]) -> Any:
        return feed[names[0]] if len(names) == 1 else [feed[n] for n in names]

    def tensors(feed: Mapping[str, np.ndarray]) -> list[Any]:
        return [tf.constant(feed[n]) for n in names]

    start = time.perf_counter()
    network, twin = keras_networks(workload, model, weights)
    builds["keras"] = time.perf_counter() - start
    graph_fn = tf.function(network)
    xla_fn = tf.function(network, jit_compile=True)
    calls["keras predict"] = tf_report.Call(lambda f: network.predict(x(f), verbose=0))
    calls["keras predict_on_batch"] = tf_report.Call(lambda f: network.predict_on_batch(x(f)))
    calls["keras tf.function"] = tf_report.Call(lambda f: graph_fn(*tensors(f)))
    calls["keras xla"] = tf_report.Call(lambda f: xla_fn(*tensors(f)))

    start = time.perf_counter()
    try:
        proto = tf2onnx_proto(twin)
    except Exception as e:  # noqa: BLE001 -- a converter's failure is a result to report
        for name in PEERS[4:]:
            failed[name] = f"tf2onnx: {type(e).__name__}: {str(e).splitlines()[0][:160]}"
        proto = None
    builds["tf2onnx"] = time.perf_counter() - start
    if proto is not None:
        by_position = [i.name for i in proto.graph.input]

        def renamed(feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            return {theirs: feed[mine] for mine, theirs in zip(names, by_position, strict=True)}

        for level in ("disable", "basic", "all"):
            session = netc.runtime.load(
                proto, graph_optimization=level, device="cpu", threads=1, inter_op_threads=1
            )
            calls[f"tf2onnx ort {level}"] = tf_report.Call(lambda f, s=session: s.run(renamed(f)))
        start = time.perf_counter()
        try:
            run_tvm = tvm_from_onnx(proto)
            calls["tf2onnx tvm"] = tf_report.Call(lambda f: run_tvm(renamed(f)))
        except Exception as e:  # noqa: BLE001 -- TVM's importer failing is a result too
            failed["tf2onnx tvm"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
        builds["tf2onnx tvm"] = time.perf_counter() - start
    order = [n for n in (*NETC, *PEERS) if n in calls]
    return {n: calls[n] for n in order}, builds, failed


def check(
    calls: dict[str, Any], model: Any, weights: Any, feed: Any, failed: dict[str, str]
) -> dict[str, float]:
    """tf_report.check, one contender at a time: netc's must agree (else SystemExit); a peer
    that differs leaves `calls` with the reason in `failed`. The largest errors, as shares of
    the model tolerance."""
    import tf_report

    errors = {}
    for name in list(calls):
        if name == INT8:  # its accuracy is its quantization report's
            continue
        try:
            errors.update(tf_report.check({name: calls[name]}, model, weights, feed))
        except SystemExit as e:
            if name in NETC:
                raise
            failed[name] = f"output differs from the float64 reference: {e}"
            del calls[name]
        except Exception as e:  # noqa: BLE001 -- a peer that fails at this batch size
            if name in NETC:
                raise
            failed[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
            del calls[name]
    return errors


def measure(workload: str, batches: tuple[int, ...], repeat: int, budget_s: float) -> dict:
    """Build, check and time every contender of `workload` at each batch size; JSON-able."""
    from common import matmul_peak

    import netc
    from netc.backends import tensorflow
    from netc.runtime.api import graph_signature
    from netc.runtime.bench import Timing, random_inputs, side_by_side
    from netc.weights import randomized_weights

    tf = tensorflow("tf")
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from netc.runtime.tvm import set_threads

    set_threads(1)
    peaks = [matmul_peak()]
    model = netc.compile(EXAMPLES / f"{workload}.net")
    dims = {"T": 16} if "T" in model.size_symbols else {}
    model = model.with_dims(dims)
    weights = randomized_weights(model.graph, seed=0)
    signature = graph_signature(model.graph)[0]
    calls, builds, failed = contenders(workload, model, weights, dims)
    int8 = None
    if workload in INT8_WORKLOADS:
        import tf_report

        start = time.perf_counter()
        session, int8 = int8_session(model, weights)
        builds[INT8] = time.perf_counter() - start
        calls[INT8] = tf_report.Call(lambda f: session.run(f))
    result: dict[str, Any] = {
        "workload": workload,
        "params": model.total_params,
        "flops": model.flops,  # per sample
        "dims": dims,
        "builds": builds,
        "failed": failed,
        "int8": int8,  # its quantization report, in a sentence
        "batches": {},
    }
    previous: dict[str, float] = {}  # the slow contenders' seconds a call at the last batch
    previous_batch = 1
    for batch in batches:
        feed = random_inputs(signature, batch, dims)
        loads = [os.getloadavg()[0]]
        live = dict(calls)
        for name, seconds in list(previous.items()):  # a slow one's time grows with the batch
            guess = seconds * batch / previous_batch
            if name in live and guess > budget_s:
                failed[f"{name} (batch {batch})"] = (
                    f"not timed: {seconds:.1f} s a call at batch {previous_batch}, about "
                    f"{guess:.0f} s here, over the budget of {budget_s:.0f} s"
                )
                del live[name]
        errors = check(live, model, weights, feed, failed)
        once = {}
        for name, call in live.items():  # warm-up (XLA compiles this shape), then one call
            call.run(feed)
            start = time.perf_counter()
            call.run(feed)
            once[name] = time.perf_counter() - start
        fastest = min(once.values())
        slow = {n: c for n, c in live.items() if once[n] > SLOW * fastest and once[n] > SLOW_S}
        previous, previous_batch = {n: once[n] for n in slow}, batch
        fast = {n: c for n, c in live.items() if n not in slow}
        timings = side_by_side(
            fast, {n: feed for n in fast}, warmup=0, repeat=repeat, budget_s=budget_s
        )
        for name, call in slow.items():  # a few calls, about a quarter of the budget
            rounds = min(repeat, int(budget_s / 4 / once[name]))
            if rounds < 2:  # the timed warm call is its one sample
                timings[name] = Timing((once[name],))
                continue
            timings.update(
                side_by_side({name: call}, {name: feed}, warmup=0, repeat=rounds, budget_s=0)
            )
        loads.append(os.getloadavg()[0])
        result["batches"][str(batch)] = {
            "times": {n: list(t.times) for n, t in timings.items()},
            "own_rounds": sorted(slow),
            "errors": errors,
            "loads": loads,
        }
        line = "; ".join(f"{n} {t.median * 1e3:.2f}" for n, t in timings.items())
        print(f"{workload} batch {batch} (ms): {line}", file=sys.stderr, flush=True)
    peaks.append(matmul_peak())
    result["peaks"] = peaks
    return result


# --- the compiler's own speed ---------------------------------------------------------------

EMIT = {  # ResNet-50 for each target: (flags, output name)
    "onnx": (["-t", "onnx"], "r.onnx"),
    "tf": (["-t", "tf"], "r.savedmodel"),
    "tf --xla": (["-t", "tf", "--xla"], "r_xla.savedmodel"),
    "keras --inference": (["-t", "keras", "--inference"], "r.keras"),
    "tvm": (["-t", "tvm"], "r.tvm"),
}


def compiler_speed(repeat: int) -> list[dict]:
    """Wall and CPU seconds (medians of `repeat` fresh processes) and peak memory of `netc
    --help`, `netc check` of ResNet-50, its emission for each target (TVM's library built in
    an empty cache each time), and `netc check` of a generated 1,000-block file."""
    import statistics

    import frontend

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        spec = work / "gen1000.net"
        spec.write_text(frontend.generated_spec(1000))
        resnet = str(EXAMPLES / "resnet50.net")
        commands: list[tuple[str, list[str], int, str]] = [  # label, args, runs, output
            ("netc --help", ["--help"], repeat, ""),
            ("netc check examples/resnet50.net", ["check", resnet], repeat, ""),
            ("netc check (1,000 generated blocks)", ["check", str(spec)], repeat, ""),
        ]
        for target, (flags, out) in EMIT.items():
            runs = 1 if target == "tvm" else max(1, repeat // 2)
            label = f"netc examples/resnet50.net {' '.join(flags)}"
            commands.append((label, [resnet, *flags, "-o"], runs, out))
        for label, args, runs, out in commands:
            walls, cpus, peaks = [], [], []
            for i in range(runs):
                env = dict(os.environ, NETC_CACHE_DIR=str(work / f"cache{i}"))
                full = [*args, str(work / f"{i}_{out}")] if out else args
                wall, cpu, peak = frontend.run(full, env)
                walls.append(wall)
                cpus.append(cpu)
                peaks.append(peak)
            rows.append(
                {
                    "command": label,
                    "wall": statistics.median(walls),
                    "cpu": statistics.median(cpus),
                    "peak_mib": max(peaks) / 1024,
                    "runs": runs,
                }
            )
            print(f"{label}: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def drive(args: argparse.Namespace) -> None:
    """Each workload in its own process, then the compiler's speed, then the report."""
    from common import matmul_peak

    results = []
    loads = [os.getloadavg()[0]]
    peaks = [matmul_peak()]
    with tempfile.TemporaryDirectory() as tmp:
        for workload in args.workloads:
            out = Path(tmp) / f"{workload}.json"
            batches = args.batches or ([1] if args.quick else [1, 8])
            if workload in SMALL and not args.batches and not args.quick:
                batches = [1, 8, 32]
            command = [sys.executable, __file__, "--workload", workload, "--json", str(out)]
            command += ["--repeat", str(args.repeat), "--budget", str(args.budget)]
            command += ["--batches", *map(str, batches)]
            done = subprocess.run(command, check=False)
            if done.returncode != 0:
                print(f"{workload}: failed (exit {done.returncode})", file=sys.stderr)
                continue
            results.append(json.loads(out.read_text()))
            loads.append(os.getloadavg()[0])
            if args.results:  # what ran so far, should a later workload fail
                Path(args.results).write_text(json.dumps({"results": results}))
    compiler = [] if args.no_compiler else compiler_speed(1 if args.quick else 3)
    flags = " --quick" if args.quick else ""
    run = {
        "results": results,
        "machine": machine(),
        "loads": loads,
        "compiler": compiler,
        "flags": flags,
        "peaks": [*peaks, matmul_peak()],
    }
    if args.results:
        Path(args.results).write_text(json.dumps(run))
    write(run, args.output)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("-o", "--output", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--workload", choices=WORKLOADS, help="run this workload in this process")
    ap.add_argument("--json", help="with --workload: write its measurements here")
    ap.add_argument("--workloads", nargs="*", default=list(WORKLOADS), choices=WORKLOADS)
    ap.add_argument("--batches", nargs="*", type=int, help="default 1 8 (and 32: small ones)")
    ap.add_argument("--quick", action="store_true", help="batch 1, 5 rounds, 1 compiler run")
    ap.add_argument("--repeat", type=int, default=None, help="rounds per batch size at most")
    ap.add_argument("--budget", type=float, default=None, help="seconds per batch size")
    ap.add_argument("--no-compiler", action="store_true", help="leave out the compiler's speed")
    ap.add_argument("--results", help="also write the run's measurements here (JSON)")
    ap.add_argument("--render", help="write the report of a --results file; run nothing")
    args = ap.parse_args()
    args.repeat = args.repeat or (5 if args.quick else 100)
    args.budget = args.budget or (10.0 if args.quick else 40.0)
    from common import dispatch

    dispatch(
        args,
        write,
        drive,
        lambda: measure(args.workload, tuple(args.batches or (1,)), args.repeat, args.budget),
    )


if __name__ == "__main__":
    main()
