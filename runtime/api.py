"""The runtime's one interface: `load` an artifact, get a `Session`, `run` named numpy arrays.

Only the ONNX Runtime backend exists so far; it is imported when a session is made, never by
`import netc`. Inputs are validated against the model's signature before a backend sees them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from netc.ir import DTYPES, Dim
from netc.source import error

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Signature:
    """A named input or output: its netc dtype and shape (a str is a symbol, None unknown)."""

    name: str
    dtype: str
    shape: tuple[Dim | None, ...]

    def __str__(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.dtype}[{dims}]"


class Session(Protocol):
    """A loaded model: its signatures, and `run` from named inputs to named outputs."""

    inputs: tuple[Signature, ...]
    outputs: tuple[Signature, ...]

    def run(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]: ...


def check_feed(
    model: str, signature: tuple[Signature, ...], inputs: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """The inputs as arrays, checked against `signature` (names, dtypes, shapes, one size per
    symbol); a NetcError lists every problem."""
    problems: list[str] = []
    symbols: dict[str, int] = {}
    out: dict[str, np.ndarray] = {}
    for sig in signature:
        if sig.name not in inputs:
            problems.append(f"missing input `{sig.name}` {sig}")
            continue
        a = np.asarray(inputs[sig.name])
        out[sig.name] = a
        if DTYPES.get(sig.dtype) != a.dtype.name and not (
            sig.dtype == "bf16" and a.dtype.name == "float32"
        ):
            problems.append(f"input `{sig.name}` has dtype {a.dtype}, the model needs {sig}")
        if a.ndim != len(sig.shape):
            problems.append(f"input `{sig.name}` has shape {list(a.shape)}, the model needs {sig}")
            continue
        for axis, (d, n) in enumerate(zip(sig.shape, a.shape, strict=True)):
            if isinstance(d, int) and d != n:
                problems.append(
                    f"input `{sig.name}` has shape {list(a.shape)}, the model needs "
                    f"{sig} (axis {axis} must be {d})"
                )
            elif isinstance(d, str) and "*" not in d and symbols.setdefault(d, n) != n:
                problems.append(
                    f"input `{sig.name}` axis {axis} is {n}, but {d} = {symbols[d]} "
                    f"from another input"
                )
    names = [s.name for s in signature]
    for name in inputs:
        if name not in names:
            problems.append(f"unexpected input `{name}`; the model takes {', '.join(names)}")
    if problems:
        raise error(f"the inputs do not fit model `{model}`", notes=problems)
    return out


def load(
    source: Any,
    *,
    device: str = "auto",
    threads: int | None = None,
    inter_op_threads: int | None = None,
    weights: Any = None,
    seed: int = 0,
    io_layout: str = "channels-last",
    level: int = 2,
    graph_optimization: str = "all",
) -> Session:
    """A session for `source`: a `.onnx` path or `onnx.ModelProto`, or a `.net` path or
    compiled `netc.Model` (emitted to ONNX with `weights`: a path, a dict, or None for the
    seeded initial weights) after the optimizer's passes of opt `level`. `device` is "auto"
    (CUDA when a GPU is present), "cpu" or "cuda"; `threads`/`inter_op_threads` set ONNX
    Runtime's intra-/inter-op thread counts; `graph_optimization` is ONNX Runtime's own
    optimizer level: "disable", "basic", "extended" or "all" (its default)."""
    from . import onnx as ort_backend

    if device not in DEVICES:
        raise error(f"unknown device `{device}`", hint='use "auto", "cpu" or "cuda"')
    model, name = _as_onnx(source, weights, seed, io_layout, level)
    return ort_backend.OnnxSession(
        model,
        name=name,
        device=device,
        threads=threads,
        inter_op_threads=inter_op_threads,
        graph_optimization=graph_optimization,
    )


def _as_onnx(source: Any, weights: Any, seed: int, io_layout: str, level: int) -> tuple[Any, str]:
    """(onnx.ModelProto, a name for messages) for any source `load` accepts."""
    from netc import Model, driver

    from . import onnx as ort_backend

    if isinstance(source, (str, Path)) and Path(source).suffix != ".net":
        model = ort_backend.read_model(source)
        return model, model.graph.name or Path(source).stem
    if isinstance(source, (str, Path)):
        import netc

        source = netc.compile(Path(source))
    if isinstance(source, Model):
        artifact = driver.emit(
            source, "onnx", weights=weights, seed=seed, level=level, io_layout=io_layout
        )
        return artifact, source.graph.name
    if type(source).__name__ == "ModelProto":
        return source, source.graph.name or "model"
    raise TypeError(
        f"cannot load a {type(source).__name__}: pass a .onnx or .net path, "
        f"an onnx.ModelProto or a netc.Model"
    )


def read_inputs(path: str | Path, session: Session) -> dict[str, np.ndarray]:
    """Inputs from `.npz` (arrays by input name) or `.npy` (the one input of a one-input
    model); never unpickles."""
    p = Path(path)
    try:
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        if p.suffix == ".npy":
            if len(session.inputs) != 1:
                raise error(
                    f"{p} holds one array, the model takes {len(session.inputs)} inputs "
                    f"({', '.join(s.name for s in session.inputs)})",
                    hint="pass a .npz with one array per input name",
                )
            return {session.inputs[0].name: np.load(p, allow_pickle=False)}
    except FileNotFoundError:
        raise error(f"no such input file: {p}") from None
    except (OSError, ValueError) as e:
        raise error(f"cannot read inputs from {p}: {e}") from None
    raise error(f"unknown input format `{p.suffix}` for {p}", hint="use .npz or .npy")


def write_outputs(outputs: Mapping[str, np.ndarray], path: str | Path) -> None:
    """Write outputs to `.npz` by name, atomically (a temporary, then a rename)."""
    from netc.files import atomic_write

    p = Path(path)
    if p.suffix != ".npz":
        raise error(f"unknown output format `{p.suffix}` for {p}", hint="use .npz")

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **{k: np.ascontiguousarray(v) for k, v in outputs.items()})  # type: ignore[arg-type]

    atomic_write(p, write)
