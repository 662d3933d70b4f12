"""Inputs the commands make up: the sizes of symbolic dims (`--dim T=128`, and the ones
assumed when not given, always said), seeded random inputs for `netc run` without `-i`, and
what sizes them in an .onnx (an embedding's vocabulary, a positional embedding's max_length;
netc.dims holds the bounds and their check)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from ..dims import Bound

if TYPE_CHECKING:
    import numpy as np

    from ..ir import Graph
    from ..runtime.api import Signature

DEFAULT_SIZE = 16  # a symbolic dim other than the batch, when --dim does not set it
DEFAULT_INT_HIGH = 8  # random integer inputs lie below this without an embedding to size them


@dataclass(frozen=True)
class Sizes:
    """The size of every symbol of a signature: the batch's, the ones given, the ones assumed."""

    sizes: dict[str, int]
    assumed: dict[str, int]

    def note(self) -> str:
        """`T=16 assumed (--dim T=SIZE sets it)`, or "" when nothing was assumed."""
        if not self.assumed:
            return ""
        said = ", ".join(f"{k}={v}" for k, v in self.assumed.items())
        flags = " ".join(f"--dim {k}=SIZE" for k in self.assumed)
        return f"{said} assumed ({flags} sets {'it' if len(self.assumed) == 1 else 'them'})"


def dims_option(help: str) -> Any:
    """--dim SYMBOL=SIZE (repeatable): the size of a symbolic dim."""
    from .common import _parse_dims

    return click.option(
        "--dim", "dims", multiple=True, metavar="SYMBOL=SIZE", callback=_parse_dims, help=help
    )


def batch_symbols(shapes: Sequence[Sequence[Any]]) -> list[str]:
    """The symbols at axis 0 of the inputs (the batch: N), in order."""
    out: list[str] = []
    for shape in shapes:
        if shape and isinstance(shape[0], str) and shape[0] not in out:
            out.append(shape[0])
    return out


def size_symbols(shapes: Sequence[Sequence[Any]]) -> list[str]:
    """The symbols of the inputs other than the batch's (T, H, W), in order."""
    batch = batch_symbols(shapes)
    out: list[str] = []
    for shape in shapes:
        for d in shape:
            for s in _symbols(d):
                if s not in batch and s not in out:
                    out.append(s)
    return out


def sizes_for(
    shapes: Sequence[Sequence[Any]],
    dims: Mapping[str, int] | None,
    batch: int = 1,
    bounds: Sequence[Bound] = (),
) -> Sizes:
    """A size for every symbol of `shapes`: the batch symbols `batch`, the others from `dims`,
    or DEFAULT_SIZE (at most a bound's size), reported as assumed. A `dims` entry naming no
    symbol is a usage error."""
    dims = dict(dims or {})
    known = batch_symbols(shapes) + size_symbols(shapes)
    for name in dims:
        if name not in known:
            listed = ", ".join(known) or "none"
            raise click.BadParameter(
                f"{name} is not a symbolic dim of the model's inputs (they have {listed})",
                param_hint="--dim",
            )
    sizes: dict[str, int] = {}
    assumed: dict[str, int] = {}
    for s in batch_symbols(shapes):
        sizes[s] = dims.get(s, batch)
    for s in size_symbols(shapes):
        if s in dims:
            sizes[s] = dims[s]
        else:
            most = min((b.most for b in bounds if b.symbol == s), default=DEFAULT_SIZE)
            sizes[s] = assumed[s] = min(DEFAULT_SIZE, most)
    return Sizes(sizes, assumed)


def _symbols(d: Any) -> list[str]:
    """The symbols of a dim: none for a size, `N*T` -> N, T."""
    if not isinstance(d, str):
        return []
    return [p for p in d.split("*") if not p.isdigit()]


def _size(d: Any, sizes: Mapping[str, int]) -> int:
    if isinstance(d, int):
        return d
    if d is None:
        return 1
    n = 1
    for p in d.split("*"):
        n *= int(p) if p.isdigit() else sizes.get(p, 1)
    return n


def random_feed(
    signature: Sequence[Signature], sizes: Sizes, seed: int = 0, int_high: int | None = None
) -> dict[str, np.ndarray]:
    """Seeded inputs for `signature` at `sizes`: floats standard normal, integers in
    [0, int_high) (ids valid for the smallest embedding), bools random."""
    import numpy as np

    from ..ir import numpy_dtype

    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for sig in signature:
        shape = [_size(d, sizes.sizes) for d in sig.shape]
        dtype = numpy_dtype(sig.dtype)
        if dtype.kind == "f" or sig.dtype == "bf16":
            out[sig.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            out[sig.name] = rng.random(shape) < 0.5
        else:
            out[sig.name] = rng.integers(0, int_high or DEFAULT_INT_HIGH, shape).astype(dtype)
    return out


def feed_symbols(signature: Sequence[Signature], feed: Mapping[str, Any]) -> dict[str, int]:
    """The size each plain symbol of `signature` has in `feed` (its shapes checked later)."""
    out: dict[str, int] = {}
    for sig in signature:
        shape = getattr(feed.get(sig.name), "shape", None)
        if shape is None or len(shape) != len(sig.shape):
            continue
        for d, n in zip(sig.shape, shape):
            if isinstance(d, str) and d.isidentifier():
                out.setdefault(d, int(n))
    return out


# --- what a model bounds ---------------------------------------------------------------------


def graph_int_high(graph: Graph) -> int | None:
    """The smallest embedding vocabulary of the graph (random ids stay below it)."""
    return min((n.attrs["vocab"] for n in graph.nodes if n.op == "embedding"), default=None)


def onnx_bounds(model: Any) -> list[Bound]:
    """The bounds of an ONNX model netc wrote: a positional embedding is a Slice of its table
    (an initializer) up to Shape(x)[1:2], x's axis 1 named by its symbol in value_info."""
    tables = {i.name: i for i in model.graph.initializer}
    shapes = {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in (*model.graph.input, *model.graph.value_info)
    }
    made = {out: node for node in model.graph.node for out in node.output}
    out = []
    for node in model.graph.node:
        if node.op_type != "Slice" or len(node.input) < 3 or node.input[0] not in tables:
            continue
        shape_node = made.get(node.input[2])
        if shape_node is None or shape_node.op_type != "Shape":
            continue
        attrs = {a.name: a.i for a in shape_node.attribute}
        if (attrs.get("start"), attrs.get("end")) != (1, 2):
            continue
        axes = shapes.get(shape_node.input[0], [])
        if len(axes) > 1 and isinstance(axes[1], str) and axes[1].isidentifier():
            most = int(tables[node.input[0]].dims[0])
            layer = node.name.rsplit("/", 1)[0]
            where = f" ({node.doc_string})" if node.doc_string else ""
            out.append(Bound(axes[1], most, f"`{layer}`{where} has max_length={most}"))
    return out


def onnx_int_high(model: Any) -> int | None:
    """The smallest table an ONNX model gathers graph inputs from (an embedding's vocab)."""
    tables = {i.name: int(i.dims[0]) for i in model.graph.initializer if i.dims}
    inputs = {i.name for i in model.graph.input}
    rows = [
        tables[n.input[0]]
        for n in model.graph.node
        if n.op_type == "Gather" and n.input[0] in tables and n.input[1] in inputs
    ]
    return min(rows, default=None)
