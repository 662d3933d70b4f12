"""The runtime's one interface: `load` an artifact, get a `Session`, `run` named numpy arrays.

One module per backend behind `load` (onnx.py: ONNX Runtime; keras.py: a Keras model; tf.py:
a SavedModel; tvm.py: a TVM library in the Relax VM), each imported when a session is made,
never by `import netc`. Every backend and the numpy reference check their inputs with the one
`check_feed` before computing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from netc.ir import DTYPES, Dim, Graph
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


def graph_signature(graph: Graph) -> tuple[tuple[Signature, ...], tuple[Signature, ...]]:
    """The (inputs, outputs) signatures of an IR graph."""

    def sig(name: str, value: str) -> Signature:
        t = graph[value].tensor_type
        return Signature(name, t.dtype, tuple(t.shape))

    return tuple(sig(i, i) for i in graph.inputs), tuple(sig(o, v) for o, v in graph.outputs)


def check_feed(
    model: str,
    signature: tuple[Signature, ...],
    inputs: Mapping[str, Any],
    symbols: dict[str, int] | None = None,
) -> dict[str, np.ndarray]:
    """The inputs as arrays, checked against `signature` (names, dtypes, shapes, one size per
    symbol); a NetcError lists every problem. `symbols`, a dict, receives each symbol's size."""
    problems: list[str] = []
    symbols = {} if symbols is None else symbols
    out: dict[str, np.ndarray] = {}
    casts: list[str] = []
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
            # numpy's default dtypes (int64 ids, float64 arrays) are the usual cause
            numpy_name = "float32" if sig.dtype == "bf16" else DTYPES.get(sig.dtype)
            casts.append(f"`{sig.name}.astype(np.{numpy_name})`")
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
        hint = f"cast with {', '.join(casts)}" if casts else None
        raise error(f"the inputs do not fit model `{model}`", notes=problems, hint=hint)
    return out


def load(
    source: Any,
    *,
    target: str | None = None,
    device: str = "auto",
    threads: int | None = None,
    inter_op_threads: int | None = None,
    weights: Any = None,
    seed: int = 0,
    level: int = 2,
    io_layout: str | None = None,
    graph_optimization: str | None = None,
    inference: bool = False,
    xla: bool = False,
    tvm_target: Any = None,
    dims: Mapping[str, int] | None = None,
) -> Session:
    """A session for `source`: an artifact (a `.onnx` file or `onnx.ModelProto`, a `.keras`
    file or `keras.Model`, a `.savedmodel` folder, a `.tvm` folder or `to_tvm.Artifact`), or a
    `.net` path or compiled `netc.Model` compiled for `target` ("onnx" by default, "keras",
    "tf" or "tvm") with `weights` (a path, a dict, or None for the seeded initial weights)
    after the passes of opt `level`.

    `device` is "auto" (the GPU when one is present), "cpu" or "cuda". `threads`: ONNX
    Runtime's intra-op thread count, or TVM's thread pool size (by default both the physical
    cores the process may use). ONNX Runtime only:
    `inter_op_threads` and `graph_optimization`, its own optimizer level ("disable", "basic",
    "extended" or "all"; by default "all", or "disable" for a `.ort` file or a model holding
    the optimized graph netc saved, which run on the CPU). `io_layout` ("channels-last" or
    "channels-first") is the emitted ONNX model's image layout, `inference` asks for the Keras
    prediction model, `xla` jit-compiles the TF function, `tvm_target` and `dims` are the TVM
    target and the symbolic dims fixed at compile time (docs/tvm.md)."""
    from netc import Model, driver

    if device not in DEVICES:
        raise error(f"unknown device `{device}`", hint='use "auto", "cpu" or "cuda"')
    if isinstance(source, (str, Path)) and Path(source).suffix != ".net":
        kind = artifact_target(source)
        if target is not None and target != kind:
            raise error(f"{source} is a {kind} artifact, not a {target} one")
        target = kind
    elif isinstance(source, (str, Path)):
        import netc

        source = netc.compile(Path(source))
    elif not isinstance(source, Model):
        target = _object_target(source)
    target = target or "onnx"
    name = source.graph.name if isinstance(source, Model) else _name(source)
    if isinstance(source, Model):
        source = driver.emit(
            source,
            target,
            weights=weights,
            seed=seed,
            level=level,
            io_layout=io_layout,
            inference=inference,
            xla=xla,
            tvm_target=tvm_target,
            dims=dims,
        )
    else:
        options = {
            "io_layout": io_layout,
            "inference": inference,
            "xla": xla,
            "tvm_target": tvm_target,
            "dims": dims or None,
        }
        driver.target_options(target, options)
        options["weights"] = weights is not None
        given = [k for k, v in options.items() if v]
        if given:  # an artifact is compiled already: these would be silently ignored
            are = "is a compile option" if len(given) == 1 else "are compile options"
            raise error(
                f"{', '.join(given)} {are}, and {_describe(source)} is compiled already",
                hint="load the .net source with them, or recompile the artifact with them",
            )
    if target == "onnx":
        from . import onnx as ort_backend

        if isinstance(source, (str, Path)) and Path(source).suffix == ".ort":
            if not Path(source).is_file():
                raise error(f"no such model file: {source}")
        elif isinstance(source, (str, Path)):
            source = ort_backend.read_model(source)
            name = source.graph.name or name
        return ort_backend.OnnxSession(
            source,
            name=name,
            device=device,
            threads=threads,
            inter_op_threads=inter_op_threads,
            graph_optimization=graph_optimization,
        )
    if target == "tvm":
        if inter_op_threads is not None or graph_optimization not in (None, "all"):
            raise error("inter_op_threads and graph_optimization are ONNX Runtime's, not tvm's")
        from . import tvm as tvm_backend

        return tvm_backend.TvmSession(source, name=name, device=device, threads=threads)
    if (
        threads is not None
        or inter_op_threads is not None
        or graph_optimization not in (None, "all")
    ):
        raise error(f"thread counts and graph_optimization are ONNX Runtime's, not {target}'s")
    if target == "keras":
        from . import keras as keras_backend

        return keras_backend.KerasSession(source, name=name, device=device)
    from . import tf as tf_backend

    return tf_backend.TfSession(source, name=name, device=device)


