"""The TVM backend: a checked IR graph and its weights -> a Relax module built directly from the
IR (Relax ops, TE for what Relax lacks, TIR for the recurrences), compiled by netc's own Relax
pipeline into a shared library that the Relax VM runs.

One rule per IR op in `RULES`. Every kernel runs channels-last (NWC, NHWC, NDHWC, with Keras'
kernel layouts WIO, HWIO, DHWIO): the IR's own layout, so no transpose appears anywhere and
weights are bound unchanged as constants (docs/tvm.md, "Layout"). Symbolic dims are Relax
symbolic shape variables: one library runs at every batch size; `dims` fixes some at compile
time. `pipeline` is what netc runs (legalize, fold constants, fuse ops and TIR), `schedule` the
one place where schedules are applied, `build` the compile, `library` the cached build.
TVM is imported lazily (`backends.tvm()`), never by `import netc`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, no_type_check

import numpy as np

from ..files import atomic_write_dir
from ..ir import DTYPES, Dim, Graph, Node, TensorType, numpy_dtype, print_graph
from ..source import error
from ..weights import check_weights
from . import Rules, tvm

RULES = Rules("tvm")
FORMAT = 1  # the layout of an artifact folder's netc.json
LIBRARY = "model.so"  # the compiled module in an artifact folder (and in a cache entry)
INFO = "netc.json"  # its signature and build settings
LAYOUT = "NHWC"  # channels-last kernels on every target (docs/tvm.md, "Layout")
GPU_KINDS = ("cuda", "rocm", "metal", "vulkan", "opencl")
HALF = ("f16",)
IOSpec = tuple[str, str, tuple[Dim, ...]]  # (name, netc dtype, shape with symbols)
Key = tuple[str, int | None]  # an IR value (and result index of a multi-result op)
SPATIAL = {1: ("NWC", "WIO"), 2: ("NHWC", "HWIO"), 3: ("NDHWC", "DHWIO")}

# --- targets ---------------------------------------------------------------------------------


# LLVM's optimization level for the default target. TVM's default is 3; on the legalized,
# unscheduled kernels netc builds today, level 0 compiles 4-8x faster (ResNet-18: 1.7 s against
# 13 s) and they run as fast (the same time a sample, within a shared machine's noise, on each
# example tried), so the default is 0. Scheduled (vectorized, parallel) kernels are where
# level 3 earns its time: default schedules or a tuning database should raise it
# (docs/tvm.md, "Targets").
DEFAULT_LLVM_OPT_LEVEL = 0


def host_target() -> dict[str, Any]:
    """This machine's CPU as a TVM target: LLVM with the host's own instruction set, at netc's
    default LLVM optimization level (`DEFAULT_LLVM_OPT_LEVEL`)."""
    cpu = tvm().target.codegen.llvm_get_system_cpu()
    return {"kind": "llvm", "mcpu": cpu, "opt-level": DEFAULT_LLVM_OPT_LEVEL}


def target_spec(text: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """A TVM target as a dict: None is the host CPU; a dict, a JSON object, a kind name
    ("llvm", "cuda") or TVM's older command-line form ("llvm -mcpu=skylake-avx512")."""
    if text is None or text == "host":
        return host_target()
    if isinstance(text, Mapping):
        return dict(text)
    text = text.strip()
    if text.startswith("{"):
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as e:
            raise error(f"--tvm-target is not valid JSON: {e.msg} at column {e.colno}") from None
        if not isinstance(spec, dict) or "kind" not in spec:
            raise error('--tvm-target needs a JSON object with a "kind"', hint=_TARGET_HINT)
        return spec
    kind, *flags = text.split()
    spec = {"kind": kind}
    for flag in flags:  # "-mcpu=x", "-num-cores=4", "-mattr=+avx2,+fma"
        name, eq, value = flag.lstrip("-").partition("=")
        if not eq or not flag.startswith("-"):
            raise error(f"--tvm-target: cannot read `{flag}`", hint=_TARGET_HINT)
        spec[name] = (
            int(value) if value.isdigit() else value.split(",") if name == "mattr" else value
        )
    return spec


_TARGET_HINT = (
    'give a kind ("llvm", "cuda") or a JSON object such as '
    '\'{"kind": "llvm", "mcpu": "skylake-avx512"}\''
)


def make_target(spec: Mapping[str, Any]) -> Any:
    """The `tvm.target.Target` of `spec`; a NetcError when TVM refuses it or when it needs a
    GPU runtime the installed TVM lacks (the PyPI wheel has LLVM only)."""
    t = tvm()
    kind = str(spec.get("kind", ""))
    if kind in GPU_KINDS and not t.runtime.enabled(kind):
        raise no_gpu(f"the tvm target `{kind}`", kind)
    try:
        return t.target.Target(dict(spec))
    except (ValueError, RuntimeError, TypeError) as e:
        raise error(f"TVM refuses the target {json.dumps(dict(spec))}: {_first_line(e)}") from None


def no_gpu(what: str, kind: str = "cuda") -> Exception:
    """The error for a GPU (of TVM target kind `kind`) the installed TVM cannot compile for
    or run on."""
    runtime = {"cuda": "CUDA", "rocm": "ROCm", "metal": "Metal"}.get(kind, kind.capitalize())
    return error(
        f"{what} needs a TVM built with {runtime}; the installed apache-tvm "
        f"{tvm().__version__} has no {runtime} (the PyPI wheel is built for CPUs, with LLVM "
        "only)",
        hint=f"build TVM from source with USE_{kind.upper()}=ON (and USE_LLVM) and install its "
        "Python package in place of apache-tvm, or run on the CPU (the default target)",
    )


# --- the artifact ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """A Relax function of the module: its input and output signatures, by name."""

    inputs: tuple[IOSpec, ...]
    outputs: tuple[IOSpec, ...]


@dataclass
class Artifact:
    """A netc model lowered to Relax: `module` (the IRModule netc built, before any pass;
    `--emit relax` prints it), its functions' signatures (`entries`, "main" for a model), the
    TVM target it compiles for, the symbolic dims fixed at compile time, and `key`, the digest
    of everything the compiled library depends on (its cache entry)."""

    name: str
    module: Any
    entries: dict[str, Entry]
    target: dict[str, Any]
    key: str
    dims: dict[str, int] = field(default_factory=dict)

    @property
    def inputs(self) -> tuple[IOSpec, ...]:
        return self.entries["main"].inputs

    @property
    def outputs(self) -> tuple[IOSpec, ...]:
        return self.entries["main"].outputs

    def script(self) -> str:
        """The Relax module as TVMScript (weights elided as metadata)."""
        return str(self.module.script())

    def info(self) -> dict[str, Any]:
        """What an artifact folder's netc.json holds."""
        from .. import __version__

        def specs(items: Sequence[IOSpec]) -> list[dict[str, Any]]:
            return [{"name": n, "dtype": d, "shape": list(s)} for n, d, s in items]

        return {
            "format": FORMAT,
            "producer": f"netc {__version__}",
            "tvm": tvm().__version__,
            "model": self.name,
            "target": self.target,
            "layout": LAYOUT,
            "dims": self.dims,
            "key": self.key,
            "functions": {
                name: {"inputs": specs(e.inputs), "outputs": specs(e.outputs)}
                for name, e in self.entries.items()
            },
        }

    def __repr__(self) -> str:
        return f"<netc tvm artifact `{self.name}` for {json.dumps(self.target)}>"


def emit(
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    *,
    tvm_target: str | Mapping[str, Any] | None = None,
    dims: Mapping[str, int] | None = None,
) -> Artifact:
    """Lower `graph` with `weights` (bound as constants) to a Relax module for `tvm_target`
    (`target_spec`; default the host CPU), with the symbolic dims in `dims` fixed. Every node
    is lowered now, so one TVM cannot express is a located error here; compiling waits for
    `library` (or `save`, or a session)."""
    return emit_functions({"main": (graph, weights)}, tvm_target=tvm_target, dims=dims)


