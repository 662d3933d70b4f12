"""Benchmarking on the runtime: random inputs for a signature, and latencies measured side by
side (round-robin, so that a drifting machine slows every contender alike). `netc bench` and
the benchmark scripts in bench/ are built on it. Timings never appear in tests."""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from netc.ir import numpy_dtype

from .api import Session, Signature

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
) -> dict[str, Timing]:
    """Time each session on its inputs, interleaved run by run; stops early (after at least
    5 rounds) once `budget_s` is spent."""
    for name, session in sessions.items():
        for _ in range(warmup):
            session.run(inputs[name])
    times: dict[str, list[float]] = {name: [] for name in sessions}
    start = time.perf_counter()
    for i in range(repeat):
        for name, session in sessions.items():
            t0 = time.perf_counter()
            session.run(inputs[name])
            times[name].append(time.perf_counter() - t0)
        if i >= 4 and time.perf_counter() - start > budget_s:
            break
    return {name: Timing(tuple(ts)) for name, ts in times.items()}
