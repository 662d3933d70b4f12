"""The TVM benchmark report (not a test): for each workload at batch 1 and 8, netc's `-t tvm`
library (netc's default CPU schedules, the target users get) against the same network as
netc's ONNX (`-t onnx`, -O2) under ONNX Runtime with ENABLE_ALL, and against the same Relax
module built without netc's schedules (TVM's legalized loop nests: what the schedules gain).
With --tuned, a MetaSchedule database (`netc tune`, that many trials) joins as a fourth.

    python bench/tvm_report.py -o docs/benchmarks.md        # every workload; rewrites its section
    python bench/tvm_report.py --workload resnet18 --json r.json   # one workload, in this process
    python bench/tvm_report.py --results run.json -o docs/benchmarks.md   # keep the measurements
    python bench/tvm_report.py --render run.json -o docs/benchmarks.md    # the report again

Without --workload the driver runs each workload in its own Python process (one network's
thread pools and caches never slow another's) and collects their JSON. Within a workload the
contenders run in the same process: TVM and ONNX Runtime in turns, each turn untimed calls
for SETTLE_S and then BLOCK timed ones (`netc.runtime.bench.side_by_side`: both pools have
several threads, and a runtime's pool slows the calls right after it); the unscheduled
build, 10-100x slower, in a few rounds of its own between them. Every library is built in a
fresh build cache, and timed. Before any timing every contender's output is compared with
the float64 numpy reference at the "model" scope of `netc.runtime.tolerance`: a fast wrong
answer stops the report. Ratios are speeds against ONNX Runtime (its time / TVM's): above 1,
TVM is faster.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dispatch, load_sentence, machine_info, run_workloads, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
WORKLOADS = (
    "mnist_mlp",
    "lenet",
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "transformer_classifier",
    "lstm_forecaster",
)
BATCHES = (1, 8)
BASELINE = "onnx: ort all"
TVM = "tvm"
UNSCHEDULED = "tvm: unscheduled"
TUNED = "tvm: tuned"
BEGIN = "<!-- bench/tvm_report.py: begin -->"
END = "<!-- bench/tvm_report.py: end -->"
UNSCHEDULED_BUDGET_S = 60.0  # per batch: the unscheduled build runs at least once
BLOCK = 5  # timed calls of a runtime in a row, after SETTLE_S of untimed ones
SETTLE_S = 0.1  # ONNX Runtime's workers spin for about 40 ms after its run


def sessions(model: Any, weights: Mapping[str, np.ndarray], tuned: int) -> tuple[dict, dict]:
    """The contenders' sessions, and each build's seconds (a fresh cache: every build real)."""
    import netc
    from netc import driver
    from netc.backends import to_tvm

    artifact = driver.emit(model, "tvm", weights=weights)
    builds: dict[str, float] = {}
    out: dict[str, Any] = {}
    start = time.perf_counter()
    out[TVM] = netc.runtime.load(artifact)
    builds[TVM] = time.perf_counter() - start
    out[BASELINE] = netc.runtime.load(
        model, target="onnx", weights=weights, graph_optimization="all", device="cpu"
    )
    start = time.perf_counter()
    out[UNSCHEDULED] = netc.runtime.load(to_tvm.library(artifact, defaults=False))
    builds[UNSCHEDULED] = time.perf_counter() - start
    return out, builds


def tuned_session(
    model: Any, weights: Mapping[str, np.ndarray], trials: int, dims: dict[str, int], builds: dict
) -> Any:
    """The build tuned by `netc tune` for `trials` at these sizes of the symbolic dims
    (MetaSchedule tunes kernels of fixed sizes, as `netc tune --dim N=B` and `-t tvm --dim N=B`
    do: the batch, and any other symbol at the size the inputs have)."""
    import netc
    from netc import driver
    from netc.backends import to_tvm, tvm_tune

    artifact = driver.emit(model, "tvm", weights=weights, dims=dims)
    start = time.perf_counter()
    database = tvm_tune.tune(artifact, trials=trials, quiet=True)
    builds[f"tuning (batch {dims['N']})"] = time.perf_counter() - start
    start = time.perf_counter()
    session = netc.runtime.load(to_tvm.library(artifact, database))
    builds[f"{TUNED} (batch {dims['N']})"] = time.perf_counter() - start
    return session


def check(
    runs: Mapping[str, Any], model: Any, weights: Mapping[str, np.ndarray], feed: Any
) -> None:
    """Every contender's outputs against the float64 reference at the "model" tolerance, or
    SystemExit naming the one that differs."""
    from netc.runtime import reference
    from netc.runtime.tolerance import mismatch

    want = reference.run(model.graph, feed, weights, wide=True)
    for name, session in runs.items():
        got = session.run(feed)
        for out, _ in model.graph.outputs:
            found = mismatch(np.asarray(got[out]), np.asarray(want[out]), scope="model")
            if found is not None:
                raise SystemExit(f"{model.graph.name}: `{name}` computes another `{out}`: {found}")


def measure(
    workload: str, batches: tuple[int, ...], repeat: int, budget_s: float, tuned: int
) -> dict:
    """Build and time every contender of `workload` at each batch size; JSON-able."""
    import netc
    from netc.runtime.bench import random_inputs, side_by_side
    from netc.weights import randomized_weights

    model = netc.compile(EXAMPLES / f"{workload}.net")
    weights = randomized_weights(model.graph, seed=0)
    result: dict[str, Any] = {"workload": workload, "params": model.total_params, "batches": {}}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["NETC_CACHE_DIR"] = cache
        runs, builds = sessions(model, weights, tuned)
        result["builds"] = builds
        for batch in batches:
            feed = random_inputs(runs[TVM].inputs, batch)
            if tuned:  # every symbolic dim fixed at its size in the feed
                sizes = {
                    d: n
                    for sig in runs[TVM].inputs
                    for d, n in zip(sig.shape, feed[sig.name].shape, strict=True)
                    if isinstance(d, str)
                }
                runs[TUNED] = tuned_session(model, weights, tuned, sizes, builds)
            fast = {name: s for name, s in runs.items() if name != UNSCHEDULED}
            start = time.perf_counter()
            loads = [os.getloadavg()[0]]
            check(runs, model, weights, feed)
            feeds = {name: feed for name in runs}
            timings = side_by_side(
                fast, feeds, repeat=repeat, budget_s=budget_s, block=BLOCK, settle_s=SETTLE_S
            )
            # the unscheduled build: as many rounds as its budget allows, at least one
            slow = runs[UNSCHEDULED]
            t0 = time.perf_counter()
            slow.run(feed)
            once = time.perf_counter() - t0
            rounds = max(1, min(5, int(UNSCHEDULED_BUDGET_S / max(once, 1e-3))))
            plain = side_by_side({UNSCHEDULED: slow}, {UNSCHEDULED: feed}, warmup=0, repeat=rounds)
            loads.append(os.getloadavg()[0])
            result["batches"][str(batch)] = {
                "times": {name: list(t.times) for name, t in {**timings, **plain}.items()},
                "loads": loads,
                "seconds": time.perf_counter() - start,
            }
            line = "; ".join(
                f"{k} {t.median * 1e3:.2f} ms" for k, t in {**timings, **plain}.items()
            )
            print(f"{workload} batch {batch}: {line}", file=sys.stderr, flush=True)
    return result


# --- the report ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the numbers ran on."""
    import onnxruntime
    import tvm

    from netc.backends import to_tvm

    return machine_info(
        tvm=tvm.__version__,
        target=to_tvm.host_target(),
        onnxruntime=onnxruntime.__version__,
    )


