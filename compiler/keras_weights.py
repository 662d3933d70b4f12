"""Keras weights into a netc model, paired by the two graphs' structure, never by name or order.

`from_keras(model, source)` reads a Keras model (a `keras.Model`, a `.keras` file, or a
`.weights.h5` file with the architecture it belongs to) and reduces both graphs to a skeleton:
the inputs, the layers that hold weights, the joins (concat, add, mul, ...) and the outputs,
linked by which feeds which; weightless one-input ops (activations, padding, pooling, reshapes)
are the links. The skeletons are paired by colour refinement: a vertex is first described by
its kind and weight shapes, then, round after round, by what it reads (in order at a concat)
and what reads it, until nothing more splits. Every netc layer must end up with exactly one
Keras layer of its colour; then the settings the weights do not show (strides, padding,
epsilon, activation, output shape) are compared pair by pair. Where a layer has no
counterpart, several, or different settings, a NetcError names both sides: the netc layer at
its source line and the Keras layer. docs/keras-weights.md tells the whole story.

The skeletons are `keras_skeleton`, the pairing and the comparison of settings
`keras_pairing`; this module reads Keras models, gives the weights and runs both models to
compare them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .ir import Graph
from .keras_pairing import Pairing, check_pairs, describe, diagnostic, netc_activation, pair
from .keras_skeleton import KERAS_OPS, Vertex, functional_model, keras_skeleton, netc_skeleton
from .source import NetcError, error
from .summary import Model

__all__ = [
    "KERAS_OPS",  # the Keras layer classes netc pairs, by their netc op (extensible)
    "compare_outputs",
    "from_keras",
    "from_keras_model",
    "load_keras",
    "load_keras_architecture",
    "match",
    "weight_values",
]

# --- the weights -------------------------------------------------------------------------------


def weight_values(pairing: Pairing) -> dict[str, np.ndarray]:
    """Every netc weight, from its Keras partner. The layouts are netc's own (docs/ops.md: netc
    took Keras' layout for every op with weights), so values move as they are; the pairing has
    checked that every shape agrees."""
    out: dict[str, np.ndarray] = {}
    for a, b in pairing.pairs():
        for name, param in a.weights.items():
            value = np.asarray(b.weights[name].numpy())
            assert tuple(value.shape) == tuple(param.tensor_type.shape), (a.name, name)
            out[param.name] = value
    return out


def match(
    model: Model, keras_model: Any, pairs: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """The (netc layer, Keras layer) pairs of every layer with weights, in netc's order."""
    return [
        (a.name, b.name) for a, b in _pairing(model, keras_model, pairs).pairs() if a.has_weights
    ]


def _pairing(model: Model, keras_model: Any, pairs: Mapping[str, str] | None) -> Pairing:
    netc_side = netc_skeleton(model.graph)
    keras_side = keras_skeleton(keras_model)
    functional = functional_model(keras_model)
    n_in, k_in = len(model.graph.inputs), len(functional.inputs)
    n_out, k_out = len(model.graph.outputs), len(functional.outputs)
    if (n_in, n_out) != (k_in, k_out):
        raise error(
            f"model `{model.graph.name}` has {n_in} input(s) and {n_out} output(s), the Keras "
            f"model `{keras_model.name}` {k_in} and {k_out}",
            hint="inputs and outputs are paired by position",
        )
    pairing = pair(netc_side, keras_side, pairs, model)
    check_pairs(pairing, model)
    return pairing


def from_keras_model(
    model: Model, keras_model: Any, pairs: Mapping[str, str] | None = None
) -> tuple[dict[str, np.ndarray], list[tuple[str, str]]]:
    """`model`'s weights from a loaded Keras model, and the (netc, Keras) layer pairs. A
    model netc's Keras backend built records each netc weight's variable: its weights load by
    those names (`to_keras.weights_by_name`); any other is paired by structure."""
    from .weights import check_weights

    source = f"Keras model `{keras_model.name}`"
    recorded = getattr(keras_model, "netc", None)
    if isinstance(recorded, dict) and recorded.get("weights") and not pairs:
        from .backends.to_keras import weights_by_name

        values = check_weights(model.graph, weights_by_name(keras_model), source)
        layers = {
            name.rsplit(".", 1)[0]: path.split("/")[0] for name, path in recorded["weights"].items()
        }
        return values, sorted(layers.items())
    pairing = _pairing(model, keras_model, pairs)
    values = check_weights(model.graph, weight_values(pairing), source)
    return values, [(a.name, b.name) for a, b in pairing.pairs() if a.has_weights]


