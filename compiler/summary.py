"""The checked model a compilation returns (`Model`) and its Keras-style summary."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .ir import Graph, TensorType
from .source import CallSite, Diagnostic, SourceMap

if TYPE_CHECKING:
    from .train_spec import TrainSpec


@dataclass(frozen=True)
class Layer:
    """One row of the summary: an op node with its weights."""

    name: str
    op: str
    type: object  # TensorType or a tuple of them
    params: int
    trainable: int
    flops: int
    line: int | None
    calls: tuple[CallSite, ...] = ()  # the block calls it is in, innermost first


@dataclass(frozen=True)
class Row:
    """A row of the folded summary: a layer, or a block call with every layer in it."""

    name: str
    op: str  # the op, or the block's name
    type: object  # the layer's type, or that of the block call's last layer
    params: int
    line: int | None
    layers: int = 1  # how many layers the row stands for
    block: bool = False  # a block call folded into one row


SCREEN_ROWS = 40  # the default summary folds blocks until it has at most this many rows


@dataclass(frozen=True)
class WeightSpec:
    """A weight a model needs: its name, shape, dtype and Keras' default initializer."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    init: str
    trainable: bool


@dataclass(frozen=True)
class Model:
    """A checked model: the IR graph, its train section, its warnings, and the sources read."""

    graph: Graph
    train: TrainSpec | None
    warnings: tuple[Diagnostic, ...]
    sources: SourceMap
    path: str
    # sizes of symbolic dims for the FLOPs (`--dim T=128`); the batch and any other symbol
    # not given count as 1, and `assumed_dims` names the latter
    dims: Mapping[str, int] = field(default_factory=dict)

    def with_dims(self, dims: Mapping[str, int] | None) -> Model:
        """This model with FLOPs counted at `dims` (a symbol of no input is a ValueError)."""
        known = self.batch_symbols + self.size_symbols
        unknown = [k for k in dims or {} if k not in known]
        if unknown:
            listed = ", ".join(known) or "none"
            raise ValueError(
                f"{unknown[0]} is not a symbolic dim of the model's inputs (they have {listed})"
            )
        return replace(self, dims=dict(dims or {})) if dims else self

    @property
    def batch_symbols(self) -> list[str]:
        """The symbols at axis 0 of the inputs (the batch: N)."""
        out: list[str] = []
        for name in self.graph.inputs:
            shape = self.graph[name].tensor_type.shape
            if shape and isinstance(shape[0], str) and shape[0] not in out:
                out.append(shape[0])
        return out

    @property
    def size_symbols(self) -> list[str]:
        """The other symbols of the inputs (T, H, W), in order."""
        batch, out = self.batch_symbols, []
        for name in self.graph.inputs:
            for d in self.graph[name].tensor_type.shape:
                for p in d.split("*") if isinstance(d, str) else ():
                    if not p.isdigit() and p not in batch and p not in out:
                        out.append(p)
        return out

    @property
    def assumed_dims(self) -> list[str]:
        """The non-batch symbols the FLOPs count as 1 because no size was given."""
        return [s for s in self.size_symbols if s not in self.dims]

    @cached_property
    def weights(self) -> dict[str, WeightSpec]:
        """Every weight by name, in graph order."""
        return {
            n.name: WeightSpec(
                n.name,
                tuple(int(d) for d in n.tensor_type.shape),
                n.tensor_type.dtype,
                n.attrs["init"],
                n.attrs["trainable"],
            )
            for n in self.graph.params
        }

    @cached_property
    def layers(self) -> tuple[Layer, ...]:
        """One entry per op node (weights counted with the op that owns them)."""
        from .ops import OPS

        g = self.graph
        rows = []
        # per sample: the batch is 1 (`N*T` then multiplies out); dims not given stay symbols
        sizes = {**self.dims, **dict.fromkeys(self.batch_symbols, 1)} if self.dims else {}
        for n in g.nodes:
            if n.op in ("input", "param", "constant", "item"):
                continue
            ws = [g[i] for i in n.inputs if g[i].op == "param"]
            params = sum(w.tensor_type.numel() for w in ws)
            trainable = sum(w.tensor_type.numel() for w in ws if w.attrs["trainable"])
            in_types = [_sized(g[i].tensor_type, sizes) for i in n.inputs if g[i].op != "param"]
            assert n.type is not None
            out = n.type
            out = tuple(_sized(t, sizes) for t in out) if isinstance(out, tuple) else out
            flops = OPS[n.op].count_flops(in_types, _sized(out, sizes), n.attrs)
            rows.append(
                Layer(
                    n.name,
                    n.op,
                    n.type,
                    params,
                    trainable,
                    flops,
                    n.span.line if n.span else None,
                    n.calls,
                )
            )
        return tuple(rows)

    def rows(self, depth: int | None = None) -> tuple[Row, ...]:
        """The layers as summary rows, each block call `depth` deep (1: the model body's own
        calls) folded into one row; None: every layer."""
        out: list[Row] = []
        group: list[Layer] = []
        key = ""
        for layer in self.layers:
            inside = depth is not None and len(layer.calls) >= depth
            prefix = ".".join(layer.name.split(".")[:depth]) if inside else ""
            if group and prefix != key:
                out.append(_folded(group, key, depth))
                group = []
            if inside:
                key = prefix
                group.append(layer)
            else:
                out.append(Row(layer.name, layer.op, layer.type, layer.params, layer.line))
        if group:
            out.append(_folded(group, key, depth))
        return tuple(out)

    def summary_depth(self, max_rows: int = SCREEN_ROWS) -> int | None:
        """The deepest folding whose summary has at most `max_rows` rows (None: every layer
        fits, or there are no blocks to fold); 1 when even that has more."""
        deepest = max((len(layer.calls) for layer in self.layers), default=0)
        if deepest == 0 or len(self.layers) <= max_rows:
            return None
        for depth in range(deepest, 0, -1):
            if len(self.rows(depth)) <= max_rows:
                return depth
        return 1

    @property
    def layer_count(self) -> int:
        """How many layers `layers` has (without counting their FLOPs)."""
        return sum(n.op not in ("input", "param", "constant", "item") for n in self.graph.nodes)

    @property
    def total_params(self) -> int:
        return sum(w.numel() for w in self._weight_types())

    @property
    def trainable_params(self) -> int:
        return sum(n.tensor_type.numel() for n in self.graph.params if n.attrs["trainable"])

    @property
    def flops(self) -> int:
        """Floating-point operations for one sample (symbolic dims at `dims`, else 1)."""
        return sum(layer.flops for layer in self.layers)

    def _weight_types(self) -> list[TensorType]:
        return [n.tensor_type for n in self.graph.params]

    def to_json(self) -> dict:
        """The summary as plain data (for `--json`)."""
        g = self.graph
        return {
            "model": g.name,
            "path": self.path,
            "inputs": [{"name": i, "type": str(g[i].type)} for i in g.inputs],
            "outputs": [{"name": o, "value": v, "type": str(g[v].type)} for o, v in g.outputs],
            "layers": [
                {
                    "name": r.name,
                    "op": r.op,
                    "type": _type_str(r.type),
                    "params": r.params,
                    "trainable": r.trainable,
                    "flops": r.flops,
                    "line": r.line,
                }
                for r in self.layers
            ],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.total_params - self.trainable_params,
            "flops": self.flops,
            "dims": {
                **{k: v for k, v in self.dims.items() if k not in self.batch_symbols},
                **{k: 1 for k in self.assumed_dims},
            },
            "assumed_dims": self.assumed_dims,
            "weights": [
                {
                    "name": w.name,
                    "shape": list(w.shape),
                    "dtype": w.dtype,
                    "init": w.init,
                    "trainable": w.trainable,
                }
                for w in self.weights.values()
            ],
            "warnings": [d.to_json() for d in self.warnings],
        }


def _folded(group: list[Layer], name: str, depth: int | None) -> Row:
    """One row for the layers of one block call."""
    assert depth is not None
    call = group[0].calls[len(group[0].calls) - depth]  # calls are innermost first
    return Row(
        name,
        call.block,
        group[-1].type,
        sum(layer.params for layer in group),
        call.span.line,
        len(group),
        block=True,
    )


def _sized(t: Any, sizes: Mapping[str, int]) -> Any:
    """A tensor type with the symbols in `sizes` replaced by their sizes (for FLOPs)."""
    if not sizes or not isinstance(t, TensorType):
        return t
    shape = tuple(
        d
        if not isinstance(d, str) or not all(p in sizes or p.isdigit() for p in d.split("*"))
        else math.prod(sizes[p] if p in sizes else int(p) for p in d.split("*"))
        for d in t.shape
    )
    return t.with_shape(shape)


def _type_str(t: object) -> str:
    if isinstance(t, tuple):
        return "(" + ", ".join(str(x) for x in t) + ")"
    return str(t)
