"""The optimizer: passes over the IR and the pipeline that runs them at an opt level.

A pass is a plain function `(graph, weights) -> (graph, weights)`; it returns the same graph
object when nothing changed and never writes into the weights it was given (folded weights
are new arrays under new names). `optimize` runs the pipeline of a level, optionally checking
every pass (`verify=True`, see checking.py) and recording what each did (`stats`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from ..ir import Graph, print_graph
from ..ir import verify as verify_ir
from .activation import fuse_activation
from .batchnorm import fold_batchnorm
from .checking import Checker, Pass, PassError, PassStats, read_only, record, timed
from .common_subexpressions import eliminate_common_subexpressions
from .constants import fold_constants
from .dead_nodes import eliminate_dead_nodes
from .inference_ops import eliminate_inference_ops, eliminate_noop_ops
from .matmul_add import fuse_matmul_add
from .pad import fold_pad
from .scale_shift import fold_scale_shift
from .transposes import cancel_transposes

__all__ = [
    "optimize",
    "pipeline",
    "PASSES",
    "PassError",
    "PassStats",
    "LEVELS",
    "eliminate_dead_nodes",
    "eliminate_common_subexpressions",
    "eliminate_inference_ops",
    "eliminate_noop_ops",
    "fold_constants",
    "fold_batchnorm",
    "fold_scale_shift",
    "fuse_matmul_add",
    "fuse_activation",
    "cancel_transposes",
    "fold_pad",
]

O1 = (
    eliminate_inference_ops,  # dropout and no-op casts/reshapes/slices go first: they hide patterns
    fold_constants,  # computations on constants alone become constants
    eliminate_dead_nodes,  # what folding left unread
)

O2 = (
    eliminate_inference_ops,  # as in O1: later patterns (conv -> batchnorm) see through dropout
    fold_constants,  # merges constant chains, so scale_shift sees one constant
    fold_batchnorm,  # before activation fusion, which would hide the conv
    fold_scale_shift,  # per-channel `* c` / `+ c` after a conv, also after its batchnorm
    fuse_matmul_add,  # `x @ W + b` -> dense, which activation fusion then takes
    cancel_transposes,  # transpose/reshape pairs, before CSE compares what is left
    fold_pad,  # pad -> conv/maxpool padding; reads relus still unfused
    fuse_activation,  # conv/dense (+ residual) + activation -> one fused node
    eliminate_common_subexpressions,  # after the rewrites that make nodes equal
    eliminate_dead_nodes,  # folding and fusion leave orphans (old weights included)
)

# keep_training (a Keras model that still trains): dropout and batchnorm act in training, and
# every trainable weight keeps its name and value, so nothing folds into a kernel.
O1_TRAINING = (
    eliminate_noop_ops,  # eliminate_inference_ops, keeping dropout
    fold_constants,
    eliminate_dead_nodes,
)

O2_TRAINING = (
    eliminate_noop_ops,
    fold_constants,
    cancel_transposes,
    fold_pad,
    fuse_activation,  # Keras layers take an activation; the weights stay as they are
    eliminate_common_subexpressions,
    eliminate_dead_nodes,
)

LEVELS: dict[int, tuple[Pass, ...]] = {0: (), 1: O1, 2: O2}
TRAINING_LEVELS: dict[int, tuple[Pass, ...]] = {0: (), 1: O1_TRAINING, 2: O2_TRAINING}

# Every pass by name (for --print-after and messages); the pipelines above are the order.
PASSES: dict[str, Pass] = {p.__name__: p for p in (*O2, eliminate_noop_ops)}


def pipeline(level: int, *, keep_training: bool = False) -> tuple[Pass, ...]:
    """The passes `optimize` runs at `level` (0, 1 or 2), in order."""
    table = TRAINING_LEVELS if keep_training else LEVELS
    if level not in table:
        raise ValueError(f"unknown opt level {level!r}; the levels are 0, 1 and 2")
    return table[level]


def optimize(
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    level: int = 2,
    *,
    keep_training: bool = False,
    verify: bool = False,
    print_after: Iterable[str] = (),
    stats: dict[str, PassStats] | None = None,
    on_print: Callable[[str, str], None] | None = None,
    seed: int = 0,
) -> tuple[Graph, Mapping[str, np.ndarray]]:
    """Run the passes of opt `level` on (graph, weights); returns the new (graph, weights).

    `keep_training` keeps what training needs (dropout, batchnorm, weights as they are).
    `verify` checks the IR after every pass and runs the graph before and after each pass
    through the reference on `seed`ed random inputs, raising PassError that names the first
    pass that broke an invariant or changed an output beyond tolerance (see checking.py).
    `print_after` names passes (or "all") whose output IR goes to `on_print(pass name, text)`,
    by default written to stderr. `stats`, a dict, receives a PassStats per pass name.
    """
    passes = pipeline(level, keep_training=keep_training)
    wanted = set(print_after)
    unknown = wanted - set(PASSES) - {"all"}
    if unknown:
        raise ValueError(
            f"unknown pass {', '.join(sorted(unknown))}; the passes are {', '.join(PASSES)}"
        )
    emit = on_print or _print_to_stderr
    checker, given = None, weights
    if verify:
        verify_ir(graph, after="the input to optimize")
        weights = viewed = read_only(weights)  # a pass that writes into a weight fails loudly
        checker = Checker(graph, weights, seed)
    for pass_ in passes:
        name = pass_.__name__
        new, new_weights, seconds = timed(pass_, graph, weights)
        if checker is not None:
            checker.check(
                name, graph, new, read_only(new_weights), weights_changed=new_weights is not weights
            )
        if stats is not None:
            record(stats, name, graph, new, seconds)
        if name in wanted or "all" in wanted:
            emit(name, print_graph(new))
        graph, weights = new, new_weights
    if verify and weights is viewed:  # no pass changed the weights: the caller's own dict
        weights = given
    return graph, weights


def _print_to_stderr(name: str, text: str) -> None:
    print(f"# IR after {name}\n{text}", file=sys.stderr)
