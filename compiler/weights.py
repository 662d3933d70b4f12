"""Weights: Keras' initializers, seeded per weight name, and loading/saving by name.

Each weight draws from its own generator, seeded from (seed, weight name), so a weight's
initial value does not change when another layer is added or removed.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import warnings
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .ir import Graph, numpy_dtype
from .lazy import numpy as np
from .source import Diagnostic, NetcError, error, format_value

if TYPE_CHECKING:
    from .limits import Limits


class WeightWarning(UserWarning):
    """Weights that load but are likely wrong (NaN or infinite values); `diagnostics` has one
    warning per weight, at the layer that owns it, which the command line shows."""

    def __init__(self, message: str, diagnostics: tuple[Diagnostic, ...] = ()):
        super().__init__(message)
        self.diagnostics = diagnostics


def _rng(seed: int, name: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras' compute_fans: dense [in, out]; conv [*k, in, out] times the receptive field; a
    vector's fans are its length; a scalar's 1."""
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


# --- initializers: Keras 3's, by name and arguments ---------------------------------------------

# name: its arguments in Keras' order with Keras' defaults (the seed aside: netc seeds every
# weight from the model's seed and the weight's name)
INITIALIZER_ARGS: dict[str, tuple[tuple[str, Any], ...]] = {
    "zeros": (),
    "ones": (),
    "constant": (("value", 0.0),),
    "glorot_uniform": (),
    "glorot_normal": (),
    "he_uniform": (),
    "he_normal": (),
    "lecun_uniform": (),
    "lecun_normal": (),
    "orthogonal": (("gain", 1.0),),
    "random_normal": (("mean", 0.0), ("stddev", 0.05)),
    "random_uniform": (("minval", -0.05), ("maxval", 0.05)),
    "truncated_normal": (("mean", 0.0), ("stddev", 0.05)),
    "variance_scaling": (
        ("scale", 1.0),
        ("mode", "fan_in"),
        ("distribution", "truncated_normal"),
    ),
    # Keras' short strings: RandomUniform() and RandomNormal() with their defaults
    "uniform": (),
    "normal": (),
    # LSTM's bias with Keras' unit_forget_bias: `rest` for the i, c, o gates, ones for f
    "lstm_bias": (("rest", "zeros"),),
}
# the names a .net file writes (lstm_bias is lstm's own, through its bias_init)
USER_INITIALIZERS = tuple(n for n in INITIALIZER_ARGS if n != "lstm_bias")
_CHOICES = {
    "mode": ("fan_in", "fan_out", "fan_avg"),
    "distribution": ("truncated_normal", "untruncated_normal", "uniform", "normal"),
}
# scale, mode, distribution of Keras' VarianceScaling subclasses
_VARIANCE_SCALING = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
}


@dataclass(frozen=True)
class Initializer:
    """An initializer: Keras' name and the arguments that differ from Keras' defaults.
    `str()` is its canonical text, which a `param` node stores as its `init`:
    `glorot_uniform`, `constant(value=1e-06)`, `random_normal(stddev=0.02)`."""

    name: str
    args: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        if not self.args:
            return self.name
        return f"{self.name}({', '.join(f'{k}={format_value(v)}' for k, v in self.args)})"

    __repr__ = __str__

    @property
    def kwargs(self) -> dict[str, Any]:
        """Every argument, defaults included."""
        return {**dict(INITIALIZER_ARGS[self.name]), **dict(self.args)}


