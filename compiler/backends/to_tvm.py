"""The TVM backend: a checked IR graph and its weights -> a Relax module built directly from the
IR (Relax ops, TE for what Relax lacks, TIR for the recurrences), compiled by netc's own Relax
pipeline into a shared library that the Relax VM runs.

The backend is split by concern: `tvm_lower` (the lowering context and the one rule table
`RULES`), `tvm_rules` and `tvm_sequence` (the rules), `tvm_build` (targets, the pipeline, the
build cache), `tvm_schedules` (netc's default CPU schedules); this module is the entry point
(`emit`, the `Artifact`) and re-exports what the rest of netc uses.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..ir import Graph, print_graph
from ..source import error
from ..weights import check_weights
from . import tvm, tvm_rules, tvm_sequence  # noqa: F401 - the rules register in RULES
from .tvm_build import (  # noqa: F401 - the backend's public names, for its users
    DEFAULT_LLVM_OPT_LEVEL,
    GPU_KINDS,
    INFO,
    LIBRARY,
    build,
    cache_dir,
    first_line,
    host_target,
    library,
    make_target,
    no_gpu,
    optimize,
    pipeline,
    quiet_stderr,
    save,
    schedule,
    target_spec,
)
from .tvm_lower import RULES, Entry, IOSpec, Key, lower, value_key  # noqa: F401

FORMAT = 1  # the layout of an artifact folder's netc.json
LAYOUT = "NHWC"  # channels-last kernels on every target (docs/tvm.md, "Layout")

# --- the artifact ----------------------------------------------------------------------------


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
        entries[fname] = lower(t, bb, fname, graph, values, fixed, expose)
        digest.update(_graph_digest(graph, values, fixed, expose).encode())
    module = bb.get()
    # the IR's digest, and the Relax module's own structural hash (its constants included)
    digest.update(str(tvm_ffi.structural_hash(module)).encode())
    name = next(iter(graphs.values()))[0].name if len(graphs) == 1 else "netc"
    key = _key(digest.hexdigest(), str(target), len(graphs))
    return Artifact(name, module, entries, spec, key, dict(dims or {}))


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
    # not where the source lies: the same model read from another path is the same build
    h = hashlib.sha256(print_graph(graph, locations=False, origins=False).encode())
    for node in graph.nodes:
        if node.op in ("param", "constant"):
            value = weights[node.name] if node.op == "param" else node.attrs["value"].array
            a = np.ascontiguousarray(value)
            h.update(f"{node.name}:{a.dtype}:{a.shape}".encode())
            h.update(a.tobytes())
    h.update(json.dumps(sorted(dims.items())).encode())
    h.update(json.dumps([list(k) for k in expose] if expose is not None else None).encode())
    return h.hexdigest()


# the sources a build depends on: a change to a rule, the pipeline or a schedule is a new build
_SOURCES = (Path(__file__), *sorted(Path(__file__).parent.glob("tvm_*.py")))


def _key(graphs: str, target: str, count: int) -> str:
    """The cache key of a build: the graphs' digest, the target, TVM's version and the
    backend's own sources (`_SOURCES`)."""
    from .. import __version__

    h = hashlib.sha256()
    for part in (
        f"netc {__version__} format {FORMAT} functions {count}",
        tvm().__version__,
        target,
        LAYOUT,
        graphs,
        *(hashlib.sha256(f.read_bytes()).hexdigest() for f in _SOURCES),
    ):
        h.update(part.encode() + b"\0")
    return h.hexdigest()