def from_keras(
    model: Model,
    source: Any,
    *,
    architecture: str | Path | None = None,
    pairs: Mapping[str, str] | None = None,
    check: bool = True,
) -> dict[str, np.ndarray]:
    """Every weight of `model` by netc name, taken from the Keras model `source` (a keras.Model,
    a `.keras` file, or a `.weights.h5` file with `architecture`: a `.keras` file or a JSON
    model config) by pairing the two graphs' structure; a NetcError naming both sides where a
    layer has no partner, several, or different settings. With `check`, both models then run
    on one random input (`compare_outputs`)."""
    keras_model = load_keras(source, architecture)
    values, _ = from_keras_model(model, keras_model, pairs)
    if check:
        compare_outputs(model, keras_model, values, pairs=pairs)
    return values


# --- running both ------------------------------------------------------------------------------


def compare_outputs(
    model: Model,
    keras_model: Any,
    weights: Mapping[str, np.ndarray],
    *,
    pairs: Mapping[str, str] | None = None,
    seed: int = 0,
) -> float | None:
    """Run netc's numpy reference (float32) and Keras (`training=False`) on one seeded random
    input at batch 2; return the largest absolute difference of the outputs, or None when the
    two models take inputs of different shapes. Outputs that differ beyond the model tolerance
    (netc.runtime.tolerance) raise a NetcError at the first paired layer whose values differ:
    what the weights cannot show (an activation, a pooling) differs between there and the
    paired layers before it."""
    # the oracle and the tolerance table live in the runtime; only this check needs them
    from netc.runtime.tolerance import mismatch

    functional = functional_model(keras_model)
    feed = _random_inputs(model.graph, functional, seed)
    if feed is None:
        return None
    values = _evaluate(model.graph, feed, weights)
    got = [values[v] for _, v in model.graph.outputs]
    want = keras_model(_keras_feed(feed, model.graph), training=False)
    want = [np.asarray(w) for w in (want if isinstance(want, (list, tuple)) else [want])]
    largest = max(float(np.max(np.abs(g - w), initial=0.0)) for g, w in zip(got, want))
    if all(mismatch(g, w.astype(g.dtype), scope="model") is None for g, w in zip(got, want)):
        return largest
    raise _first_difference(model, keras_model, pairs, feed, values, largest)


def _keras_feed(feed: Mapping[str, np.ndarray], graph: Graph) -> Any:
    """The inputs as a Keras model takes them: one array, or a list in the inputs' order."""
    arrays = [feed[i] for i in graph.inputs]
    return arrays[0] if len(arrays) == 1 else arrays


def _random_inputs(graph: Graph, functional: Any, seed: int) -> dict[str, np.ndarray] | None:
    from .ir import numpy_dtype

    rng = np.random.default_rng(seed)
    vocab = min([n.attrs["vocab"] for n in graph.nodes if n.op == "embedding"] or [2])
    feed = {}
    for name, keras_input in zip(graph.inputs, functional.inputs):
        t = graph[name].tensor_type
        theirs = tuple(keras_input.shape)
        if len(theirs) != t.rank:
            return None
        shape = []
        for axis, (mine, other) in enumerate(zip(t.shape, theirs)):
            if axis == 0:
                shape.append(2)
            elif isinstance(mine, int):
                if other is not None and other != mine:
                    return None
                shape.append(mine)
            else:
                shape.append(other if other is not None else 5)
        dtype = numpy_dtype(t.dtype)
        if t.is_float:
            feed[name] = rng.standard_normal(shape).astype(dtype)
        else:
            feed[name] = rng.integers(0, vocab, shape).astype(dtype)
    return feed