def make_initializer(name: str, *args: Any, **kwargs: Any) -> Initializer:
    """`name(args...)` checked against Keras' arguments; ValueError says what is wrong."""
    if name not in INITIALIZER_ARGS:
        raise ValueError(f'unknown initializer "{name}"')
    spec = dict(INITIALIZER_ARGS[name])
    if len(args) > len(spec):
        most = f"at most {len(spec)}" if spec else "no"
        raise ValueError(
            f"initializer `{name}` takes {most} argument{'' if len(spec) == 1 else 's'}, "
            f"got {len(args)}"
        )
    given = dict(zip(spec, args))
    for k, v in kwargs.items():
        if k not in spec:
            known = ", ".join(f"`{a}`" for a in spec) or "none"
            raise ValueError(f"initializer `{name}` has no argument `{k}` (it takes {known})")
        if k in given:
            raise ValueError(f"initializer `{name}`: `{k}` is given twice")
        given[k] = v
    for k, v in given.items():
        if isinstance(spec[k], float):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                got = format_value(v)
                raise ValueError(f"initializer `{name}`: `{k}` must be a number, got {got}")
            given[k] = float(v)
        elif k == "rest":
            given[k] = str(canonical_initializer(v))
        elif v not in _CHOICES[k]:
            choices = " or ".join(f'"{c}"' for c in _CHOICES[k])
            got = format_value(v)
            raise ValueError(f"initializer `{name}`: `{k}` must be {choices}, got {got}")
    if given.get("distribution") == "normal":  # Keras' alias
        given["distribution"] = "truncated_normal"
    full = {**spec, **given}
    if full.get("scale", 1.0) <= 0:
        raise ValueError(f"initializer `{name}`: `scale` must be > 0, got {full['scale']}")
    if full.get("stddev", 0.0) < 0:
        raise ValueError(f"initializer `{name}`: `stddev` must be >= 0, got {full['stddev']}")
    if full.get("minval", 0.0) > full.get("maxval", 0.0):
        raise ValueError(f"initializer `{name}`: `minval` must be <= `maxval`")
    return Initializer(name, tuple((k, v) for k, v in full.items() if v != spec[k]))


_ARG = re.compile(r'\s*([a-z_]+)=("(?:[^"\\]|\\.)*"|[-+0-9.eE]+)\s*(?:,|$)')


@functools.lru_cache(maxsize=4096)
def parse_initializer(text: str) -> Initializer:
    """The Initializer a canonical text (or a bare name) stands for; ValueError otherwise."""
    m = re.fullmatch(r"\s*([a-z_]+)\s*(?:\((.*)\))?\s*", text, re.S)
    if m is None:
        raise ValueError(f'unknown initializer "{text}"')
    kwargs: dict[str, Any] = {}
    rest, pos = m.group(2) or "", 0
    while pos < len(rest):
        arg = _ARG.match(rest, pos)
        if arg is None or arg.end() == pos:
            raise ValueError(f'cannot read initializer "{text}"')
        key, value = arg.groups()
        if value.startswith('"'):
            kwargs[key] = re.sub(r"\\(.)", r"\1", value[1:-1])
        else:
            try:
                kwargs[key] = float(value)
            except ValueError:
                raise ValueError(f'cannot read initializer "{text}"') from None
        pos = arg.end()
    return make_initializer(m.group(1), **kwargs)


def canonical_initializer(value: Any) -> Initializer:
    """An Initializer, or a string naming one, as an Initializer; ValueError otherwise."""
    if isinstance(value, Initializer):
        return value
    if isinstance(value, str):
        return parse_initializer(value)
    raise ValueError(f"not an initializer: {format_value(value)}")


def check_initializer(init: str, shape: tuple[int, ...]) -> str | None:
    """Why `init` cannot initialize a weight of `shape` (as Keras would refuse), or None."""
    if parse_initializer(init).name == "orthogonal" and len(shape) < 2:
        return f"the orthogonal initializer needs a weight of rank >= 2, got shape {list(shape)}"
    return None


def _truncated_normal(
    rng: np.random.Generator, mean: float, stddev: float, shape: tuple[int, ...]
) -> np.ndarray:
    """TF's truncated normal: values more than 2 deviations from the mean are drawn again.
    (Only the values just drawn again are looked at again: in order, so the stream is the
    whole-array loop's.)"""
    out = rng.standard_normal(shape)  # normal(0.0, 1.0)'s values, without its 0.0 + 1.0 * z
    flat = out.reshape(-1)
    bad = np.flatnonzero(np.abs(flat) > 2.0)
    while bad.size:
        flat[bad] = rng.normal(0.0, 1.0, bad.size)
        bad = bad[np.abs(flat[bad]) > 2.0]
    out *= stddev  # in place: the same roundings as mean + stddev * out
    out += mean
    return out