def emit_functions(
    graphs: Mapping[str, tuple[Graph, Mapping[str, np.ndarray]]],
    *,
    tvm_target: str | Mapping[str, Any] | None = None,
    dims: Mapping[str, int] | None = None,
    exposed: Mapping[str, Sequence[Key]] | None = None,
) -> Artifact:
    """`emit` for several graphs, each one Relax function of one module named by its key
    (built and loaded once: the conformance suite runs its cases so). `exposed` makes a
    function return the listed IR values instead of the graph's outputs, named `value_key`."""
    import tvm_ffi  # TVM's own dependency: its structural hash

    t = tvm()
    spec = target_spec(tvm_target)
    target = make_target(spec)
    bb = t.relax.BlockBuilder()
    entries: dict[str, Entry] = {}
    digest = hashlib.sha256()
    for fname, (graph, values) in graphs.items():
        values = check_weights(graph, values)
        fixed = _check_dims(graph, dims or {})
        expose = exposed.get(fname) if exposed else None
        entries[fname] = _lower(t, bb, fname, graph, values, fixed, expose)
        digest.update(_graph_digest(graph, values, fixed, expose).encode())
    module = bb.get()
    # the IR's digest, and the Relax module's own structural hash (its constants included)
    digest.update(str(tvm_ffi.structural_hash(module)).encode())
    name = next(iter(graphs.values()))[0].name if len(graphs) == 1 else "netc"
    key = _key(digest.hexdigest(), str(target), len(graphs))
    return Artifact(name, module, entries, spec, key, dict(dims or {}))


def value_key(key: Key) -> str:
    """The output name of an exposed IR value: its name, `name:i` for result i of a tuple."""
    return key[0] if key[1] is None else f"{key[0]}:{key[1]}"


def _check_dims(graph: Graph, dims: Mapping[str, int]) -> dict[str, int]:
    """`dims` checked against the graph's symbols: each names a symbol of an input, with a
    size >= 1."""
    symbols = {
        d for name in graph.inputs for d in graph[name].tensor_type.shape if isinstance(d, str)
    }
    for name, size in dims.items():
        if name not in symbols:
            known = ", ".join(sorted(symbols)) or "none"
            raise error(
                f"--dim {name}={size}: model `{graph.name}` has no symbolic dim `{name}` "
                f"(its symbols: {known})"
            )
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise error(f"--dim {name}={size}: a dim needs a size >= 1")
    return dict(dims)


def _graph_digest(
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    dims: Mapping[str, int],
    expose: Sequence[Key] | None,
) -> str:
    """A digest of what a function computes: the IR (without source locations), every weight
    and folded constant, the fixed dims and the exposed values."""
    h = hashlib.sha256(print_graph(graph, locations=False).encode())
    for node in graph.nodes:
        if node.op in ("param", "constant"):
            value = weights[node.name] if node.op == "param" else node.attrs["value"].array
            a = np.ascontiguousarray(value)
            h.update(f"{node.name}:{a.dtype}:{a.shape}".encode())
            h.update(a.tobytes())
    h.update(json.dumps(sorted(dims.items())).encode())
    h.update(json.dumps([list(k) for k in expose] if expose is not None else None).encode())
    return h.hexdigest()


def _key(graphs: str, target: str, count: int) -> str:
    """The cache key of a build: the graphs' digest, the target, TVM's version and this
    module's own source (a change to a rule or to the pipeline is a new build)."""
    from .. import __version__

    h = hashlib.sha256()
    for part in (
        f"netc {__version__} format {FORMAT} functions {count}",
        tvm().__version__,
        target,
        LAYOUT,
        graphs,
        hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
    ):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


# --- the pipeline ----------------------------------------------------------------------------


def pipeline(target: Any) -> list[Any]:
    """The Relax passes netc runs before the build, in order (tvm.compile on a CPU target runs
    none of them: its kernels would be unfused, with every weight transform left at run time)."""
    relax = tvm().relax
    return [
        relax.transform.CanonicalizeBindings(),  # the aliases rules leave (dropout, identities)
        relax.transform.LegalizeOps(),  # every Relax op -> a TIR PrimFunc (topi)
        relax.transform.AnnotateTIROpPattern(),  # elementwise, injective, reduction, opaque
        relax.transform.FoldConstant(),  # weight reshapes and flips run now, not per call
        relax.transform.FuseOps(),  # conv/matmul + bias + activation (+ residual): one group
        relax.transform.FuseTIR(),  # ... and one PrimFunc per group
        relax.transform.DeadCodeElimination(),  # the PrimFuncs fusion replaced
    ]


def optimize(module: Any, target: Any) -> Any:
    """`module` after netc's pipeline (`pipeline`) for `target`: fused, folded, legalized."""
    t = tvm()
    with t.target.Target(target) if not isinstance(target, t.target.Target) else target:
        return t.transform.Sequential(pipeline(target))(module)


def schedule(module: Any, target: Any, database: Any = None) -> Any:
    """Where schedules are applied to the fused PrimFuncs: the tuned ones a MetaSchedule
    `database` holds (`tvm.s_tir.meta_schedule.Database`). Without one the kernels keep
    TVM's legalized loop nests, unscheduled (docs/tvm.md, "Performance")."""
    if database is None:
        return module
    t = tvm()
    with target, database:
        return t.relax.transform.MetaScheduleApplyDatabase(enable_warning=False)(module)


def build(module: Any, target: Any, database: Any = None) -> Any:
    """Compile a Relax module for `target`: netc's pipeline, the schedules (`schedule`), then
    TVM's lowering to the VM and LLVM (`relax.build`); returns the `relax.Executable`."""
    t = tvm()
    target = target if isinstance(target, t.target.Target) else make_target(target)
    module = schedule(optimize(module, target), target, database)
    with target:  # TVM's own lowering to the VM: memory planning, shape functions, ...
        module = t.relax.get_pipeline("default")(module)
    return t.relax.build(_ordered_shape_functions(module), target, relax_pipeline=None)


_SLOT = re.compile(r"\[T\.int64\((\d+)\)\]")


def _ordered_shape_functions(module: Any) -> Any:
    """`module` with the stores of each shape function (the host code computing symbolic
    shapes into the VM's shape heap) in slot order. TVM emits them in the order of a pointer-
    keyed map, which changes from process to process, and with it the library's bytes; they
    are independent (each computes one slot from the slots of the symbolic variables, which
    the VM fills), and a function where one reads another's slot is left as it is."""
    tirx = tvm().tirx
    for gv, func in list(module.functions.items()):
        if not isinstance(func, tirx.PrimFunc) or not gv.name_hint.startswith("shape_func"):
            continue
        body = func.body
        stores = list(body.seq) if isinstance(body, tirx.SeqStmt) else []
        slots = [_slot(s) for s in stores]
        if not stores or None in slots:
            continue
        written = {k for k in slots if k is not None}
        if any(int(k) in written for s in stores for k in _SLOT.findall(str(s.value))):
            continue
        ordered = sorted(zip(slots, stores, strict=True), key=lambda pair: pair[0] or 0)
        module[gv] = func.with_body(tirx.SeqStmt([store for _, store in ordered]))
    return module


def _slot(stmt: Any) -> int | None:
    """The shape-heap slot a store writes (H[k] with k a constant), else None."""
    tirx = tvm().tirx
    if not isinstance(stmt, tirx.BufferStore) or len(stmt.indices) != 1:
        return None
    index = stmt.indices[0]
    return int(index.value) if isinstance(index, tirx.IntImm) else None


# --- the library and its cache ---------------------------------------------------------------


def cache_dir() -> Path:
    """Where compiled libraries are kept by key: $NETC_CACHE_DIR/tvm, else the XDG cache
    ($XDG_CACHE_HOME/netc/tvm, ~/.cache/netc/tvm)."""
    root = os.environ.get("NETC_CACHE_DIR")
    if root:
        return Path(root) / "tvm"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "netc" / "tvm"


def library(artifact: Artifact, database: Any = None) -> Path:
    """The folder holding `artifact` compiled (model.so and netc.json): its cache entry, built
    now unless an earlier run built the same key (same IR, weights, target, TVM and netc)."""
    key = artifact.key if database is None else _tuned_key(artifact.key, database)
    folder = cache_dir() / key[:40]
    if _complete(folder, key):
        return folder
    executable = build(artifact.module, make_target(artifact.target), database)
    info = {**artifact.info(), "key": key}

    def write(tmp: Path) -> None:
        _export(executable, tmp / LIBRARY)
        (tmp / INFO).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")

    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_dir(folder, write)
    except OSError as e:
        raise error(
            f"cannot write the TVM build cache at {folder.parent}: {e.strerror or e}",
            hint="set NETC_CACHE_DIR to a writable folder",
        ) from None
    return folder


def _tuned_key(key: str, database: Any) -> str:
    records = [str(r.as_json()) for r in database.get_all_tuning_records()]
    return hashlib.sha256((key + "\0" + "\n".join(sorted(records))).encode()).hexdigest()


def _complete(folder: Path, key: str) -> bool:
    try:
        info = json.loads((folder / INFO).read_text())
    except (OSError, ValueError):
        return False
    return info.get("key") == key and (folder / LIBRARY).is_file()


