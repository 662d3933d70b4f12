"""Benchmarking on the runtime: random inputs for a signature, latencies measured side by side
(round-robin, so that a drifting machine slows every contender alike), and `compare`, which
compiles a model for every installed target, checks each one's outputs against the float64
reference and times them all interleaved (`netc bench`). The benchmark scripts in bench/ are
built on it too. Timings never appear in tests."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from netc.ir import numpy_dtype

from .api import Session, Signature
from .onnx import gpu_present

DEFAULT_SYMBOLS = {"T": 16}  # a symbolic dim other than the batch, unless given


@dataclass(frozen=True)
class Timing:
    """Latencies of one contender, in seconds."""

    times: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def min(self) -> float:
        return min(self.times)

    @property
    def max(self) -> float:
        return max(self.times)

    def percentile(self, q: float) -> float:
        """The `q`th percentile (0..100) of the latencies, linearly interpolated."""
        return float(np.percentile(np.asarray(self.times), q))

    def __str__(self) -> str:
        return (
            f"{self.median * 1e3:.3f} ms (min {self.min * 1e3:.3f}, "
            f"max {self.max * 1e3:.3f}, n={len(self.times)})"
        )


def random_inputs(
    signature: Sequence[Signature],
    batch: int = 1,
    symbols: Mapping[str, int] | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Inputs for a model's signature: the first symbolic (or unknown) dim of each input is
    the batch, other symbols come from `symbols` (default T=16), unknown dims are 1; integer
    inputs are small ids."""
    rng = np.random.default_rng(seed)
    bound = {**DEFAULT_SYMBOLS, **(symbols or {})}
    out = {}
    for sig in signature:
        shape = [
            batch
            if i == 0 and not isinstance(d, int)
            else d
            if isinstance(d, int)
            else bound.get(d or "", 1)
            for i, d in enumerate(sig.shape)
        ]
        dtype = numpy_dtype(sig.dtype)
        if dtype.kind == "f":
            out[sig.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            out[sig.name] = rng.random(shape) < 0.5
        else:
            out[sig.name] = rng.integers(0, 100, shape).astype(dtype)
    return out


def side_by_side(
    sessions: Mapping[str, Session],
    inputs: Mapping[str, Mapping[str, np.ndarray]],
    *,
    warmup: int = 5,
    repeat: int = 30,
    budget_s: float = 60.0,
    block: int = 1,
    settle_s: float = 0.0,
    on_round: Callable[[int], None] | None = None,
) -> dict[str, Timing]:
    """Time each session on its inputs, interleaved, each round in another order (shuffled,
    seeded: a run repeats); stops early (after at least 5 rounds) once `budget_s` is spent.
    `on_round(i)` is called after round i.

    The order changes because a call runs on the caches, branch predictors and clock the call
    before it left: in a fixed order each session always follows the same other one, and on a
    small model that alone made two identical ONNX Runtime graphs differ by 25 %.

    Runtimes with pools of several threads slow the calls after them: ONNX Runtime's workers
    spin on the cores for about 40 ms after its run (measured on a 2-core machine: a core's
    worth of CPU time while the process slept), and a pool parked since its last call takes
    a while to wake. There TVM's 2-thread MLP calls right after ONNX Runtime's took 4-8 ms
    instead of 0.1 ms. So with `settle_s` > 0 each session's turn starts with untimed calls
    for that long (at least one: the other pools go quiet, its own wakes), and then makes
    `block` timed calls back to back: each runtime's steady state, as a server calling it
    sees. (A pause instead of the untimed calls let the machine idle: the calls after it were
    slower, by 2x for ONNX Runtime's MLP at batch 8.)"""
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    for name, session in sessions.items():
        for _ in range(warmup):
            session.run(inputs[name])
    times: dict[str, list[float]] = {name: [] for name in sessions}
    order = list(sessions)
    shuffle = random.Random(0).shuffle
    start = time.perf_counter()
    for i in range(repeat):
        shuffle(order)
        for name in order:
            run, feed = sessions[name].run, inputs[name]
            if settle_s > 0:
                settled = time.perf_counter() + settle_s
                run(feed)
                while time.perf_counter() < settled:
                    run(feed)
            for _ in range(block):
                t0 = time.perf_counter()
                run(feed)
                times[name].append(time.perf_counter() - t0)
        if on_round is not None:
            on_round(i)
        if i >= 4 and time.perf_counter() - start > budget_s:
            break
    return {name: Timing(tuple(ts)) for name, ts in times.items()}


# --- every target side by side: `netc bench` ------------------------------------------------

# `netc bench`'s turns: untimed calls for SETTLE_S, then BLOCK timed calls in a row, per
# contender and round: runtimes with thread pools slow the calls that follow them
# (`side_by_side`)
BLOCK = 3
SETTLE_S = 0.05
# what `netc bench -t` takes: each a target and the options it is compiled with
BENCH_TARGETS: dict[str, tuple[str, dict[str, Any]]] = {
    "onnx": ("onnx", {}),
    "keras": ("keras", {"inference": True}),
    "tf": ("tf", {}),
    "tf-xla": ("tf", {"xla": True}),
    "tvm": ("tvm", {}),
}
# how each is named in the report: the flags a user compiles it with
LABELS = {
    "onnx": "onnx",
    "keras": "keras --inference",
    "tf": "tf",
    "tf-xla": "tf --xla",
    "tvm": "tvm",
}
# the Python package each target runs in, and the extra that brings it
PACKAGES = {
    "onnx": ("onnxruntime", None),
    "keras": ("tensorflow", "tf"),
    "tf": ("tensorflow", "tf"),
    "tf-xla": ("tensorflow", "tf"),
    "tvm": ("tvm", "tvm"),
}


@dataclass(frozen=True)
class Contender:
    """One compiled form of the model that `compare` times: a `BENCH_TARGETS` key, the device
    it runs on ("cpu" or "cuda") and the opt level of its graph; `name` labels it."""

    kind: str
    device: str = "cpu"
    level: int = 2
    name: str = ""

    @property
    def target(self) -> str:
        return BENCH_TARGETS[self.kind][0]

    @property
    def options(self) -> dict[str, Any]:
        return dict(BENCH_TARGETS[self.kind][1])


@dataclass
class Result:
    """What `compare` measured of one contender. `compile_s`: emitting the artifact and
    loading it into its runtime (`cached`: TVM's build cache held the library; `tuned`: with
    the tuning database `netc tune` saved for this build). `memory_mib`:
    how much the process's resident memory grew while compiling it and on its first call at
    each batch size. Per batch size: `first_s` (the first call, XLA's compilation for that
    shape included), `errors` (the largest error against the float64 reference as a fraction
    of the "model" tolerance: <= 1 agrees) and `timings` (steady state, after warm-up)."""

    contender: Contender
    compile_s: float
    cached: bool = False
    tuned: bool = False
    memory_mib: float | None = None
    first_s: dict[int, float] = field(default_factory=dict)
    errors: dict[int, float] = field(default_factory=dict)
    timings: dict[int, Timing] = field(default_factory=dict)


def _installed(package: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def _cuda_runs(kind: str) -> str | None:
    """None when target `kind` can run on the GPU here; otherwise why not."""
    if kind == "onnx":
        from .onnx import cuda_available

        return None if cuda_available() else "ONNX Runtime has no working CUDA provider here"
    if kind == "tvm":
        from .tvm import cuda_available as tvm_cuda

        return None if tvm_cuda() else "the installed TVM has no CUDA runtime"
    from .tf import gpu_available

    return None if gpu_available() else "TensorFlow sees no GPU"


def plan(
    kinds: Sequence[str], device: str = "auto", levels: Sequence[int] = (2,)
) -> tuple[list[Contender], list[str]]:
    """The contenders for `kinds` (BENCH_TARGETS keys) on `device` ("auto": the CPU, and the
    GPU when one is present; "cpu"; "cuda") at each opt level, that this machine can run;
    and a line for each one it cannot (its framework not installed, no GPU for it)."""
    devices = {"auto": ["cpu", "cuda"] if gpu_present() else ["cpu"], "cpu": ["cpu"]}.get(
        device, ["cuda"]
    )
    contenders, skipped = [], []
    for kind in kinds:
        package, extra = PACKAGES[kind]
        if not _installed(package):
            how = f"pip install 'netc[{extra}]'" if extra else f"pip install {package}"
            skipped.append(f"{LABELS[kind]}: skipped, {package} is not installed ({how})")
            continue
        for dev in devices:
            why = _cuda_runs(kind) if dev == "cuda" else None
            if why is not None:
                skipped.append(f"{LABELS[kind]} on cuda: skipped, {why}")
                continue
            for level in levels:
                name = LABELS[kind]
                name += f" -O{level}" if len(levels) > 1 else ""
                name += f" ({dev})" if len(devices) > 1 else ""
                contenders.append(Contender(kind, dev, level, name))
    return contenders, skipped


class _PeakRss:
    """The largest resident set size of this process while the block runs, sampled every
    2 ms by a thread from /proc/self/statm (None where there is no /proc)."""

    def __init__(self) -> None:
        import os

        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self.start: int | None = None
        self.peak: int | None = None

    def _rss(self) -> int | None:
        try:
            with open("/proc/self/statm", "rb") as f:
                return int(f.read().split()[1]) * self._page
        except (OSError, ValueError, IndexError):
            return None

    def __enter__(self) -> _PeakRss:
        import threading

        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        if self.start is not None:
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            rss = self._rss()
            if rss is not None and self.peak is not None and rss > self.peak:
                self.peak = rss

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        rss = self._rss()
        if rss is not None and self.peak is not None:
            self.peak = max(self.peak, rss)

    @property
    def grown_mib(self) -> float | None:
        if self.start is None or self.peak is None:
            return None
        return (self.peak - self.start) / 2**20


def _import_framework(kind: str) -> None:
    """Import the target's framework before anything is measured: its import is not the
    target's compile time or memory."""
    from netc import backends

    if PACKAGES[kind][0] == "tensorflow":
        backends.tensorflow(LABELS[kind])
    elif kind == "tvm":
        backends.tvm("tvm")
    else:
        import onnxruntime  # noqa: F401


def _session(
    model: Any,
    contender: Contender,
    weights: Mapping[str, np.ndarray],
    dims: Mapping[str, int] | None,
    threads: int | None,
    ort_opt: str | None,
) -> tuple[Session, bool, bool]:
    """The contender's session, compiled in memory as `netc.runtime.load` does it; whether
    TVM's build cache already held its library, and whether a tuning database applied."""
    from netc import driver

    from .api import load

    options = contender.options
    if contender.target == "tvm":
        options["tvm_target"] = "cuda" if contender.device == "cuda" else None
        options["dims"] = dims or None
    artifact = driver.emit(
        model, contender.target, weights=weights, level=contender.level, **options
    )
    cached = tuned = False
    if contender.target == "tvm":
        from netc.backends import to_tvm, tvm_tune
        from netc.backends.tvm_build import _tuned_key

        # the library applies the database `netc tune` saved for this build, if any
        database = tvm_tune.saved_database(artifact)
        tuned = database is not None
        key = artifact.key if database is None else _tuned_key(artifact.key, database)
        cached = (to_tvm.cache_dir() / key[:40] / to_tvm.INFO).is_file()
    extra: dict[str, Any] = {}
    if contender.target in ("onnx", "tvm"):
        extra["threads"] = threads
    if contender.target == "onnx" and ort_opt is not None:
        extra["graph_optimization"] = ort_opt
    return load(artifact, device=contender.device, **extra), cached, tuned


def batch_symbols(signature: Sequence[Signature]) -> set[str]:
    """The symbols `random_inputs` binds to the batch size: each input's symbolic first dim."""
    return {s.shape[0] for s in signature if s.shape and isinstance(s.shape[0], str)}


def check_dims(signature: Sequence[Signature], dims: Mapping[str, int]) -> None:
    """A NetcError for a --dim naming the batch or a symbol no input has."""
    from netc.source import error

    batch = batch_symbols(signature)
    known = {d for s in signature for d in s.shape if isinstance(d, str)} - batch
    for name in dims:
        if name in batch:
            raise error(f"--dim {name}: `{name}` is the batch size here", hint="use --batch")
        if name not in known:
            listed = ", ".join(sorted(known)) or "no symbol besides the batch"
            raise error(f"--dim {name}: the model's inputs have no symbol `{name}` ({listed})")


def _rounds(told: Callable[[str, int], None], what: str) -> Callable[[int], None]:
    """`side_by_side`'s on_round: one progress step a round."""
    return lambda i: told(what, 1)


def steps(contenders: int, batches: int, repeat: int) -> int:
    """How many steps `compare` reports to `progress`: one per compile, per first call, per
    timing round."""
    return contenders * (1 + batches) + batches * repeat


def compare(
    model: Any,
    contenders: Sequence[Contender],
    batches: Sequence[int] = (1,),
    *,
    weights: Any = None,
    seed: int = 0,
    dims: Mapping[str, int] | None = None,
    warmup: int = 3,
    repeat: int = 30,
    budget_s: float = 20.0,
    threads: int | None = None,
    ort_opt: str | None = None,
    progress: Callable[[str, int], None] | None = None,
    skipped: list[str] | None = None,
) -> list[Result]:
    """Compile `model` (a netc.Model) for each contender, check every one's outputs against
    the float64 reference at each batch size (a NetcError names the first that differs: a
    fast wrong answer is no answer), then time them all, interleaved round by round, at each
    batch size (`warmup` calls, then up to `repeat` rounds or `budget_s` seconds a batch; in
    a round each contender makes untimed calls for `SETTLE_S` and then `BLOCK` timed ones:
    `side_by_side`).
    `weights`: a path or dict; default randomized (every bias and statistic drawn, as
    `netc verify` does). `dims` fixes non-batch symbols of the inputs (and TVM's library).
    A contender whose backend cannot lower the model is left out with a line in `skipped`.
    `progress(what, steps)` is told what runs, `steps(...)` steps in all."""
    from netc import driver
    from netc.source import NetcError, error
    from netc.weights import randomized_weights

    from . import reference
    from .api import graph_signature
    from .tolerance import elementwise, mismatch, tolerance

    def told(what: str, n: int = 1) -> None:
        if progress is not None:
            progress(what, n)

    graph = model.graph
    signature = graph_signature(graph)[0]
    check_dims(signature, dims or {})
    if weights is None:
        values = randomized_weights(graph, seed)
    else:
        values = driver.model_weights(model, weights, seed)
    feeds = {b: random_inputs(signature, b, dims, seed) for b in batches}
    wants = {}
    for b in batches:
        told(f"reference, batch {b}", 0)
        ref = reference.run(graph, feeds[b], values, wide=True)
        wants[b] = [np.asarray(ref[out]) for out, _ in graph.outputs]

    sessions: dict[str, Session] = {}
    results: list[Result] = []
    for c in contenders:
        _import_framework(c.kind)
        told(f"compiling {c.name}", 0)
        with _PeakRss() as memory:
            start = time.perf_counter()
            try:
                session, cached, tuned = _session(model, c, values, dims, threads, ort_opt)
            except NetcError as e:
                if skipped is not None:
                    skipped.append(f"{c.name}: skipped, {e.diagnostics[0].message}")
                told(c.name, 1 + len(batches))
                continue
            if tuned:
                c = replace(c, name=c.name.replace("tvm", "tvm (tuned)", 1))
            result = Result(c, time.perf_counter() - start, cached, tuned)
            told(c.name)
            for b in batches:
                told(f"{c.name}: first call, batch {b}", 0)
                start = time.perf_counter()
                got = session.run(feeds[b])
                result.first_s[b] = time.perf_counter() - start
                worst = 0.0
                for (out, _), want in zip(graph.outputs, wants[b], strict=True):
                    g = np.asarray(got[out])
                    found = (
                        f"shape {list(g.shape)}, want {list(want.shape)}"
                        if g.shape != want.shape
                        else mismatch(g, want, scope="model", device=c.device)
                    )
                    if found is not None:
                        raise error(
                            f"`{c.name}` does not agree with the reference on output `{out}` "
                            f"at batch {b}: {found}",
                            hint=f"a fast wrong answer is no answer: `netc verify MODEL.net "
                            f"-t {c.target}` points at the first value that differs",
                        )
                    if want.dtype.kind == "f" and want.size:
                        rtol, atol = tolerance(want.dtype.name, "model", c.device)
                        err, bound, _ = elementwise(g, want, rtol, atol)
                        with np.errstate(all="ignore"):
                            share = np.where(err == 0, 0.0, err / np.maximum(bound, 1e-300))
                        worst = max(worst, float(share.max()))
                result.errors[b] = worst
                told(c.name)
        result.memory_mib = memory.grown_mib
        sessions[c.name] = session
        results.append(result)

    for b in batches:
        told(f"timing batch {b}", 0)
        timings = side_by_side(
            sessions,
            {name: feeds[b] for name in sessions},
            warmup=warmup,
            repeat=repeat,
            budget_s=budget_s,
            block=BLOCK,
            settle_s=SETTLE_S,
            on_round=_rounds(told, f"timing batch {b}"),
        )
        rounds = len(next(iter(timings.values())).times) // BLOCK if timings else 0
        told(f"timing batch {b}", repeat - rounds)
        for r in results:
            r.timings[b] = timings[r.contender.name]
    return results


def time_artifact(
    path: str,
    batches: Sequence[int] = (1,),
    *,
    device: str = "auto",
    threads: int | None = None,
    ort_opt: str | None = None,
    dims: Mapping[str, int] | None = None,
    seed: int = 0,
    warmup: int = 3,
    repeat: int = 30,
    budget_s: float = 20.0,
    progress: Callable[[str, int], None] | None = None,
) -> list[Result]:
    """`compare` for one artifact (.onnx, .keras, .savedmodel, .tvm) alone: loaded, then timed
    at each batch size; nothing to check it against."""
    from pathlib import Path

    from .api import artifact_target, load

    def told(what: str, n: int = 1) -> None:
        if progress is not None:
            progress(what, n)

    target = artifact_target(path)
    kind = {"keras": "keras", "tf": "tf"}.get(target, target)
    _import_framework(kind)
    extra: dict[str, Any] = {}
    if target in ("onnx", "tvm"):
        extra["threads"] = threads
    if target == "onnx" and ort_opt is not None:
        extra["graph_optimization"] = ort_opt
    with _PeakRss() as memory:
        start = time.perf_counter()
        session = load(path, device=device, **extra)
        contender = Contender(kind, getattr(session, "device", "cpu"), 2, Path(path).name)
        result = Result(contender, time.perf_counter() - start)
        told(contender.name)
        check_dims(session.inputs, dims or {})
        feeds = {b: random_inputs(session.inputs, b, dims, seed) for b in batches}
        for b in batches:
            start = time.perf_counter()
            session.run(feeds[b])
            result.first_s[b] = time.perf_counter() - start
            told(contender.name)
    result.memory_mib = memory.grown_mib
    for b in batches:
        timing = side_by_side(
            {contender.name: session},
            {contender.name: feeds[b]},
            warmup=warmup,
            repeat=repeat,
            budget_s=budget_s,
            on_round=_rounds(told, f"timing batch {b}"),
        )[contender.name]
        told(f"timing batch {b}", repeat - len(timing.times))
        result.timings[b] = timing
    return [result]