def _uniform(rng: np.random.Generator, low: float, high: float, shape: Any) -> np.ndarray:
    """`rng.uniform(low, high, shape)`, value for value (numpy computes `low + (high - low) *
    u` from the same stream of doubles `u`), in half the time: two passes over the array
    instead of a call per value."""
    out = rng.random(shape)
    out *= high - low
    out += low
    return out


def _variance_scaling(
    rng: np.random.Generator, shape: tuple[int, ...], scale: float, mode: str, distribution: str
) -> np.ndarray:
    """Keras' VarianceScaling: n = fan_in, fan_out or their mean (at least 1); a truncated
    normal of deviation sqrt(scale / n) / .8796... (the truncation's loss), a normal of
    sqrt(scale / n), or a uniform within +-sqrt(3 scale / n)."""
    fan_in, fan_out = _fans(shape)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    scale = scale / max(1.0, n)
    if distribution in ("truncated_normal", "normal"):
        return _truncated_normal(rng, 0.0, math.sqrt(scale) / 0.87962566103423978, shape)
    if distribution == "untruncated_normal":
        return rng.normal(0.0, math.sqrt(scale), shape)
    limit = math.sqrt(3.0 * scale)
    return _uniform(rng, -limit, limit, shape)


def _orthogonal(rng: np.random.Generator, shape: tuple[int, ...], gain: float) -> np.ndarray:
    """Keras' Orthogonal: QR of a normal matrix, sign-corrected, times the gain."""
    rows, cols = int(np.prod(shape[:-1])), shape[-1]
    a = rng.normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return gain * q[:rows, :cols].reshape(shape)


def _lstm_bias(rng: np.random.Generator, shape: tuple[int, ...], rest: str) -> np.ndarray:
    """Keras' LSTM bias with unit_forget_bias: rest(units), ones(units), rest(2 * units) for
    the gates i f c o (each piece initialized on its own shape, as Keras does)."""
    units = shape[-1] // 4
    init = parse_initializer(rest)
    return np.concatenate(
        [draw(init, rng, (units,)), np.ones(units), draw(init, rng, (2 * units,))]
    )