def _export(executable: Any, path: Path) -> None:
    """Write the executable as a shared library (TVM links it with the system's C compiler);
    TVM's C++ side logs a warning per VM scope it saves, silenced here."""
    with quiet_stderr():
        try:
            executable.export_library(str(path))
        except (RuntimeError, OSError) as e:
            raise error(
                f"TVM could not write the compiled library: {_first_line(e)}",
                hint="TVM links the library with the system's C compiler (cc or g++)",
            ) from None


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (where TVM's C++ side logs) inside a `with` block."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def save(artifact: Artifact, path: str | Path, database: Any = None) -> None:
    """Write `artifact` compiled as the folder `path` (MODEL.tvm/: model.so, the library the
    Relax VM loads, and netc.json, its signature and build settings), atomically: a temporary
    folder beside it, swapped in when complete."""
    path = Path(path)
    _check_replaceable(path)
    built = library(artifact, database)

    def write(tmp: Path) -> None:
        for name in (LIBRARY, INFO):
            shutil.copyfile(built / name, tmp / name)

    atomic_write_dir(path, write)


def _check_replaceable(path: Path) -> None:
    """Refuse to replace a folder that holds something other than a netc TVM artifact."""
    if path.is_dir() and any(path.iterdir()) and not (path / INFO).is_file():
        raise error(
            f"{path} is a folder that is not a netc TVM artifact: netc does not replace it",
            hint="pick another output path with -o",
        )
    if path.exists() and not path.is_dir():
        raise error(f"{path} exists and is not a folder", hint="pick another output path with -o")


# --- lowering --------------------------------------------------------------------------------


def _lower(
    t: Any,
    bb: Any,
    fname: str,
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    dims: Mapping[str, int],
    expose: Sequence[Key] | None,
) -> Entry:
    """Add Relax function `fname` computing `graph` (or the `expose`d values) to `bb`."""
    relax = t.relax
    ctx = TvmContext(t, bb, graph, weights, dims)
    params = []
    for name in graph.inputs:
        ty = ctx.type(name)
        if ty.dtype == "bf16":
            raise error(
                f"the tvm backend cannot take bf16 input `{name}` (netc runs bf16 only on "
                "-t tf and -t keras)",
                graph[name].span,
            )
        params.append(relax.Var(_identifier(name), ctx.tensor_type(ty)))
    ctx.values.update(zip(graph.inputs, params, strict=True))
    try:
        _function(ctx, bb, fname, params, expose)
    except BaseException:
        # TVM's builder leaves the function's last block and scope open on an error (and
        # warns about them when it is freed): close them, so the error is all a user sees
        bb._end_block()
        bb.end_scope()
        raise
    inputs = tuple((name, *_spec(ctx.type(name))) for name in graph.inputs)
    outputs = ctx.outputs
    fixed = tuple(_fix(s, dims) for s in inputs), tuple(_fix(s, dims) for s in outputs)
    return Entry(*fixed)


def _function(ctx: TvmContext, bb: Any, fname: str, params: list[Any], expose: Any) -> None:
    """The Relax function `fname` of `ctx`'s graph: its outputs, or the `expose`d values."""
    graph = ctx.graph
    checks = _run_time_checks(ctx)
    with bb.function(fname, params, pure=not checks):  # an assertion is not pure
        for check in checks:
            bb.emit(check)
        with bb.dataflow():
            if expose is None:
                for node in graph.nodes:
                    ctx.lower(node)
                results = [ctx.get(value) for _, value in graph.outputs]
                outputs = tuple((out, *_spec(ctx.type(value))) for out, value in graph.outputs)
            else:
                wanted = {name for name, _ in expose}
                last = max((i for i, n in enumerate(graph.nodes) if n.name in wanted), default=-1)
                for node in graph.nodes[: last + 1]:
                    ctx.lower(node)
                results = [ctx.result(k) for k in expose]
                outputs = tuple((value_key(k), *_spec(_result_type(graph, k))) for k in expose)
            out = bb.emit_output(ctx.relax.Tuple(results))
        bb.emit_func_output(out)
    ctx.outputs = outputs


def _run_time_checks(ctx: TvmContext) -> list[Any]:
    """Assertions on the symbolic dims, made before anything runs: a positional embedding's
    steps at most its max_length (its table has no row past it; the reference refuses too)."""
    R, relax = ctx.R, ctx.relax
    checks = []
    for node in ctx.graph.nodes:
        if node.op != "positional_embedding":
            continue
        steps, most = ctx.dim(ctx.type(node.inputs[0]).shape[1]), node.attrs["max_length"]
        if isinstance(steps, int):
            continue  # a known length: the shape rule checked it
        what = f"positional_embedding `{node.name}` got a sequence of {{}} steps, more than "
        checks.append(
            R.assert_op(
                relax.prim_value(steps <= most),
                [relax.prim_value(steps)],
                format=what + f"max_length={most}",
            )
        )
    return checks


def _spec(t: TensorType) -> tuple[str, tuple[Dim, ...]]:
    return t.dtype, tuple(t.shape)


def _fix(spec: IOSpec, dims: Mapping[str, int]) -> IOSpec:
    """A signature with the fixed dims substituted (a product of them multiplied out)."""
    name, dtype, shape = spec
    out: list[Dim] = []
    for d in shape:
        if isinstance(d, str) and all(f in dims or f.isdigit() for f in d.split("*")):
            out.append(math.prod(dims[f] if f in dims else int(f) for f in d.split("*")))
        else:
            out.append(d)
    return name, dtype, tuple(out)


def _result_type(graph: Graph, key: Key) -> TensorType:
    ty = graph[key[0]].type
    if key[1] is None:
        assert isinstance(ty, TensorType)
        return ty
    assert isinstance(ty, tuple)
    return ty[key[1]]


_NOT_IDENTIFIER = re.compile(r"\W")


def _identifier(name: str) -> str:
    """An IR name as a Relax variable name (TVMScript prints it as code)."""
    out = _NOT_IDENTIFIER.sub("_", name)
    return out if out and not out[0].isdigit() else f"v_{out}"


def _first_line(e: BaseException) -> str:
    """What an exception from TVM says, without its C++ backtrace."""
    lines = [s.strip() for s in str(e).splitlines()]
    said = [s for s in lines if s and not s.startswith(("File ", "Traceback", "note:"))]
    return said[-1] if said else type(e).__name__


class TvmContext:
    """What one Relax function builds: each IR value's Relax expression (a tuple for a
    multi-result op), the symbolic dims as TIR variables, the weights as constants."""

    def __init__(
        self,
        t: Any,
        bb: Any,
        graph: Graph,
        weights: Mapping[str, np.ndarray],
        dims: Mapping[str, int],
    ):
        self.t = t
        self.relax = t.relax
        self.R = t.relax.op
        self.bb = bb
        self.graph = graph
        self.weights = weights
        self.dims = dims
        self.symbols: dict[str, Any] = {}
        self.values: dict[str, Any] = {}
        self.consts: dict[tuple[str, str], Any] = {}
        self.node: Node | None = None
        self.outputs: tuple[IOSpec, ...] = ()

    # -- types --

    def type(self, name: str) -> TensorType:
        return self.graph[name].tensor_type

    def dim(self, d: Dim) -> Any:
        """A netc dim as Relax sees it: an int, or a product of symbolic TIR variables (a
        symbol in `dims` is its fixed size)."""
        if isinstance(d, int):
            return d
        out: Any = 1
        for factor in d.split("*"):
            if factor.isdigit():
                value: Any = int(factor)
            elif factor in self.dims:
                value = self.dims[factor]
            else:
                if factor not in self.symbols:
                    self.symbols[factor] = self.t.tirx.Var(_identifier(factor), "int64")
                value = self.symbols[factor]
            out = value if isinstance(out, int) and out == 1 else out * value
        return out

    def shape(self, t: TensorType) -> list[Any]:
        return [self.dim(d) for d in t.shape]

    def tensor_type(self, t: TensorType) -> Any:
        return self.relax.TensorType(self.shape(t), DTYPES[t.dtype])

    # -- values --

    def is_data(self, name: str) -> bool:
        return self.graph[name].op in ("param", "constant")

    def array(self, name: str) -> np.ndarray:
        node = self.graph[name]
        if node.op == "constant":
            return node.attrs["value"].array
        return np.asarray(self.weights[name])

    def const(self, array: Any, dtype: str | None = None) -> Any:
        """A helper constant (a scale, a table) in netc `dtype` (default: the array's own)."""
        a = np.asarray(array)
        if dtype is not None:
            a = a.astype(numpy_dtype(dtype))
        return self.relax.const(np.ascontiguousarray(a))

    def weight(self, name: str, array: np.ndarray | None = None, form: str = "") -> Any:
        """Weight or constant `name` as a Relax constant, in the `form` the rule made of it
        (`array`); each form is made once per function."""
        key = (name, form)
        if key not in self.consts:
            value = self.array(name) if array is None else np.asarray(array)
            self.consts[key] = self.const(value.astype(numpy_dtype(self.type(name).dtype)))
        return self.consts[key]

    def get(self, name: str) -> Any:
        """IR value `name` as a Relax expression (weights and constants as constants)."""
        if self.is_data(name):
            return self.weight(name)
        value = self.values[name]
        assert not isinstance(value, tuple), f"`{name}` is a tuple, read it through `item`"
        return value

    def result(self, key: Key) -> Any:
        if self.is_data(key[0]):
            return self.weight(key[0])
        value = self.values[key[0]]
        return value if key[1] is None else value[key[1]]

    # -- building --

    def emit(self, expr: Any, name: str = "") -> Any:
        """Bind `expr` to a variable named after the IR value being lowered."""
        hint = name or (_identifier(self.node.name) if self.node is not None else "")
        return self.bb.emit(expr, name_hint=hint)

    def te(self, fn: Callable[..., Any], *args: Any, name: str) -> Any:
        """A TE computation over Relax values, emitted as a PrimFunc and its call."""
        return self.bb.emit_te(fn, *args, primfunc_name_hint=name)

    def scalar(self, value: float, dtype: str) -> Any:
        return self.const(np.asarray(value, numpy_dtype(dtype)))

    def cast(self, x: Any, dtype: str) -> Any:
        return self.emit(self.R.astype(x, DTYPES[dtype]))

    def lower(self, node: Node) -> None:
        """Run `node`'s rule; record its result(s), checked against netc's types."""
        if node.op in ("input", "param", "constant"):
            return
        if node.op == "item":
            self.values[node.name] = self.values[node.inputs[0]][node.attrs["index"]]
            return
        types = node.type if isinstance(node.type, tuple) else (node.tensor_type,)
        if any(ty.dtype == "bf16" for ty in types):
            raise RULES.cannot(node, " on bf16 values (netc runs bf16 only on -t tf and -t keras)")
        rule = RULES.rule(node)
        self.node = node
        try:
            result = rule(self, node)
        except (TypeError, ValueError, RuntimeError) as e:  # TVM's checks while it builds
            raise RULES.cannot(node, f": TVM refuses it: {_first_line(e)}") from None
        results = result if isinstance(node.type, tuple) else (result,)
        assert isinstance(results, tuple) and len(results) == len(types), node.name
        for value, ty in zip(results, types, strict=True):
            self._check(node, value, ty)
        self.values[node.name] = result

    def _check(self, node: Node, value: Any, ty: TensorType) -> None:
        info = value.ty
        dims = getattr(info.shape, "values", None) or []
        shape = [int(d.value) if hasattr(d, "value") else None for d in dims]
        want = self.shape(ty)
        fits = info.dtype == DTYPES[ty.dtype] and len(shape) == len(want)
        if fits:
            fits = all(g is None or not isinstance(w, int) or g == w for g, w in zip(shape, want))
        if not fits:
            raise RULES.cannot(
                node,
                f": its rule made {info}, netc's type is {ty} (a bug in the tvm backend)",
            )


# --- helpers ---------------------------------------------------------------------------------


def _in_float32(ctx: TvmContext, x: Any, dtype: str, compute: Callable[[Any], Any]) -> Any:
    """`compute(x)` in float32 for an f16 `x` (cast back after), as netc's reference rounds
    once per op: normalizations, accumulating reductions, transcendental functions."""
    if dtype not in HALF:
        return compute(x)
    return ctx.cast(compute(ctx.cast(x, "f32")), dtype)


def _pads(pairs: Sequence[tuple[int, int]]) -> list[int]:
    """netc's (before, after) pairs as TVM's padding: every before, then every after."""
    return [b for b, _ in pairs] + [a for _, a in pairs]


def _activation(ctx: TvmContext, x: Any, op: str, attrs: Mapping[str, Any], dtype: str) -> Any:
    """Activation `op` (an elementwise op of netc) of `x`."""
    R, emit = ctx.R, ctx.emit

    def s(v: float) -> Any:
        return ctx.scalar(v, dtype)

    if op == "relu":
        return emit(R.nn.relu(x))
    if op == "relu6":
        return emit(R.minimum(R.maximum(x, s(0)), s(6)))
    if op == "neg":
        return emit(R.negative(x))
    if op == "abs":
        return emit(R.abs(x))
    if op == "leaky_relu":  # x >= 0 keeps x, as netc's meaning
        return emit(R.where(R.greater_equal(x, s(0)), x, R.multiply(x, s(attrs["alpha"]))))
    if op in ("hard_sigmoid", "hard_swish"):  # Keras' order: relu6(x + 3) / 6 (times x)
        y = emit(R.divide(R.minimum(R.maximum(R.add(x, s(3)), s(0)), s(6)), s(6)))
        return emit(R.multiply(x, y)) if op == "hard_swish" else y

    def transcendental(v: Any) -> Any:
        f32 = "f32" if dtype in HALF else dtype

        def c(value: float) -> Any:
            return ctx.scalar(value, f32)

        if op == "sigmoid":
            return emit(R.sigmoid(v))
        if op == "tanh":
            return emit(R.tanh(v))
        if op == "silu":
            return emit(R.multiply(v, R.sigmoid(v)))
        if op == "softplus":
            return emit(R.nn.softplus(v))
        if op == "exp":
            return emit(R.exp(v))
        if op == "log":
            return emit(R.log(v))
        if op == "sqrt":
            return emit(R.sqrt(v))
        if op == "elu":
            expm1 = R.subtract(R.exp(R.minimum(v, c(0))), c(1))
            return emit(R.where(R.greater(v, c(0)), v, R.multiply(c(attrs["alpha"]), expm1)))
        if op == "gelu":
            return emit(R.nn.gelu_tanh(v) if attrs.get("approximate") else R.nn.gelu(v))
        raise AssertionError(f"tvm: no activation {op}")

    return _in_float32(ctx, x, dtype, transcendental)


def _epilogue(ctx: TvmContext, node: Node, y: Any, residual: str | None) -> Any:
    """The fused op's tail: `+ residual`, then its activation."""
    from ..ops.fused import epilogue

    dtype = node.tensor_type.dtype
    if residual is not None:
        y = ctx.emit(ctx.R.add(y, ctx.get(residual)))
    _, act, act_attrs = epilogue(node.attrs)
    return y if act == "none" else _activation(ctx, y, act, act_attrs, dtype)


def _accumulate(dtype: str) -> str | None:
    """The out_dtype of a convolution or matmul: float32 sums for f16 values."""
    return "float32" if dtype in HALF else None


def _add_bias(ctx: TvmContext, y: Any, bias: str | None, dtype: str) -> Any:
    """`y` (accumulated in float32 for f16) plus `bias`, rounded to `dtype` once."""
    if dtype in HALF:
        if bias is not None:
            y = ctx.emit(ctx.R.add(y, ctx.const(ctx.array(bias), "f32")))
        return ctx.cast(y, dtype)
    return y if bias is None else ctx.emit(ctx.R.add(y, ctx.get(bias)))


# --- rules: activations and arithmetic -------------------------------------------------------

UNARY = (
    "relu",
    "relu6",
    "sigmoid",
    "tanh",
    "silu",
    "softplus",
    "hard_sigmoid",
    "hard_swish",
    "exp",
    "log",
    "sqrt",
    "abs",
    "neg",
    "leaky_relu",
    "elu",
    "gelu",
)


@RULES.on(*UNARY)
def _unary(ctx: TvmContext, node: Node) -> Any:
    x = ctx.get(node.inputs[0])
    return _activation(ctx, x, node.op, node.attrs, node.tensor_type.dtype)


@RULES.on("softmax")
def _softmax(ctx: TvmContext, node: Node) -> Any:
    x, dtype = ctx.get(node.inputs[0]), node.tensor_type.dtype
    axis = node.attrs["axis"]
    return _in_float32(ctx, x, dtype, lambda v: ctx.emit(ctx.R.nn.softmax(v, axis=axis)))


@RULES.on("dropout")
def _dropout(ctx: TvmContext, node: Node) -> Any:
    return ctx.get(node.inputs[0])  # the identity at inference


@RULES.on("cast")
def _cast(ctx: TvmContext, node: Node) -> Any:
    x, src = ctx.get(node.inputs[0]), ctx.type(node.inputs[0]).dtype
    if node.attrs["dtype"] == "bool" and src != "bool":  # nonzero is true
        return ctx.emit(ctx.R.not_equal(x, ctx.scalar(0, src)))
    return ctx.cast(x, node.attrs["dtype"])


BINARY = {
    "add": "add",
    "sub": "subtract",
    "mul": "multiply",
    "div": "divide",
    "maximum": "maximum",
    "minimum": "minimum",
}


@RULES.on(*BINARY)
def _binary(ctx: TvmContext, node: Node) -> Any:
    a, b = (ctx.get(i) for i in node.inputs)
    return ctx.emit(getattr(ctx.R, BINARY[node.op])(a, b))


@RULES.on("matmul")
def _matmul(ctx: TvmContext, node: Node) -> Any:
    a, b = (ctx.get(i) for i in node.inputs)
    dtype = node.tensor_type.dtype
    y = ctx.emit(ctx.R.matmul(a, b, out_dtype=_accumulate(dtype)))
    return ctx.cast(y, dtype) if dtype in HALF else y


def _dense_core(ctx: TvmContext, node: Node, x: str, kernel: str, bias: str | None) -> Any:
    dtype = node.tensor_type.dtype
    y = ctx.emit(ctx.R.matmul(ctx.get(x), ctx.get(kernel), out_dtype=_accumulate(dtype)))
    return _add_bias(ctx, y, bias, dtype)


@RULES.on("dense")
def _dense(ctx: TvmContext, node: Node) -> Any:
    x, kernel, *bias = node.inputs
    return _dense_core(ctx, node, x, kernel, bias[0] if bias else None)


# --- rules: convolutions ---------------------------------------------------------------------


def _conv_core(
    ctx: TvmContext,
    node: Node,
    x: Any,
    kernel: np.ndarray,
    attrs: Mapping[str, Any],
    groups: int,
    bias: str | None,
    *,
    padding: Sequence[tuple[int, int]] | None = None,
    stride: Sequence[int] | None = None,
    form: str = "",
    name: str,
) -> Any:
    """A channels-last convolution of `x` by `kernel` ([*k, C / groups, F], Keras' layout,
    which TVM calls WIO/HWIO/DHWIO), plus `bias`, in the IR dtype."""
    n = kernel.ndim - 2
    data_layout, kernel_layout = SPATIAL[n]
    dtype = node.tensor_type.dtype
    conv = {1: ctx.R.nn.conv1d, 2: ctx.R.nn.conv2d, 3: ctx.R.nn.conv3d}[n]
    w = ctx.weight(name, kernel, form)
    y = ctx.emit(
        conv(
            x,
            w,
            strides=list(attrs["stride"] if stride is None else stride),
            padding=_pads(attrs["padding"] if padding is None else padding),
            dilation=list(attrs["dilation"]),
            groups=groups,
            data_layout=data_layout,
            kernel_layout=kernel_layout,
            out_dtype=_accumulate(dtype),
        )
    )
    return _add_bias(ctx, y, bias, dtype)


def _base_conv(
    ctx: TvmContext, node: Node, base: str, attrs: Mapping[str, Any], x: str, weights: list[str]
) -> Any:
    """Convolution op `base` of IR value `x` with `weights` (kernel[, bias])."""
    kernel_name, bias = weights[0], (weights[1] if len(weights) > 1 else None)
    kernel = ctx.array(kernel_name)
    xv = ctx.get(x)
    if base.startswith("conv") and base.endswith("_transpose"):
        return _conv_transpose(ctx, node, xv, kernel, attrs, bias, kernel_name)
    if base.startswith("depthwise"):
        # channel c*M + j reads input channel c through multiplier j: one group per channel,
        # kernel [*k, C, M] -> [*k, 1, C*M]
        k = kernel.reshape(*kernel.shape[:-2], 1, kernel.shape[-2] * kernel.shape[-1])
        return _conv_core(
            ctx, node, xv, k, attrs, kernel.shape[-2], bias, form="grouped", name=kernel_name
        )
    return _conv_core(ctx, node, xv, kernel, attrs, attrs["groups"], bias, name=kernel_name)


@RULES.on("conv1d", "conv2d", "conv3d", "depthwise_conv1d", "depthwise_conv2d")
@RULES.on("conv1d_transpose", "conv2d_transpose", "conv3d_transpose")
def _conv(ctx: TvmContext, node: Node) -> Any:
    return _base_conv(ctx, node, node.op, node.attrs, node.inputs[0], list(node.inputs[1:]))


def _spread(
    te: Any, tirx: Any, x: Any, stride: Sequence[int], before: Sequence[int], after: Sequence[int]
) -> Any:
    """x [N, *L, C] with stride - 1 zeros between its cells, `before` zeros in front and
    `after` behind on each spatial axis (a negative count crops)."""
    n = len(stride)
    shape = list(x.shape)
    out = [shape[0]]
    for i in range(n):
        out.append((shape[1 + i] - 1) * stride[i] + 1 + before[i] + after[i])
    out.append(shape[-1])

    def cell(*idx: Any) -> Any:
        src, ok = [idx[0]], []
        for i in range(n):
            k = idx[1 + i] - before[i]
            if stride[i] == 1:
                ok += [k >= 0, k < shape[1 + i]]
                src.append(k)
            else:
                ok += [
                    k >= 0,
                    tirx.floormod(k, stride[i]) == 0,
                    tirx.floordiv(k, stride[i]) < shape[1 + i],
                ]
                src.append(tirx.floordiv(k, stride[i]))
        src.append(idx[-1])
        return tirx.if_then_else(tirx.all(*ok), x[tuple(src)], tirx.const(0, x.dtype))

    return te.compute(out, cell, name="spread")


def _conv_transpose(
    ctx: TvmContext,
    node: Node,
    x: Any,
    kernel: np.ndarray,
    attrs: Mapping[str, Any],
    bias: str | None,
    kernel_name: str,
) -> Any:
    # the scatter full[i*s + t*d] += x[i] * w[t] is a convolution of x spread by the stride
    # (s - 1 zeros between cells) and padded by k' - 1 on both sides, with the kernel flipped
    # and its in/out channels swapped; netc's window (crop `before`, `after`, extend by
    # output_padding) becomes that padding, less `before` in front and less `after` behind
    n = kernel.ndim - 2
    t = ctx.t
    stride, dilation = attrs["stride"], attrs["dilation"]
    kd = [(k - 1) * d + 1 for k, d in zip(kernel.shape[:n], dilation, strict=True)]
    front = [k - 1 - b for k, (b, _) in zip(kd, attrs["padding"], strict=True)]
    back = [
        k - 1 - a + e
        for k, (_, a), e in zip(kd, attrs["padding"], attrs["output_padding"], strict=True)
    ]
    spread = ctx.te(lambda v: _spread(t.te, t.tirx, v, stride, front, back), x, name="spread")
    flipped = np.flip(kernel, axis=tuple(range(n))).swapaxes(-1, -2)  # [*k, C, F]
    return _conv_core(
        ctx,
        node,
        spread,
        np.ascontiguousarray(flipped),
        attrs,
        1,
        bias,
        padding=[(0, 0)] * n,
        stride=[1] * n,
        form="flipped",
        name=kernel_name,
    )


@RULES.on("separable_conv1d", "separable_conv2d")
def _separable(ctx: TvmContext, node: Node) -> Any:
    # Keras' SeparableConv: the depthwise convolution (no bias), then a 1x1 convolution of its
    # C*M channels with the bias
    x, dw_name, pw_name, *bias = node.inputs
    dw, pw = ctx.array(dw_name), ctx.array(pw_name)
    n = dw.ndim - 2
    k = dw.reshape(*dw.shape[:-2], 1, dw.shape[-2] * dw.shape[-1])
    dtype = node.tensor_type.dtype
    y = _conv_core(
        ctx, node, ctx.get(x), k, node.attrs, dw.shape[-2], None, form="grouped", name=dw_name
    )
    ones = {"stride": (1,) * n, "padding": ((0, 0),) * n, "dilation": (1,) * n}
    y = _conv_core(ctx, node, y, pw, ones, 1, bias[0] if bias else None, name=pw_name)
    assert y.ty.dtype == DTYPES[dtype]
    return y


@RULES.on("fused_conv")
def _fused_conv(ctx: TvmContext, node: Node) -> Any:
    from ..ops.fused import base_attrs

    a = node.attrs
    n_weights = 1 + bool(a["bias"])
    data, weights = node.inputs[: len(node.inputs) - n_weights], node.inputs[-n_weights:]
    y = _base_conv(ctx, node, a["base"], base_attrs(a), data[0], list(weights))
    return _epilogue(ctx, node, y, data[1] if a["residual"] else None)


@RULES.on("fused_dense")
def _fused_dense(ctx: TvmContext, node: Node) -> Any:
    a = node.attrs
    n_weights = 1 + bool(a["bias"])
    data, weights = node.inputs[: len(node.inputs) - n_weights], node.inputs[-n_weights:]
    y = _dense_core(ctx, node, data[0], weights[0], weights[1] if a["bias"] else None)
    return _epilogue(ctx, node, y, data[1] if a["residual"] else None)


# --- rules: pooling and normalization ---------------------------------------------------------


@RULES.on("maxpool", "avgpool")
def _pool(ctx: TvmContext, node: Node) -> Any:
    a, dtype = node.attrs, node.tensor_type.dtype
    n = len(a["size"])
    R = ctx.R
    layout = SPATIAL[n][0]
    if node.op == "maxpool":  # padded cells are -inf: they never win
        pool = {1: R.nn.max_pool1d, 2: R.nn.max_pool2d, 3: R.nn.max_pool3d}[n]
        return ctx.emit(
            pool(
                ctx.get(node.inputs[0]),
                list(a["size"]),
                list(a["stride"]),
                _pads(a["padding"]),
                layout=layout,
            )
        )
    pool = {1: R.nn.avg_pool1d, 2: R.nn.avg_pool2d, 3: R.nn.avg_pool3d}[n]
    # count_include_pad=False: a window divides by the real cells it covers, as netc's meaning
    return _in_float32(
        ctx,
        ctx.get(node.inputs[0]),
        dtype,
        lambda v: ctx.emit(
            pool(
                v,
                list(a["size"]),
                list(a["stride"]),
                _pads(a["padding"]),
                count_include_pad=False,
                layout=layout,
            )
        ),
    )


@RULES.on("global_avgpool", "global_maxpool")
def _global_pool(ctx: TvmContext, node: Node) -> Any:
    x, dtype = ctx.get(node.inputs[0]), node.tensor_type.dtype
    axes = list(range(1, ctx.type(node.inputs[0]).rank - 1))
    keep = node.attrs["keepdims"]
    if node.op == "global_maxpool":
        return ctx.emit(ctx.R.max(x, axis=axes, keepdims=keep))
    return _in_float32(ctx, x, dtype, lambda v: ctx.emit(ctx.R.mean(v, axis=axes, keepdims=keep)))


def _along(array: np.ndarray, rank: int, axes: Sequence[int]) -> np.ndarray:
    """A weight over `axes` reshaped to broadcast against a rank-`rank` value."""
    shape = [1] * rank
    for a, d in zip(axes, array.shape, strict=True):
        shape[a] = d
    return array.reshape(shape)


@RULES.on("batchnorm")
def _batchnorm(ctx: TvmContext, node: Node) -> Any:
    # netc's formula, (x - mean) * (gamma / sqrt(var + eps)) + beta, with the per-channel
    # factor computed once in float64; f16 values normalize in float32
    a, dtype = node.attrs, node.tensor_type.dtype
    rank = node.tensor_type.rank
    ws = [ctx.array(i).astype(np.float64) for i in node.inputs[1:]]
    gamma = ws.pop(0) if a["scale"] else 1.0
    beta = ws.pop(0) if a["center"] else None
    mean, var = ws
    inv = gamma / np.sqrt(var + a["epsilon"])
    f32 = "f32" if dtype in HALF else dtype
    R = ctx.R

    def normalize(v: Any) -> Any:
        y = R.multiply(
            R.subtract(v, ctx.const(_along(mean, rank, [a["axis"]]), f32)),
            ctx.const(_along(inv, rank, [a["axis"]]), f32),
        )
        if beta is not None:
            y = R.add(y, ctx.const(_along(beta, rank, [a["axis"]]), f32))
        return ctx.emit(y)

    return _in_float32(ctx, ctx.get(node.inputs[0]), dtype, normalize)


@RULES.on("layernorm")
def _layernorm(ctx: TvmContext, node: Node) -> Any:
    # mean, then the mean square of the centred values (not E[x^2] - E[x]^2, which cancels)
    a, dtype = node.attrs, node.tensor_type.dtype
    rank, axes = node.tensor_type.rank, list(a["axis"])
    f32 = "f32" if dtype in HALF else dtype
    R = ctx.R
    ws = [ctx.array(i) for i in node.inputs[1:]]

    def normalize(v: Any) -> Any:
        centred = ctx.emit(R.subtract(v, R.mean(v, axis=axes, keepdims=True)))
        var = R.mean(R.multiply(centred, centred), axis=axes, keepdims=True)
        y = R.divide(centred, R.sqrt(R.add(var, ctx.scalar(a["epsilon"], f32))))
        w = list(ws)
        if a["scale"]:
            y = R.multiply(y, ctx.const(_along(w.pop(0), rank, axes), f32))
        if a["center"]:
            y = R.add(y, ctx.const(_along(w.pop(0), rank, axes), f32))
        return ctx.emit(y)

    return _in_float32(ctx, ctx.get(node.inputs[0]), dtype, normalize)


# --- rules: reductions -----------------------------------------------------------------------

REDUCE = {
    "reduce_sum": "sum",
    "reduce_mean": "mean",
    "reduce_max": "max",
    "reduce_min": "min",
    "reduce_prod": "prod",
}


@RULES.on(*REDUCE)
def _reduce(ctx: TvmContext, node: Node) -> Any:
    x, dtype = ctx.get(node.inputs[0]), node.tensor_type.dtype
    axes, keep = list(node.attrs["axis"]), node.attrs["keepdims"]
    if not axes:
        return x  # no axis: nothing reduced, as netc means it
    reduce = getattr(ctx.R, REDUCE[node.op])
    if dtype == "bool":  # any/all, as max/min over int8
        y = reduce(ctx.cast(x, "i32"), axis=axes, keepdims=keep)
        return ctx.emit(ctx.R.not_equal(y, ctx.scalar(0, "i32")))
    if node.op in ("reduce_max", "reduce_min"):
        return ctx.emit(reduce(x, axis=axes, keepdims=keep))
    return _in_float32(ctx, x, dtype, lambda v: ctx.emit(reduce(v, axis=axes, keepdims=keep)))


@RULES.on("argmax")
def _argmax(ctx: TvmContext, node: Node) -> Any:
    return ctx.emit(ctx.R.argmax(ctx.get(node.inputs[0]), axis=node.attrs["axis"]))


# --- rules: shape ----------------------------------------------------------------------------


@RULES.on("flatten", "reshape")
def _reshape(ctx: TvmContext, node: Node) -> Any:
    # row-major over the channels-last value: Keras' element order
    return ctx.emit(ctx.R.reshape(ctx.get(node.inputs[0]), ctx.shape(node.tensor_type)))


@RULES.on("transpose")
def _transpose(ctx: TvmContext, node: Node) -> Any:
    return ctx.emit(ctx.R.permute_dims(ctx.get(node.inputs[0]), list(node.attrs["perm"])))


@RULES.on("concat")
def _concat(ctx: TvmContext, node: Node) -> Any:
    xs = [ctx.get(i) for i in node.inputs]
    return ctx.emit(ctx.R.concat(xs, axis=node.attrs["axis"]))


@RULES.on("split")
def _split(ctx: TvmContext, node: Node) -> tuple[Any, ...]:
    sizes = node.attrs["sections"]
    cuts = [int(c) for c in np.cumsum(sizes)[:-1]]
    parts = ctx.emit(ctx.R.split(ctx.get(node.inputs[0]), cuts, axis=node.attrs["axis"]))
    return tuple(
        ctx.emit(ctx.relax.TupleGetItem(parts, i), f"{_identifier(node.name)}_{i}")
        for i in range(len(sizes))
    )


@RULES.on("slice")
def _slice(ctx: TvmContext, node: Node) -> Any:
    # a TE gather: out[i] = x[start + i * step] per sliced axis, with Python's slice meaning
    # resolved here (negative bounds, none, clamping); a window of a symbolic dim counted from
    # its end starts at dim + start. Inside a TE function a symbolic dim is the placeholder's
    # own variable (x.shape), not the Relax function's.
    a = node.attrs
    t, out = ctx.type(node.inputs[0]), node.tensor_type
    spec = {
        axis: (start, end, step)
        for axis, start, end, step in zip(
            a["axes"], a["starts"], a["ends"], a["steps"], strict=True
        )
    }

    def gather(x: Any) -> Any:
        starts: dict[int, Any] = {}
        for axis, (start, end, step) in spec.items():
            dim = t.shape[axis]
            if isinstance(dim, int):
                starts[axis] = slice(start, end, step).indices(dim)[0]
            else:
                starts[axis] = start if start >= 0 else x.shape[axis] + start
        shape = [d if isinstance(d, int) else x.shape[i] for i, d in enumerate(out.shape)]

        def cell(*idx: Any) -> Any:
            src = [
                starts[axis] + i * spec[axis][2] if axis in spec else i
                for axis, i in enumerate(idx)
            ]
            return x[tuple(src)]

        return ctx.t.te.compute(shape, cell, name="slice")

    return ctx.te(gather, ctx.get(node.inputs[0]), name="slice")


@RULES.on("squeeze")
def _squeeze(ctx: TvmContext, node: Node) -> Any:
    return ctx.emit(ctx.R.squeeze(ctx.get(node.inputs[0]), axis=list(node.attrs["axes"])))


@RULES.on("expand_dims")
def _expand_dims(ctx: TvmContext, node: Node) -> Any:
    return ctx.emit(ctx.R.expand_dims(ctx.get(node.inputs[0]), axis=node.attrs["axis"]))


@RULES.on("broadcast_like")
def _broadcast_like(ctx: TvmContext, node: Node) -> Any:
    return ctx.emit(ctx.R.broadcast_to(ctx.get(node.inputs[0]), ctx.shape(node.tensor_type)))


@RULES.on("pad")
def _pad(ctx: TvmContext, node: Node) -> Any:
    # a TE gather: constant fills with the value, edge clamps the index, reflect mirrors it
    # once (netc's pads are smaller than the dim)
    a = node.attrs
    mode, pads, dtype = a["mode"], a["pads"], node.tensor_type.dtype
    tirx = ctx.t.tirx
    value = np.asarray(a["value"], numpy_dtype(dtype)).item()

    def padded(x: Any) -> Any:
        shape = list(x.shape)

        def cell(*idx: Any) -> Any:
            src, ok = [], []
            for i, (b, e) in enumerate(pads):
                if b == e == 0:
                    src.append(idx[i])
                    continue
                d = shape[i]
                k = idx[i] - b
                if mode == "constant":
                    ok += [k >= 0, k < d]
                    src.append(k)
                elif mode == "edge":
                    src.append(tirx.max(tirx.min(k, d - 1), 0))
                else:
                    src.append(tirx.Select(k < 0, -k, tirx.Select(k >= d, 2 * (d - 1) - k, k)))
            v = x[tuple(src)]
            return tirx.if_then_else(tirx.all(*ok), v, tirx.const(value, x.dtype)) if ok else v

        out = [d + b + e for d, (b, e) in zip(shape, pads, strict=True)]
        return ctx.t.te.compute(out, cell, name="pad")

    return ctx.te(padded, ctx.get(node.inputs[0]), name="pad")


def _resize_images(
    ctx: TvmContext, node: Node, x: Any, in_size: Sequence[Dim], size: Sequence[int], method: str
) -> Any:
    """TF's half-pixel resize of [N, H, W, C], with netc's own source-index tables (computed
    in float32, as TF and the reference compute them) as constants: gathers, then lerps."""
    from ..ops.shape import _source_index

    fixed = [ctx.dim(d) for d in in_size]  # a symbol --dim fixed is a size here
    if not all(isinstance(d, int) for d in fixed):
        raise RULES.cannot(
            node,
            " of a symbolic height or width: the tvm backend resizes with index tables made "
            "at compile time (fix the size with --dim)",
        )
    R, dtype = ctx.R, node.tensor_type.dtype
    h, w = (int(d) for d in fixed)
    if method == "nearest":
        rows = ctx.const(_source_index(h, size[0], "nearest"))
        cols = ctx.const(_source_index(w, size[1], "nearest"))
        return ctx.emit(R.take(R.take(x, rows, axis=1, mode="clip"), cols, axis=2, mode="clip"))
    y0, y1, fy = _source_index(h, size[0], "bilinear")
    x0, x1, fx = _source_index(w, size[1], "bilinear")
    f32 = "f32" if dtype in HALF else dtype

    def lerp(v: Any) -> Any:
        # mode "clip" only to say the tables are in range (TVM warns about its "fast" mode)
        def take(r: Any, index: np.ndarray, axis: int) -> Any:
            return ctx.emit(R.take(r, ctx.const(index), axis=axis, mode="clip"))

        rows0, rows1 = take(v, y0, 1), take(v, y1, 1)
        tl, tr, bl, br = (
            take(rows0, x0, 2),
            take(rows0, x1, 2),
            take(rows1, x0, 2),
            take(rows1, x1, 2),
        )
        fxc, fyc = ctx.const(fx[:, None], f32), ctx.const(fy[:, None, None], f32)
        top = R.add(tl, R.multiply(R.subtract(tr, tl), fxc))
        bottom = R.add(bl, R.multiply(R.subtract(br, bl), fxc))
        top, bottom = ctx.emit(top), ctx.emit(bottom)
        return ctx.emit(R.add(top, R.multiply(R.subtract(bottom, top), fyc)))

    return _in_float32(ctx, x, dtype, lerp)


@RULES.on("upsample")
def _upsample(ctx: TvmContext, node: Node) -> Any:
    x, size = ctx.get(node.inputs[0]), node.attrs["size"]
    t = ctx.type(node.inputs[0])
    if node.attrs["method"] == "bilinear":
        h, w = (ctx.dim(d) for d in t.shape[1:3])
        sizes = [h * size[0], w * size[1]] if isinstance(h, int) and isinstance(w, int) else []
        return _resize_images(ctx, node, x, t.shape[1:3], sizes, "bilinear")
    for i, s in enumerate(size):  # nearest: each cell repeated s times per axis
        if s > 1:
            x = ctx.emit(ctx.R.repeat(x, s, axis=1 + i))
    return x


@RULES.on("resize")
def _resize(ctx: TvmContext, node: Node) -> Any:
    t = ctx.type(node.inputs[0])
    return _resize_images(
        ctx, node, ctx.get(node.inputs[0]), t.shape[1:3], node.attrs["size"], node.attrs["method"]
    )


# --- rules: embeddings, recurrent, attention --------------------------------------------------


@RULES.on("embedding")
def _embedding(ctx: TvmContext, node: Node) -> Any:
    # "clip": an id out of [0, vocab) reads the nearest row instead of memory past the table
    ids, table = node.inputs
    return ctx.emit(ctx.R.take(ctx.get(table), ctx.get(ids), axis=0, mode="clip"))


@RULES.on("positional_embedding")
def _positional_embedding(ctx: TvmContext, node: Node) -> Any:
    # x[n, t, d] + table[t, d]: row t of the table for step t (T at most max_length)
    x, table = node.inputs

    def add(v: Any, w: Any) -> Any:
        return ctx.t.te.compute(v.shape, lambda n, s, d: v[n, s, d] + w[s, d], name="position")

    return ctx.te(add, ctx.get(x), ctx.get(table), name="positional_embedding")


@no_type_check  # TVMScript: its annotations (T.Buffer(...)) are TVM's types, not Python's
def _sequence_kernel(kind: str, units: int, backwards: bool) -> Any:
    """The TIR PrimFunc of one recurrent layer's scan over time, in float32: it reads the input
    projection xp [N, T, G*u] (x @ kernel + input bias, made by Relax) and the recurrent
    weights, and writes every step's h (in processing order) and the last states."""
    from tvm.script import tirx as T

    u, back = units, int(backwards)
    if kind == "lstm":

        @T.prim_func(private=True)
        def lstm(
            var_xp: T.handle,
            rk: T.Buffer((u, 4 * u), "float32"),
            var_y: T.handle,
            var_h: T.handle,
            var_c: T.handle,
        ):
            n = T.int64()
            t = T.int64()
            XP = T.match_buffer(var_xp, (n, t, 4 * u), "float32")
            Y = T.match_buffer(var_y, (n, t, u), "float32")
            H = T.match_buffer(var_h, (n, u), "float32")
            C = T.match_buffer(var_c, (n, u), "float32")
            z = T.alloc_buffer((n, 4 * u), "float32")
            for i, j in T.grid(n, u):
                H[i, j] = T.float32(0)
                C[i, j] = T.float32(0)
            for s in range(t):
                src = s + back * (t - 1 - 2 * s)
                for i, j in T.grid(n, 4 * u):
                    z[i, j] = XP[i, src, j]
                    for k in range(u):
                        z[i, j] = z[i, j] + H[i, k] * rk[k, j]
                for i, j in T.grid(n, u):  # Keras' gates: i f c o
                    C[i, j] = C[i, j] / (T.float32(1) + T.exp(-z[i, u + j])) + T.tanh(
                        z[i, 2 * u + j]
                    ) / (T.float32(1) + T.exp(-z[i, j]))
                    H[i, j] = T.tanh(C[i, j]) / (T.float32(1) + T.exp(-z[i, 3 * u + j]))
                    Y[i, s, j] = H[i, j]

        return lstm

    if kind == "gru_after":

        @T.prim_func(private=True)
        def gru_after(
            var_xp: T.handle,
            rk: T.Buffer((u, 3 * u), "float32"),
            rb: T.Buffer((3 * u,), "float32"),
            var_y: T.handle,
            var_h: T.handle,
        ):
            n = T.int64()
            t = T.int64()
            XP = T.match_buffer(var_xp, (n, t, 3 * u), "float32")
            Y = T.match_buffer(var_y, (n, t, u), "float32")
            H = T.match_buffer(var_h, (n, u), "float32")
            inner = T.alloc_buffer((n, 3 * u), "float32")
            for i, j in T.grid(n, u):
                H[i, j] = T.float32(0)
            for s in range(t):
                src = s + back * (t - 1 - 2 * s)
                for i, j in T.grid(n, 3 * u):  # h @ recurrent_kernel + recurrent bias
                    inner[i, j] = rb[j]
                    for k in range(u):
                        inner[i, j] = inner[i, j] + H[i, k] * rk[k, j]
                for i, j in T.grid(n, u):  # gates z r h; reset after the product
                    z = T.float32(1) / (T.float32(1) + T.exp(-(XP[i, src, j] + inner[i, j])))
                    r = T.float32(1) / (
                        T.float32(1) + T.exp(-(XP[i, src, u + j] + inner[i, u + j]))
                    )
                    hh = T.tanh(XP[i, src, 2 * u + j] + r * inner[i, 2 * u + j])
                    H[i, j] = z * H[i, j] + (T.float32(1) - z) * hh
                    Y[i, s, j] = H[i, j]

        return gru_after

    @T.prim_func(private=True)
    def gru_before(
        var_xp: T.handle, rk: T.Buffer((u, 3 * u), "float32"), var_y: T.handle, var_h: T.handle
    ):
        n = T.int64()
        t = T.int64()
        XP = T.match_buffer(var_xp, (n, t, 3 * u), "float32")
        Y = T.match_buffer(var_y, (n, t, u), "float32")
        H = T.match_buffer(var_h, (n, u), "float32")
        inner = T.alloc_buffer((n, 2 * u), "float32")
        zs = T.alloc_buffer((n, u), "float32")
        rh = T.alloc_buffer((n, u), "float32")
        acc = T.alloc_buffer((n, u), "float32")
        for i, j in T.grid(n, u):
            H[i, j] = T.float32(0)
        for s in range(t):
            src = s + back * (t - 1 - 2 * s)
            for i, j in T.grid(n, 2 * u):  # h @ recurrent_kernel[:, :2u]
                inner[i, j] = T.float32(0)
                for k in range(u):
                    inner[i, j] = inner[i, j] + H[i, k] * rk[k, j]
            for i, j in T.grid(n, u):
                zs[i, j] = T.float32(1) / (T.float32(1) + T.exp(-(XP[i, src, j] + inner[i, j])))
                rh[i, j] = H[i, j] / (T.float32(1) + T.exp(-(XP[i, src, u + j] + inner[i, u + j])))
            for i, j in T.grid(n, u):  # (r * h) @ recurrent_kernel[:, 2u:]
                acc[i, j] = XP[i, src, 2 * u + j]
                for k in range(u):
                    acc[i, j] = acc[i, j] + rh[i, k] * rk[k, 2 * u + j]
            for i, j in T.grid(n, u):
                H[i, j] = zs[i, j] * H[i, j] + (T.float32(1) - zs[i, j]) * T.tanh(acc[i, j])
                Y[i, s, j] = H[i, j]

    return gru_before


@RULES.on("lstm", "gru")
def _recurrent(ctx: TvmContext, node: Node) -> Any:
    # the input projection of every step is one matmul (Relax); the scan over time is a TIR
    # loop (Relax has none), in float32 for every float dtype
    a, u = node.attrs, node.attrs["units"]
    lstm = node.op == "lstm"
    x, kernel_name, recurrent_name, bias_name = node.inputs
    t = ctx.type(x)
    dtype = t.dtype
    R, relax = ctx.R, ctx.relax
    kernel = ctx.array(kernel_name).astype(np.float32)
    recurrent = ctx.array(recurrent_name).astype(np.float32)
    bias = ctx.array(bias_name).astype(np.float32)
    after = not lstm and a["reset_after"]
    input_bias = bias[0] if after else bias
    xv = ctx.get(x) if dtype == "f32" else ctx.cast(ctx.get(x), "f32")
    xp = ctx.emit(R.add(R.matmul(xv, ctx.const(kernel)), ctx.const(input_bias)), "projection")
    kind = "lstm" if lstm else "gru_after" if after else "gru_before"
    fn = ctx.bb.add_func(_sequence_kernel(kind, u, a["go_backwards"]), f"{kind}_{u}")
    n, steps = ctx.dim(t.shape[0]), ctx.dim(t.shape[1])
    f32 = [relax.TensorType([n, steps, u], "float32")]
    f32 += [relax.TensorType([n, u], "float32")] * (2 if lstm else 1)
    args = [xp, ctx.const(recurrent)] + ([ctx.const(bias[1])] if after else [])
    outs = ctx.emit(relax.call_tir(fn, args, f32), "scan")
    seq, h, *c = (ctx.emit(relax.TupleGetItem(outs, i)) for i in range(len(f32)))
    results = [seq if a["return_sequences"] else h]
    if a["return_state"]:
        results += [h, *c]
    if dtype != "f32":
        results = [ctx.cast(r, dtype) for r in results]
    return tuple(results) if a["return_state"] else results[0]


@RULES.on("multi_head_attention")
def _attention(ctx: TvmContext, node: Node) -> Any:
    # Keras' MultiHeadAttention: per-head projections as matmuls over reshaped kernels, the
    # query scaled before the scores, softmax over the keys (in float32 for f16)
    a, R = node.attrs, ctx.R
    heads, key_dim, value_dim = a["heads"], a["key_dim"], a["value_dim"]
    n_weights = 8 if a["bias"] else 4
    data, ws = node.inputs[:-n_weights], list(node.inputs[-n_weights:])
    query = data[0]
    value = data[1] if len(data) > 1 else query
    key = data[2] if len(data) > 2 else value
    pairs = [(ws[i], ws[i + 1]) for i in range(0, 8, 2)] if a["bias"] else [(w, None) for w in ws]
    dtype = node.tensor_type.dtype
    f32 = "f32" if dtype in HALF else dtype

    def operand(name: str) -> Any:
        v = ctx.get(name)
        return ctx.cast(v, "f32") if dtype in HALF else v

    def project(x: str, kernel: str, bias: str | None, dim: int, perm: list[int]) -> Any:
        # [N, T, D] @ [D, heads*dim] (+ bias) -> [N, T, heads, dim] -> permuted per head
        w = ctx.array(kernel)
        y = R.matmul(operand(x), ctx.const(w.reshape(w.shape[0], -1), f32))
        if bias:
            y = R.add(y, ctx.const(ctx.array(bias).reshape(-1), f32))
        t = ctx.type(x)
        y = R.reshape(ctx.emit(y), [ctx.dim(t.shape[0]), ctx.dim(t.shape[1]), heads, dim])
        return ctx.emit(R.permute_dims(ctx.emit(y), perm))

    (wq, bq), (wk, bk), (wv, bv), (wo, bo) = pairs
    q = project(query, wq, bq, key_dim, [0, 2, 1, 3])  # [N, h, T, k]
    q = ctx.emit(R.multiply(q, ctx.scalar(1 / math.sqrt(key_dim), f32)))  # as Keras
    k = project(key, wk, bk, key_dim, [0, 2, 3, 1])  # [N, h, k, S]
    v = project(value, wv, bv, value_dim, [0, 2, 1, 3])  # [N, h, S, v]
    scores = ctx.emit(R.matmul(q, k))  # [N, h, T, S]
    if a["causal"]:  # query i sees keys j <= i
        tirx, te = ctx.t.tirx, ctx.t.te

        def mask(s: Any) -> Any:
            minus_inf = tirx.const(float("-inf"), s.dtype)
            return te.compute(
                s.shape,
                lambda n, h, i, j: tirx.Select(j <= i, s[n, h, i, j], minus_inf),
                name="causal",
            )

        scores = ctx.te(mask, scores, name="causal_mask")
    probs = ctx.emit(R.nn.softmax(scores, axis=-1))
    y = ctx.emit(R.permute_dims(ctx.emit(R.matmul(probs, v)), [0, 2, 1, 3]))  # [N, T, h, v]
    tq = ctx.type(query)
    y = ctx.emit(R.reshape(y, [ctx.dim(tq.shape[0]), ctx.dim(tq.shape[1]), heads * value_dim]))
    w = ctx.array(wo)
    y = ctx.emit(R.matmul(y, ctx.const(w.reshape(-1, w.shape[-1]), f32)))
    if bo:
        y = ctx.emit(R.add(y, ctx.const(ctx.array(bo), f32)))
    return ctx.cast(y, dtype) if dtype in HALF else y
