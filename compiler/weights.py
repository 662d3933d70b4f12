"""Weights: Keras' default initializers, seeded per weight name, and loading/saving by name.

Each weight draws from its own generator, seeded from (seed, weight name), so a weight's
initial value does not change when another layer is added or removed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .ir import Graph, numpy_dtype
from .source import NetcError, error


def _rng(seed: int, name: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras' fan computation: dense [in, out]; conv [*k, in, out] times the receptive field."""
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def _glorot_uniform(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    fan_in, fan_out = _fans(shape)
    limit = np.sqrt(6.0 / max(1.0, fan_in + fan_out))
    return rng.uniform(-limit, limit, shape)


def _orthogonal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Keras' Orthogonal: QR of a normal matrix, sign-corrected."""
    rows, cols = int(np.prod(shape[:-1])), shape[-1]
    a = rng.normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return q[:rows, :cols].reshape(shape)


def _lstm_bias(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    units = shape[-1] // 4
    out = np.zeros(shape)
    out[..., units : 2 * units] = 1.0  # unit_forget_bias: the forget gate (Keras order i f c o)
    return out


INITIALIZERS = {
    "zeros": lambda rng, shape: np.zeros(shape),
    "ones": lambda rng, shape: np.ones(shape),
    "glorot_uniform": _glorot_uniform,
    "orthogonal": _orthogonal,
    "uniform": lambda rng, shape: rng.uniform(-0.05, 0.05, shape),
    "lstm_bias": _lstm_bias,
}


def initial_weights(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """Every weight of the graph, initialized as Keras would, deterministically from `seed`."""
    out = {}
    for n in graph.params:
        t = n.tensor_type
        value = INITIALIZERS[n.attrs["init"]](_rng(seed, n.name), tuple(t.shape))
        out[n.name] = np.asarray(value, dtype=numpy_dtype(t.dtype))
    return out


def randomized_weights(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """Weights in which every value matters, for checking a lowering or a pass: Keras' initial
    weights with every zero- or one-initialized weight (biases, batchnorm's gamma, beta and
    statistics) drawn instead, so that dropping or misplacing one changes the outputs:
    variances and gammas in [0.5, 2), the others normal with deviation 0.3. Kernels keep
    Keras' scale, so deep networks stay numerically tame."""
    rng = np.random.default_rng(seed)
    inits = {n.name: n.attrs["init"] for n in graph.params}
    out = {}
    for name, value in initial_weights(graph, seed).items():
        if name.endswith(("moving_variance", "gamma")):
            value = rng.uniform(0.5, 2.0, value.shape).astype(value.dtype)
        elif inits[name] in ("zeros", "ones"):
            value = rng.normal(0.0, 0.3, value.shape).astype(value.dtype)
        out[name] = value
    return out


def check_weights(
    graph: Graph, weights: Mapping[str, np.ndarray], source: str = "weights"
) -> dict[str, np.ndarray]:
    """Weights matched to the graph by name: one error listing every missing, unexpected or
    mis-shaped weight; values are cast to each weight's dtype."""
    problems, out = [], {}
    expected = {n.name: n.tensor_type for n in graph.params}
    for name, t in expected.items():
        if name not in weights:
            problems.append(f"missing: {name} {t}")
            continue
        value = np.asarray(weights[name])
        if tuple(value.shape) != tuple(t.shape):
            problems.append(
                f"wrong shape: {name} is {list(value.shape)} in {source}, the model needs {t}"
            )
            continue
        if value.dtype.kind not in "fiub":
            problems.append(f"wrong dtype: {name} is {value.dtype} in {source}")
            continue
        out[name] = value.astype(numpy_dtype(t.dtype), copy=False)
    for name in weights:
        if name not in expected:
            problems.append(f"unexpected: {name} {list(np.shape(weights[name]))}")
    if problems:
        raise error(
            f"{source} does not fit model `{graph.name}` ({len(problems)} problem"
            f"{'s' if len(problems) > 1 else ''})",
            notes=problems,
            hint="`netc weights MODEL.net -o FILE` writes a file with every expected name",
        )
    return out


def load_weights(path: str | Path) -> dict[str, np.ndarray]:
    """Read `.npz` or `.safetensors` weights by name (never unpickles)."""
    p = Path(path)
    if not p.exists():
        raise error(f"no such weights file: {p}")
    try:
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        if p.suffix == ".safetensors":
            from safetensors.numpy import load_file

            return dict(load_file(str(p)))
    except NetcError:
        raise
    except Exception as e:  # a corrupt file: say which and why, no traceback
        raise error(f"cannot read weights from {p}: {e}") from None
    raise error(f"unknown weights format `{p.suffix}` for {p}", hint="use .npz or .safetensors")


def save_weights(weights: Mapping[str, np.ndarray], path: str | Path) -> None:
    """Write `.npz` or `.safetensors` atomically (temporary file, then rename)."""
    from .files import atomic_write

    p = Path(path)
    if p.suffix not in (".npz", ".safetensors"):
        raise error(f"unknown weights format `{p.suffix}` for {p}", hint="use .npz or .safetensors")

    def write(tmp: Path) -> None:
        arrays = {k: np.ascontiguousarray(v) for k, v in weights.items()}
        if p.suffix == ".npz":
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)  # type: ignore[arg-type]
        else:
            from safetensors.numpy import save_file

            save_file(arrays, str(tmp))

    atomic_write(p, write)
