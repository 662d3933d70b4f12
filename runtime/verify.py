"""`netc verify`: check what a user deploys against the numpy reference, then point at the first
source line whose value diverges.

Two checks, in this order (the reference is runtime/reference.py's op meanings, in float64):

1. The deployed session. The model is compiled and loaded exactly as `netc run` does it
   (`netc.runtime.load(model, target=..., level=..., device=..., graph_optimization=...)`: the
   same passes, the same emitted artifact, the same runtime options, ONNX Runtime's optimizer
   at "all" unless another level is asked for), and its final outputs are compared with the
   reference of the source graph on four kinds of seeded inputs (INPUT_KINDS): standard normal,
   all negative, large and near zero. These are the inputs on which runtimes' fusions go wrong
   (a max over an all-negative window, a pad folded into an op's own padding).
2. Value by value. The compiled graph is emitted with every value an IR node computes added as
   an extra output (each target's `run_values`); one run on the inputs of the first kind whose
   outputs differed (normal ones when none did) gives every value. Each node, in topological
   order, is checked *on its own*: its op's numpy meaning runs on the backend's own values of
   its inputs (widened to float64), so a node fed wrong inputs but computing correctly from
   them is never blamed and the first node that fails is the cause of what follows. A
   backend that cannot load or run the model is bisected for the longest prefix of values
   that does run; the node after it is reported as the one it fails to compute.

Exposing every value keeps a runtime from fusing across IR values, so a fusion of the deployed
session can be wrong while every value agrees on its own. Then each value is computed alone,
in an artifact whose only output it is (everything before it fused as in deployment), and a
bisection finds the first value that differs there while its inputs do not: the node the
runtime's optimizer gets wrong. When the reference of the optimized graph already differs from
the reference of the source, netc's own passes changed the outputs instead.

Weights: randomized by default (`netc.weights.randomized_weights`: every bias, batchnorm
statistic and gamma drawn, so that a dropped or misplaced one shows), the seeded initial
weights with `initial=True` (what `netc run` uses without weights), or a file or dict.

Tolerances are netc.runtime.tolerance's, one table: "model" for the deployed outputs and for
values computed alone (rounding accumulates over the layers before them), "op" for a node
checked on its own inputs; the device's rows ("cuda" allows TF32). Integer and bool values
must be equal. `rtol`/`atol` override the float values.

The modules: verify_inputs.py (sizes and inputs), verify_values.py (every value as a backend
computes it), verify_compare.py (the comparisons and the search for a fusion gone wrong),
verify_report.py (what was found, rendered); this one runs them in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from netc import driver
from netc.dims import check_bounds, graph_bounds
from netc.source import NetcError, error
from netc.summary import Model

from . import reference
from .onnx import GRAPH_OPTIMIZATION  # ONNX Runtime's optimizer levels (a light import)
from .verify_compare import compare, explain, output_check
from .verify_inputs import (
    INPUT_KINDS,
    MAX_INT_INPUT,
    OTHER_SYMBOL_SIZE,
    random_inputs,
    symbol_sizes,
)
from .verify_report import Check, Divergence, OutputCheck, Report
from .verify_values import SOURCES, Backend, Key, run_values

__all__ = [
    "INPUT_KINDS",
    "MAX_INT_INPUT",
    "OTHER_SYMBOL_SIZE",
    "SOURCES",
    "Backend",
    "Check",
    "Divergence",
    "Key",
    "OutputCheck",
    "Report",
    "random_inputs",
    "run_values",
    "symbol_sizes",
    "verify",
]


def verify(
    model: Model,
    *,
    target: str = "onnx",
    level: int = 2,
    weights: Any = None,
    initial: bool = False,
    seed: int = 0,
    batch: int = 2,
    symbols: Mapping[str, int] | None = None,
    device: str = "auto",
    graph_optimization: str = "all",
    kinds: tuple[str, ...] = tuple(INPUT_KINDS),
    rtol: float | None = None,
    atol: float | None = None,
) -> Report:
    """Check `model` as `netc run` deploys it on `target` at opt `level` (ONNX Runtime's
    optimizer at `graph_optimization`) on inputs of `kinds` (INPUT_KINDS), then value by value
    (see the module doc). `weights`: a file or dict; None: randomized from `seed`, or the
    seeded initial weights with `initial`."""
    from netc.weights import randomized_weights

    from .api import load

    spec = driver.target_spec(target)
    if graph_optimization not in GRAPH_OPTIMIZATION:
        raise error(
            f"unknown ONNX Runtime optimization level `{graph_optimization}`",
            hint=f"use {', '.join(GRAPH_OPTIMIZATION)}",
        )
    if target != "onnx" and graph_optimization != "all":
        raise error(f"the optimization level is ONNX Runtime's, not {target}'s")
    driver.backend(target)  # its framework is installed, or a NetcError naming the extra
    if weights is not None and initial:
        raise error("give either weights or the initial weights, not both")
    unknown = [k for k in kinds if k not in INPUT_KINDS]
    if unknown or not kinds:
        raise error(
            f"unknown input kind `{unknown[0]}`" if unknown else "no input kinds to check",
            hint=f"use {', '.join(INPUT_KINDS)}",
        )
    if weights is None and not initial:
        values: Mapping[str, np.ndarray] = randomized_weights(model.graph, seed)
    else:
        values = driver.model_weights(model, weights, seed)
    how = "given" if weights is not None else "initial" if initial else "randomized"
    graph, compiled = driver.optimized(model, values, level, keep_training=spec.trains)
    sizes = symbol_sizes(graph, batch, symbols)
    batch_symbols = {
        graph[i].tensor_type.shape[0] for i in graph.inputs if graph[i].tensor_type.rank
    }
    bounds = graph_bounds(model.graph)
    for b in bounds:  # a default size stays within what the model can take
        if b.symbol in sizes and b.symbol not in (symbols or {}):
            sizes[b.symbol] = min(sizes[b.symbol], b.most)
    check_bounds(bounds, sizes, model.sources)  # a given size past it: before any runtime
    feeds = {kind: random_inputs(graph, sizes, seed, kind) for kind in kinds}

    # 1. the deployed session (as `netc run` makes it) and its outputs on every kind of inputs
    artifact = driver.emit(model, target, weights=dict(values), level=level)
    outputs: list[OutputCheck] = []
    ran_on = device
    try:
        session = load(
            artifact, target=target, device=device, graph_optimization=graph_optimization
        )
    except NetcError as e:  # a lowering the runtime refuses, or the device or options
        refused: NetcError | None = e
        outputs.append(OutputCheck(kinds[0], "*", np.inf, failure=e.diagnostics[0].message))
    else:
        refused = None
        ran_on = str(getattr(session, "device", device))
        for kind, feed in feeds.items():
            want = reference.run(model.graph, feed, values, wide=True)
            try:
                got = session.run(feed)
            except NetcError as e:
                outputs.append(OutputCheck(kind, "*", np.inf, failure=e.diagnostics[0].message))
                continue
            outputs += [
                output_check(kind, name, got.get(name), w, ran_on, rtol, atol)
                for name, w in want.items()
            ]

    # 2. value by value, on the inputs the deployed session got wrong first
    failed = next((o for o in outputs if not o.ok), None)
    kind = failed.kind if failed is not None else kinds[0]
    inputs = feeds[kind]
    backend = run_values(target, graph, compiled, inputs, ran_on, graph_optimization)
    if refused is not None and backend.failure is None:
        raise refused  # not a value the backend fails to compute: the device or an option
    divergences, checks, compared = compare(graph, compiled, inputs, backend, sizes, rtol, atol)
    divergences = [replace(d, kind=kind) for d in divergences]
    if failed is not None and failed.failure is None and not divergences:
        found = explain(
            model,
            graph,
            compiled,
            values,
            inputs,
            failed,
            target,
            backend.device,
            graph_optimization,
            sizes,
            rtol,
            atol,
        )
        divergences = [replace(found, kind=kind)]
    return Report(
        model=graph.name,
        path=model.path,
        target=target,
        level=level,
        device=backend.device,
        symbols=dict(sizes),
        assumed=tuple(s for s in sizes if s not in (symbols or {}) and s not in batch_symbols),
        compared=compared,
        divergences=tuple(divergences),
        checks=tuple(checks),
        sources=model.sources,
        outputs=tuple(outputs),
        graph_optimization=graph_optimization,
        weights=how,
        seed=seed,
    )