def _evaluate(
    graph: Graph, feed: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """Every value of the graph, by the ops' numpy meanings (the reference's loop, keeping the
    intermediate values for the comparison layer by layer)."""
    from .ops import OPS

    env: dict[str, Any] = {}
    for n in graph.nodes:
        if n.op == "input":
            env[n.name] = np.asarray(feed[n.name])
        elif n.op == "param":
            env[n.name] = np.asarray(weights[n.name])
        elif n.op == "constant":
            env[n.name] = n.attrs["value"].array
        elif n.op == "item":
            env[n.name] = env[n.inputs[0]][n.attrs["index"]]
        else:
            with np.errstate(over="ignore"):
                env[n.name] = OPS[n.op].evaluate([env[i] for i in n.inputs], n.attrs)
    return env


def _first_difference(
    model: Model,
    keras_model: Any,
    pairs: Mapping[str, str] | None,
    feed: Mapping[str, np.ndarray],
    values: dict,
    largest: float,
) -> NetcError:
    """The error for outputs that differ: at the first paired layer (in netc's order) whose
    values differ from its Keras partner's, when the Keras graph lets its values be read."""
    from netc.runtime.tolerance import mismatch

    keras = _keras()
    pairing = _pairing(model, keras_model, pairs)
    functional = functional_model(keras_model)
    graph = model.graph
    compared = []
    for a, b in pairing.pairs():
        if a.kind in ("input", "output") or b.ref[1] is None:
            continue
        layer, knode = b.ref
        name = a.ref.name
        activation = layer.get_config().get("activation") if a.has_weights else None
        if activation not in (None, "linear") and netc_activation(a.ref, graph):
            name = graph.readers[name][0]  # Keras' layer output is after its activation
        tensor = knode.output_tensors[0]
        if isinstance(a.ref.type, tuple):
            name = next(
                (
                    n.name
                    for n in graph.nodes
                    if n.op == "item" and n.inputs[0] == name and n.attrs["index"] == 0
                ),
                name,
            )
        compared.append((a, b, name, tensor))
    summary = f"the largest difference is {largest:.3g}"
    try:
        inputs = functional.inputs[0] if len(functional.inputs) == 1 else functional.inputs
        probe = keras.Model(inputs, [t for _, _, _, t in compared])
        theirs = probe(_keras_feed(feed, graph), training=False)
    except Exception:  # a nested model's tensors are not reachable from the outer inputs
        return error(
            f"with the weights paired, netc's outputs differ from Keras model "
            f"`{keras_model.name}`'s: {summary}",
            hint="the models differ where weights do not show (an activation, a pooling); "
            "`netc verify` and Keras' layer outputs can narrow it down",
        )
    if not isinstance(theirs, (list, tuple)):
        theirs = [theirs]
    agreed: dict[int, Vertex] = {}  # netc vertex index -> its Keras partner, values equal
    index = {id(v): i for i, v in enumerate(pairing.netc)}
    for (a, b, name, _), want in zip(compared, theirs):
        want = np.asarray(want)
        got = np.asarray(values[name])
        found = (
            f"shape {list(got.shape)}, Keras' {list(want.shape)}"
            if got.shape != want.shape
            else mismatch(got, want.astype(got.dtype), scope="model")
        )
        if found is None:
            agreed[index[id(a)]] = b
            continue
        inputs = [pairing.netc[i] for i, _ in a.inputs if pairing.netc[i].kind != "input"]
        if inputs and all(index[id(u)] in agreed for u in inputs):
            agreeing = ", ".join(
                f"netc's `{u.name}` with `{agreed[index[id(u)]].name}`" for u in inputs
            )
            before = f"its inputs agree with Keras': {agreeing}"
        elif not inputs:
            before = "it reads the model's inputs"
        else:
            before = "some of its inputs differ already, where Keras' values cannot be read"
        notes = [f"Keras' `{b.name}` ({type(b.ref[0]).__name__}): {found}", before]
        notes.append(f"at the outputs {summary}")
        return diagnostic(
            f"{describe(a).split(' (')[0]} (line {a.ref.span.line if a.ref.span else '?'}) "
            f"computes other values than Keras' `{b.name}`, with the same weights",
            a,
            notes,
            "the models differ between its inputs and it, where weights do not show: an "
            "activation, a pooling, a constant",
            model,
        )
    return error(
        f"with the weights paired, netc's outputs differ from Keras model "
        f"`{keras_model.name}`'s, after the last paired layer: {summary}",
        hint="the models differ after their last layers with weights (an activation, a pooling)",
    )


# --- reading Keras models ---------------------------------------------------------------------


def _keras() -> Any:
    """Keras, with TensorFlow imported quietly and netc's own Keras layers registered (so
    that a `.keras` file netc wrote loads); a NetcError naming the extra when missing."""
    from .backends import tensorflow

    try:
        tensorflow("--from-keras")
    except NetcError:
        raise error(
            "reading Keras weights needs TensorFlow and Keras, which are not installed",
            hint="pip install 'netc[tf]'",
        ) from None
    import keras

    from .backends import keras_layers  # noqa: F401  (registers netc>... layers)

    return keras


def load_keras(source: Any, architecture: str | Path | None = None) -> Any:
    """A keras.Model from a keras.Model (returned as it is), a `.keras` file, or a
    `.weights.h5` file loaded into the model `architecture` describes (a `.keras` file or a
    JSON config from `model.to_json()`). A `.weights.h5` alone is refused: Keras 3 addresses
    its layers by class and position, not by name, so loading it into any model but the one
    it was saved from can succeed with the wrong pairs. Never unpickles: Keras' safe mode
    refuses Lambda layers, whose code only pickled bytes hold."""
    if not isinstance(source, (str, Path)):
        if architecture is not None:
            raise error("an architecture is for a .weights.h5 file, not for a Keras model")
        return source
    path = Path(source)
    if not path.exists():
        raise error(f"no such Keras file: {path}")
    if path.name.endswith(".keras"):
        if architecture is not None:
            raise error(f"{path} holds its architecture; --keras-architecture is for .weights.h5")
        return _read(path, lambda keras: keras.saving.load_model(path, compile=False))
    if not path.name.endswith(".h5"):
        raise error(
            f"netc reads Keras models from .keras and .weights.h5 files, not {path.name}",
            hint="save the model with model.save('MODEL.keras')",
        )
    if architecture is None:
        raise error(
            f"{path} holds weights only: which layer feeds which is not in it, and Keras "
            f"addresses its layers by class and position, not by name",
            hint="pass the Keras model they were saved from: --keras-architecture MODEL.keras "
            "or a JSON file from model.to_json() (library: architecture=...)",
        )
    keras_model = load_keras_architecture(architecture)
    _read(path, lambda keras: keras_model.load_weights(path))
    return keras_model


def load_keras_architecture(path: str | Path) -> Any:
    """The Keras model a `.keras` file or a JSON config describes (weights as initialized)."""
    p = Path(path)
    if not p.exists():
        raise error(f"no such Keras architecture file: {p}")
    if p.name.endswith(".keras"):
        return _read(p, lambda keras: keras.saving.load_model(p, compile=False))
    if p.suffix == ".json":

        def build(keras: Any) -> Any:
            import json

            config = json.loads(p.read_text(encoding="utf-8"))
            return keras.saving.deserialize_keras_object(config, safe_mode=True)

        return _read(p, build)
    raise error(
        f"a Keras architecture is a .keras file or a .json config, not {p.name}",
        hint="write one with open('model.json', 'w').write(model.to_json())",
    )


def _read(path: Path, read: Any) -> Any:
    """Run `read(keras)`; Keras' errors become a NetcError naming the file (and its warnings
    about skipped variables, which come with an error, are not printed)."""
    import warnings

    keras = _keras()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return read(keras)
    except NetcError:
        raise
    except Exception as e:  # Keras raises ValueError, TypeError, OSError... for a bad file
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "safe_mode" in str(e) or "Lambda" in str(e):
            raise error(
                f"{path} holds a Lambda layer: its code is pickled Python, which netc never "
                f"loads (Keras' safe mode)",
                hint="replace the Lambda by built-in layers, or by a registered custom layer",
            ) from None
        raise error(f"cannot read Keras model {path}: {text}") from None
