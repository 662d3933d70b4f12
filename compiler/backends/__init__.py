"""Backends: one lowering module per target (`to_onnx`, `to_keras`, `to_tf`, `to_tvm`), each an
op table and one loop.

`Rules` is that op table, and `GraphContext` what every backend's lowering context reads of
the graph and its weights. Backend modules import their framework lazily, so importing this
package (or `netc`) never imports ONNX, TensorFlow or TVM; `tensorflow()` and `tvm()` are the
places TensorFlow and TVM are imported, quietly, with a clear error naming the extra when
missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ..ir import Graph, Node, TensorType
from ..lazy import numpy as np
from ..source import NetcError, error

F = TypeVar("F", bound=Callable[..., Any])


class GraphContext:
    """What a lowering context reads of the graph it lowers (`self.graph`) and its weights
    (`self.weights`, by name), the same in every backend."""

    graph: Graph
    weights: Any  # Mapping[str, np.ndarray]

    def type(self, name: str) -> TensorType:
        return self.graph[name].tensor_type

    def is_data(self, name: str) -> bool:
        """Whether `name` is a weight or a constant (its value is known at emit time)."""
        return self.graph[name].op in ("param", "constant")

    def array(self, name: str) -> Any:
        """The numpy value of weight or constant `name`."""
        node = self.graph[name]
        if node.op == "constant":
            return np.asarray(node.attrs["value"].array)
        return np.asarray(self.weights[name])


class Rules:
    """An op table: IR op name -> the function that lowers one node of that op."""

    def __init__(self, backend: str):
        self.backend = backend
        self.table: dict[str, Callable[..., Any]] = {}

    def on(self, *ops: str) -> Callable[[F], F]:
        """Register the decorated function as the rule for each of `ops`."""

        def register(rule: F) -> F:
            for name in ops:
                assert name not in self.table, f"{self.backend}: two rules for `{name}`"
                self.table[name] = rule
            return rule

        return register

    def __contains__(self, op: str) -> bool:
        return op in self.table

    def rule(self, node: Node) -> Callable[..., Any]:
        """The rule for `node`, or a diagnostic at its span when the backend has none."""
        if node.op not in self.table:
            raise self.cannot(node)
        return self.table[node.op]

    def cannot(self, node: Node, why: str = "") -> NetcError:
        """A located error: this backend cannot lower `node` (and why, when known)."""
        return error(
            f"the {self.backend} backend cannot lower `{node.op}`{why}", node.span, calls=node.calls
        )

    def missing(self, ops: Iterable[str]) -> list[str]:
        """The ops in `ops` without a rule, sorted."""
        return sorted(set(ops) - set(self.table))


def tensorflow(needed_by: str = "this") -> Any:
    """The `tensorflow` module, imported with its C++ start-up logging off; a NetcError naming
    the extra to install when TensorFlow is missing (`needed_by` names the target)."""
    import sys

    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # TensorFlow's C++ side logs banners to file descriptor 2 while it starts (absl's "All log
    # messages before InitializeLog", cudart stubs, cuInit failures on a machine without a
    # GPU): silence that descriptor while it imports and finds its devices
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(null, 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        except ImportError:
            raise error(
                f"the {needed_by} target needs TensorFlow, which is not installed",
                hint="pip install 'netc[tf]'",
            ) from None
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
    return tf


def tvm(needed_by: str = "tvm") -> Any:
    """The `tvm` module (apache-tvm), imported with its C++ start-up logging silenced; a
    NetcError naming the extra to install when it is missing (`needed_by` names the target)."""
    import sys

    if sys.modules.get("tvm") is not None:
        return sys.modules["tvm"]
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(null, 2)
        try:
            import tvm as tvm_module
        except ImportError:
            raise error(
                f"the {needed_by} target needs TVM (apache-tvm), which is not installed",
                hint="pip install 'netc[tvm]' (the PyPI package `tvm` is another project)",
            ) from None
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
    return tvm_module