def artifact_target(path: str | Path) -> str:
    """The target whose artifact `path` is, by its suffix (a SavedModel is a folder)."""
    p = Path(path)
    if p.suffix in (".onnx", ".ort"):  # .ort: ONNX Runtime's own format (docs/onnx.md)
        return "onnx"
    if p.suffix == ".keras":
        return "keras"
    if p.suffix == ".savedmodel" or (p / "saved_model.pb").is_file():
        return "tf"
    if p.suffix == ".tvm" or (p / "netc.json").is_file():
        return "tvm"
    raise error(
        f"cannot tell what {p} holds from its name",
        hint="netc runs .net sources and the .onnx, .keras, .savedmodel and .tvm artifacts it "
        "writes",
    )


def _object_target(source: Any) -> str:
    """The target of an in-memory artifact: a ModelProto, a keras.Model, a to_tf.Artifact or a
    to_tvm.Artifact."""
    kind = type(source).__name__
    if kind == "ModelProto":
        return "onnx"
    if any(c.__module__.startswith("keras") and c.__name__ == "Model" for c in type(source).mro()):
        return "keras"
    if kind == "Artifact" and type(source).__module__.endswith("to_tf"):
        return "tf"
    if kind == "Artifact" and type(source).__module__.endswith("to_tvm"):
        return "tvm"
    raise TypeError(
        f"cannot load a {kind}: pass a .net, .onnx, .keras, .savedmodel or .tvm path, a "
        f"netc.Model, an onnx.ModelProto, a keras.Model or a netc TF or TVM artifact"
    )


def _name(source: Any) -> str:
    """A name for messages: the file's stem, or the model's own name."""
    if isinstance(source, (str, Path)):
        return Path(source).stem
    if type(source).__name__ == "ModelProto":
        return source.graph.name or "model"
    return str(getattr(source, "name", None) or "model")


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


def _describe(source: Any) -> str:
    """An artifact as messages name it: its path, or the kind of object."""
    return str(source) if isinstance(source, (str, Path)) else f"this {type(source).__name__}"