def draw(init: Initializer, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Initial values of a weight of `shape` (float64), as Keras' initializer draws them (the
    same distribution; the random stream is netc's own)."""
    a = init.kwargs
    name = init.name
    if name == "zeros":
        return np.zeros(shape)
    if name == "ones":
        return np.ones(shape)
    if name == "constant":
        return np.full(shape, a["value"])
    if name in _VARIANCE_SCALING:
        return _variance_scaling(rng, shape, *_VARIANCE_SCALING[name])
    if name == "variance_scaling":
        return _variance_scaling(rng, shape, a["scale"], a["mode"], a["distribution"])
    if name == "orthogonal":
        return _orthogonal(rng, shape, a["gain"])
    if name in ("random_normal", "normal"):
        return rng.normal(a.get("mean", 0.0), a.get("stddev", 0.05), shape)
    if name in ("random_uniform", "uniform"):
        return _uniform(rng, a.get("minval", -0.05), a.get("maxval", 0.05), shape)
    if name == "truncated_normal":
        return _truncated_normal(rng, a["mean"], a["stddev"], shape)
    if name == "lstm_bias":
        return _lstm_bias(rng, shape, a["rest"])
    raise AssertionError(f"initializer {name} has no numpy implementation")


_KERAS_CLASS = {
    "zeros": "Zeros",
    "ones": "Ones",
    "constant": "Constant",
    "glorot_uniform": "GlorotUniform",
    "glorot_normal": "GlorotNormal",
    "he_uniform": "HeUniform",
    "he_normal": "HeNormal",
    "lecun_uniform": "LecunUniform",
    "lecun_normal": "LecunNormal",
    "orthogonal": "Orthogonal",
    "random_normal": "RandomNormal",
    "random_uniform": "RandomUniform",
    "truncated_normal": "TruncatedNormal",
    "variance_scaling": "VarianceScaling",
    "uniform": "RandomUniform",
    "normal": "RandomNormal",
}


def keras_initializer(init: str) -> dict[str, Any]:
    """A param node's `init` as a Keras initializer config, for `keras.initializers.get`:
    `{"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 0.02}}`. lstm_bias has
    none: it is Keras' LSTM(bias_initializer=rest, unit_forget_bias=True)."""
    i = parse_initializer(init)
    if i.name == "lstm_bias":
        raise ValueError("lstm_bias is LSTM(bias_initializer=rest, unit_forget_bias=True)")
    return {"class_name": _KERAS_CLASS[i.name], "config": i.kwargs}


# Weights up to this many elements are drawn whole in float64 and rounded once (the values
# netc has always drawn); larger ones chunk by chunk into their own dtype, so a float32 weight
# never needs a float64 copy of itself.
CHUNK = 2**22


def initial_value(
    init: Initializer, rng: np.random.Generator, shape: tuple[int, ...], dtype: str
) -> np.ndarray:
    """A weight's initial value in its own dtype (`draw`'s distribution)."""
    target = numpy_dtype(dtype)
    n = math.prod(shape)
    if init.name in ("zeros", "ones", "constant"):
        fill = {"zeros": 0.0, "ones": 1.0}.get(init.name, init.kwargs.get("value", 0.0))
        return np.full(shape, fill, dtype=target)
    sample = _sampler(init, shape)
    if n <= CHUNK or sample is None:
        return np.asarray(draw(init, rng, shape), dtype=target)
    out = np.empty(n, dtype=target)
    for start in range(0, n, CHUNK):  # the same stream as one draw, but for the truncation
        k = min(CHUNK, n - start)
        out[start : start + k] = sample(rng, k)
    return out.reshape(shape)


def _sampler(init: Initializer, shape: tuple[int, ...]) -> Any:
    """`draw` for `init` as a function of (rng, count) drawing values one by one, for the
    initializers whose values are independent of each other; None for the others."""
    a = init.kwargs
    name = init.name
    if name in _VARIANCE_SCALING or name == "variance_scaling":
        scale, mode, dist = (
            _VARIANCE_SCALING[name]
            if name in _VARIANCE_SCALING
            else (a["scale"], a["mode"], a["distribution"])
        )
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
        scale = scale / max(1.0, n)
        if dist in ("truncated_normal", "normal"):
            sd = math.sqrt(scale) / 0.87962566103423978
            return lambda rng, k: _truncated_normal(rng, 0.0, sd, (k,))
        if dist == "untruncated_normal":
            return lambda rng, k: rng.normal(0.0, math.sqrt(scale), k)
        limit = math.sqrt(3.0 * scale)
        return lambda rng, k: _uniform(rng, -limit, limit, k)
    if name in ("random_normal", "normal"):
        return lambda rng, k: rng.normal(a.get("mean", 0.0), a.get("stddev", 0.05), k)
    if name in ("random_uniform", "uniform"):
        return lambda rng, k: _uniform(rng, a.get("minval", -0.05), a.get("maxval", 0.05), k)
    if name == "truncated_normal":
        return lambda rng, k: _truncated_normal(rng, a["mean"], a["stddev"], (k,))
    return None  # orthogonal, lstm_bias: drawn whole


def initial_weights(
    graph: Graph, seed: int = 0, limits: Limits | None = None
) -> dict[str, np.ndarray]:
    """Every weight of the graph, initialized as Keras would, deterministically from `seed`,
    each in its own dtype; an error before anything is allocated when they would take more
    memory than `limits.weight_bytes`."""
    from .limits import Limits, describe_bytes

    limit = (limits or Limits()).weight_bytes
    params = graph.params
    need = sum(
        math.prod(int(d) for d in n.tensor_type.shape) * numpy_dtype(n.tensor_type.dtype).itemsize
        for n in params
    )
    if need > limit:
        raise error(
            f"model `{graph.name}`'s weights need {describe_bytes(need)}, more than the limit "
            f"of {describe_bytes(limit)}",
            hint="raise it with `--limit weight-bytes=N` if the model is meant to be this large",
        )
    out = {}
    for n in params:
        t = n.tensor_type
        shape = tuple(int(d) for d in t.shape)
        try:
            out[n.name] = initial_value(
                parse_initializer(n.attrs["init"]), _rng(seed, n.name), shape, t.dtype
            )
        except MemoryError:
            raise error(
                f"not enough memory for weight `{n.name}` {t} (the weights need "
                f"{describe_bytes(need)})",
                span=n.span,
            ) from None
    return out


def randomized_weights(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """Weights in which every value matters, for checking a lowering or a pass: Keras' initial
    weights with every zero- or one-initialized weight (biases — an LSTM's too, whose gates
    other than forget start at zero — batchnorm's gamma, beta and statistics) drawn instead,
    so that dropping or misplacing one changes the outputs:
    variances and gammas in [0.5, 2), the others normal with deviation 0.3. Kernels keep
    Keras' scale, so deep networks stay numerically tame."""
    rng = np.random.default_rng(seed)
    inits = {n.name: parse_initializer(n.attrs["init"]).name for n in graph.params}
    out = {}
    for name, value in initial_weights(graph, seed).items():
        if name.endswith(("moving_variance", "gamma")):
            value = rng.uniform(0.5, 2.0, value.shape).astype(value.dtype)
        elif inits[name] in ("zeros", "ones", "constant", "lstm_bias"):
            value = rng.normal(0.0, 0.3, value.shape).astype(value.dtype)
        out[name] = value
    return out


# arrays check_weights has looked at (and warned about), by identity while they live
_CHECKED: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()


def check_weights(
    graph: Graph, weights: Mapping[str, np.ndarray], source: str = "weights"
) -> dict[str, np.ndarray]:
    """Weights matched to the graph by name: one error listing every missing, unexpected or
    mis-shaped weight; values are cast to each weight's dtype. Values that are NaN or infinite
    (in the file, or once cast) give a `WeightWarning` naming the weights."""
    problems, out, nonfinite = [], {}, []
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
        with np.errstate(over="ignore"):  # an overflow is reported below, by weight
            cast = value.astype(numpy_dtype(t.dtype), copy=False)
        seen = _CHECKED.get(id(cast)) is cast  # the backend checks what the driver checked
        _CHECKED[id(cast)] = cast
        if not seen and cast.dtype.kind == "f" and not np.isfinite(cast).all():
            bad = int(np.count_nonzero(~np.isfinite(cast)))
            overflowed = value.dtype.kind != "f" or np.isfinite(value).all()
            what = "value" if bad == 1 else "values"
            why = (
                f"{what} that become{'s' if bad == 1 else ''} infinite in {t.dtype}"
                if overflowed
                else f"NaN or infinite {what}"
            )
            nonfinite.append((name, f"weight `{name}` has {bad:,} {why} (of {cast.size:,})"))
        out[name] = cast
    if nonfinite:
        spans = {n.name: n.span for n in graph.params}
        warnings.warn(
            WeightWarning(
                f"{source}: {'; '.join(text for _, text in nonfinite)}",
                tuple(
                    Diagnostic("warning", f"{source}: {text}", spans.get(name))
                    for name, text in nonfinite
                ),
            ),
            stacklevel=2,
        )
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
    if not p.is_file():  # a device or a pipe could block, or never end
        raise error(f"{p} is not a regular file, not a weights file")
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