def _stats(times: list[float]) -> tuple[float, float, float]:
    p10, median, p90 = np.percentile(np.asarray(times) * 1e3, [10, 50, 90])
    return float(median), float(p10), float(p90)


def _ratio(times: Mapping[str, list[float]], contender: str, base: str = BASELINE) -> str:
    """`base`'s time / `contender`'s: of the medians, then (interleaved contenders only) the
    ratios' median and (p10 .. p90) of the calls made in the same round."""
    mine, theirs = np.asarray(times[contender]), np.asarray(times[base])
    overall = np.median(theirs) / np.median(mine)
    if len(mine) != len(theirs):  # measured in rounds of its own
        return f"**{overall:.3g}x**"
    p10, median, p90 = np.percentile(theirs / mine, [10, 50, 90])
    return f"**{overall:.2f}x**; {median:.2f}x ({p10:.2f} .. {p90:.2f})"


def markdown(results: list[dict], info: Mapping[str, Any], load: str) -> str:
    """The report's section of docs/benchmarks.md."""
    names = [TVM, TUNED, BASELINE, UNSCHEDULED]
    present = [
        n for n in names if any(n in b["times"] for r in results for b in r["batches"].values())
    ]
    lines = [
        BEGIN,
        "",
        "# Benchmark: netc's TVM target against ONNX Runtime",
        "",
        f"Generated by `python bench/tvm_report.py -o docs/benchmarks.md` on {info['date']}: "
        f"{info['cpu']}, {info['cores']} CPU cores ({info['machine']}), Python "
        f"{info['python']}, netc {info['netc']}, apache-tvm {info['tvm']} (target "
        f"`{json.dumps(info['target'])}`), ONNX Runtime {info['onnxruntime']} (CPU provider, "
        f"ENABLE_ALL). {load}",
        "",
        "Regenerate with `python bench/tvm_report.py -o docs/benchmarks.md` (it replaces only "
        "this section, between its markers). Contenders: `tvm` is `netc -t tvm` as users get "
        "it (netc's default CPU schedules, LLVM -O3, the host's CPU); `onnx: ort all` is "
        "`netc -t onnx` (-O2) under ONNX Runtime with ENABLE_ALL; `tvm: unscheduled` is the "
        "same Relax module and pipeline without netc's schedules (TVM's legalized loop nests, "
        "what `tvm.compile` gives); `tvm: tuned` adds a MetaSchedule database (`netc tune`). "
        "Each workload ran in its own process, every output checked against the float64 "
        "reference first. Both runtimes use their default threads (one per physical core); "
        f"they ran in turns, each turn untimed calls for {SETTLE_S:g} s (at least one) and "
        f"then {BLOCK} timed ones back to back (a runtime's thread pool slows the calls right "
        "after it: ONNX Runtime's workers spin for about 40 ms after its run, and TVM's "
        "2-thread MLP took 4-8 ms a call in that time instead of 0.1 ms), the unscheduled "
        "build in rounds of its own (at most a minute a batch).",
        "",
        "Times per batch in ms: median (p10 .. p90), n runs.",
        "",
        "| workload | batch | " + " | ".join(present) + " |",
        "|---|---:|" + "---:|" * len(present),
    ]
    for row in results:
        for batch, data in row["batches"].items():
            cells = []
            for name in present:
                if name not in data["times"]:
                    cells.append("")
                    continue
                median, p10, p90 = _stats(data["times"][name])
                n = len(data["times"][name])
                cells.append(f"{median:.2f} ({p10:.2f} .. {p90:.2f}) n={n}")
            lines.append(f"| {row['workload']} | {batch} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Ratios against ONNX Runtime",
        "",
        "Speed of each TVM build against ONNX Runtime ENABLE_ALL (ORT's time / TVM's; above 1, "
        "TVM is faster): the ratio of the medians, then the median and (p10 .. p90) of the "
        "ratios of the calls made in the same round (the k-th of each turn). The issue's "
        "goals: untuned within 3x (>= 0.33x), tuned within 1.2x "
        "(>= 0.83x).",
        "",
        "| workload | batch | " + " | ".join(n for n in present if n != BASELINE) + " |",
        "|---|---:|" + "---:|" * (len(present) - 1),
    ]
    for row in results:
        for batch, data in row["batches"].items():
            cells = [
                _ratio(data["times"], n) if n in data["times"] else ""
                for n in present
                if n != BASELINE
            ]
            lines.append(f"| {row['workload']} | {batch} | " + " | ".join(cells) + " |")
    built = [n for n in (TVM, UNSCHEDULED) if any(n in r["builds"] for r in results)]
    built += sorted({n for r in results for n in r["builds"]} - set(built))
    lines += [
        "",
        "## Build times",
        "",
        "Seconds to compile each library (netc's pipeline, schedules, LLVM, linking) in a "
        "fresh cache, in the benchmark's process; a second build of the same model is a cache "
        "hit. The issue's goal: under a minute for ResNet-50.",
        "",
        "| workload | " + " | ".join(built) + " |",
        "|---|" + "---:|" * len(built),
    ]
    for row in results:
        b = row["builds"]
        cells = [f"{b[n]:.1f}" if n in b else "" for n in built]
        lines.append(f"| {row['workload']} | " + " | ".join(cells) + " |")
    lines += ["", END, ""]
    return "\n".join(lines)


def drive(args: argparse.Namespace) -> None:
    """Each workload in its own process, then the report (and, with --results, everything it
    was made from, for --render)."""
    write(run_workloads(__file__, args, machine, ["--tuned", str(args.tuned)]), args.output)


def write(run: Mapping[str, Any], output: str | None) -> None:
    """The report of a run (drive's record of it) into `output`'s section, or to stdout."""
    section = markdown(run["results"], run["machine"], load_sentence(run))
    if output:
        write_section(output, section, BEGIN, END)
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
    ap.add_argument("--repeat", type=int, default=20, help="rounds per batch size at most")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per batch size")
    ap.add_argument("--tuned", type=int, default=0, help="MetaSchedule trials (0: no tuning)")
    ap.add_argument("--note", help="a sentence about the machine's load for the report")
    ap.add_argument("--results", help="also write the run's measurements here (JSON)")
    ap.add_argument("--render", help="write the report of a --results file; run nothing")
    args = ap.parse_args()
    dispatch(
        args,
        write,
        drive,
        lambda: measure(args.workload, tuple(args.batches), args.repeat, args.budget, args.tuned),
    )


if __name__ == "__main__":
    main()
