"""Recurrent layers: `lstm` and `gru`, with Keras 3's gate orders, weight layouts and defaults.

Both scan axis 1 of an `[N, T, F]` input from a zero initial state (inference: no dropout, no
mask); the numpy meaning is a plain loop over time steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..ir import TensorType
from ..lazy import numpy as np
from ..weights import make_initializer
from .registry import (
    GLOROT_UNIFORM,
    ORTHOGONAL,
    ZEROS,
    Infer,
    Init,
    Param,
    ShapeError,
    expect_float,
    op,
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exact logistic function, written so that no branch overflows
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _check_sequence(name: str, x: TensorType, units: int) -> int:
    """Validate an [N, T, F] input and `units`; return the feature size F."""
    expect_float(name, x)
    if x.rank != 3:
        raise ShapeError(
            f"{name} needs a rank-3 input [N, T, F], got {x}",
            hint=f"{name} reads a sequence; reshape the input to [N, T, F]"
            if x.rank == 2
            else None,
        )
    if x.shape[1] == 0:
        raise ShapeError(f"{name} needs at least one time step, got {x}")
    if not isinstance(x.shape[2], int):
        raise ShapeError(f"{name} needs a known feature size F to create its weights, got {x}")
    if units < 1:
        raise ShapeError(f"{name} needs units >= 1, got {units}")
    return x.shape[2]


def _sequence_result(
    x: TensorType, units: int, return_sequences: bool, return_state: bool, n_states: int
) -> TensorType | tuple[TensorType, ...]:
    n = x.shape[0]
    out = x.with_shape((n, x.shape[1], units) if return_sequences else (n, units))
    if not return_state:
        return out
    return (out,) + (x.with_shape((n, units)),) * n_states


def _scan(
    name: str, x: np.ndarray, attrs: Mapping[str, Any], step: Any, states: tuple[np.ndarray, ...]
) -> Any:
    """Run `step(x_t, states) -> states` over time (h first in states); Keras' return values."""
    if x.shape[1] == 0:
        raise ValueError(f"{name} got an empty sequence (T = 0)")
    xs = x[:, ::-1] if attrs["go_backwards"] else x
    outputs = []
    for t in range(xs.shape[1]):
        states = step(xs[:, t], states)
        outputs.append(states[0])
    y = np.stack(outputs, axis=1) if attrs["return_sequences"] else outputs[-1]
    result = (y,) + tuple(states) if attrs["return_state"] else (y,)
    result = tuple(r.astype(x.dtype) for r in result)
    return result if attrs["return_state"] else result[0]


# --- lstm ----------------------------------------------------------------------------------


def _lstm_eval(inputs: Sequence[np.ndarray], attrs: Mapping[str, Any]) -> Any:
    x, kernel, recurrent_kernel, bias = inputs
    u = attrs["units"]

    def step(x_t, states):
        h, c = states
        z = x_t @ kernel + h @ recurrent_kernel + bias
        i, f, g, o = z[:, :u], z[:, u : 2 * u], z[:, 2 * u : 3 * u], z[:, 3 * u :]  # Keras: i f c o
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        return _sigmoid(o) * np.tanh(c), c

    zeros = np.zeros((x.shape[0], u), x.dtype)
    return _scan("lstm", x, attrs, step, (zeros, zeros))


def _lstm_params(
    x: TensorType,
    *,
    units: int,
    kernel_init: str = "glorot_uniform",
    recurrent_init: str = "orthogonal",
    bias_init: str = "zeros",
    **_: Any,
) -> dict[str, Param]:
    f = _check_sequence("lstm", x, units)
    # Keras' unit_forget_bias: bias_init for the i, c, o quarters, ones for the forget gate
    bias = "lstm_bias" if bias_init == "zeros" else str(make_initializer("lstm_bias", bias_init))
    return {
        "kernel": Param((f, 4 * units), kernel_init),
        "recurrent_kernel": Param((units, 4 * units), recurrent_init),
        "bias": Param((4 * units,), bias),
    }


def _lstm_flops(ins: Sequence[TensorType], out: Any, attrs: Mapping[str, Any]) -> int:
    t, f, u = ins[0].shape[1], ins[0].shape[2], attrs["units"]
    steps = t if isinstance(t, int) else 1
    # two matmuls + bias, 3 sigmoids and 2 tanh (4 each), 4 products/sums for c and h
    return steps * (8 * u * (f + u) + 4 * u + 20 * u + 4 * u)


@op("lstm", params=_lstm_params, evaluate=_lstm_eval, flops=_lstm_flops, category="recurrent")
def lstm(
    x,
    *,
    units: int,
    return_sequences: bool = False,
    return_state: bool = False,
    go_backwards: bool = False,
    kernel_init: Init = GLOROT_UNIFORM,
    recurrent_init: Init = ORTHOGONAL,
    bias_init: Init = ZEROS,
):
    """Long short-term memory layer over an `[N, T, F]` sequence (Keras `LSTM`).

    From zero states h and c, for each time step t (tanh activation, sigmoid recurrent
    activation, as in Keras 3):

        z = x_t @ kernel + h @ recurrent_kernel + bias      # [N, 4u], gates in order i f c o
        i, f, g, o = sigmoid(z_i), sigmoid(z_f), tanh(z_c), sigmoid(z_o)
        c = f * c + i * g
        h = o * tanh(c)

    Weights (Keras layout, so a Keras LSTM's weights copy over unchanged): `kernel [F, 4u]`
    (glorot_uniform), `recurrent_kernel [u, 4u]` (orthogonal), `bias [4u]` (`bias_init`,
    zeros, on the i, c, o quarters and ones on the forget quarter: Keras' unit_forget_bias).
    The gate order along the 4u axis is **i, f, c, o** (input, forget, cell candidate,
    output). ONNX's LSTM orders gates **i, o, f, c**, stores W/R transposed `[4u, F]`, and has
    a `[8u]` bias (input bias then recurrent bias): a lowering to ONNX reorders the quarters
    and pads the recurrent half with zeros. PyTorch orders gates i, f, g, o with two biases.

    Output: `[N, T, u]` (every step's h) with `return_sequences`, else `[N, u]` (the last
    h). With `return_state` the op has three results `(output, h, c)`, h and c `[N, u]` from
    the last step. `go_backwards` processes the time steps from last to first; as in Keras
    the returned sequence stays in processing order (it is *not* flipped back). T may be
    symbolic; F must be known. No masking, no dropout (inference semantics).
    `bidirectional(lstm(...))` is Keras' Bidirectional wrapper (language.md).
    """
    _check_sequence("lstm", x, units)
    attrs = dict(
        units=units,
        return_sequences=return_sequences,
        return_state=return_state,
        go_backwards=go_backwards,
    )
    return Infer(_sequence_result(x, units, return_sequences, return_state, 2), attrs)


# --- gru -----------------------------------------------------------------------------------


def _gru_eval(inputs: Sequence[np.ndarray], attrs: Mapping[str, Any]) -> Any:
    x, kernel, recurrent_kernel, bias = inputs
    u = attrs["units"]
    reset_after = attrs["reset_after"]
    input_bias, recurrent_bias = (bias[0], bias[1]) if reset_after else (bias, 0.0)

    def step(x_t, states):
        (h,) = states
        xz = x_t @ kernel + input_bias  # [N, 3u], gates in order z r h
        if reset_after:
            inner = h @ recurrent_kernel + recurrent_bias
        else:
            inner = h @ recurrent_kernel[:, : 2 * u]
        z = _sigmoid(xz[:, :u] + inner[:, :u])
        r = _sigmoid(xz[:, u : 2 * u] + inner[:, u : 2 * u])
        if reset_after:
            candidate = np.tanh(xz[:, 2 * u :] + r * inner[:, 2 * u :])
        else:
            candidate = np.tanh(xz[:, 2 * u :] + (r * h) @ recurrent_kernel[:, 2 * u :])
        return (z * h + (1.0 - z) * candidate,)

    return _scan("gru", x, attrs, step, (np.zeros((x.shape[0], u), x.dtype),))


def _gru_params(
    x: TensorType,
    *,
    units: int,
    reset_after: bool = True,
    kernel_init: str = "glorot_uniform",
    recurrent_init: str = "orthogonal",
    bias_init: str = "zeros",
    **_: Any,
) -> dict[str, Param]:
    f = _check_sequence("gru", x, units)
    return {
        "kernel": Param((f, 3 * units), kernel_init),
        "recurrent_kernel": Param((units, 3 * units), recurrent_init),
        "bias": Param((2, 3 * units) if reset_after else (3 * units,), bias_init),
    }


def _gru_flops(ins: Sequence[TensorType], out: Any, attrs: Mapping[str, Any]) -> int:
    t, f, u = ins[0].shape[1], ins[0].shape[2], attrs["units"]
    steps = t if isinstance(t, int) else 1
    biases = 6 * u if attrs["reset_after"] else 3 * u
    # two matmuls + biases, 2 sigmoids and 1 tanh (4 each), gate sums/products and the blend
    return steps * (6 * u * (f + u) + biases + 12 * u + 8 * u)


@op("gru", params=_gru_params, evaluate=_gru_eval, flops=_gru_flops, category="recurrent")
def gru(
    x,
    *,
    units: int,
    return_sequences: bool = False,
    return_state: bool = False,
    go_backwards: bool = False,
    reset_after: bool = True,
    kernel_init: Init = GLOROT_UNIFORM,
    recurrent_init: Init = ORTHOGONAL,
    bias_init: Init = ZEROS,
):
    """Gated recurrent unit layer over an `[N, T, F]` sequence (Keras `GRU`).

    From a zero state h, for each time step t (tanh activation, sigmoid recurrent
    activation, as in Keras 3), with gates in order **z, r, h** along the 3u axis:

        x_z, x_r, x_h = split(x_t @ kernel + b_in)
        reset_after=true (default):
            r_z, r_r, r_h = split(h @ recurrent_kernel + b_rec)
            hh = tanh(x_h + r * r_h)
        reset_after=false:
            r_z, r_r = split(h @ recurrent_kernel[:, :2u])
            hh = tanh(x_h + (r * h) @ recurrent_kernel[:, 2u:])
        z = sigmoid(x_z + r_z);  r = sigmoid(x_r + r_r)
        h = z * h + (1 - z) * hh

    Weights (Keras layout): `kernel [F, 3u]` (glorot_uniform), `recurrent_kernel [u, 3u]`
    (orthogonal), `bias` (zeros) `[2, 3u]` when `reset_after` (row 0 the input bias b_in,
    row 1 the recurrent bias b_rec), else `[3u]` (b_in only). `reset_after=true` is Keras'
    default (and what cuDNN runs); it is ONNX's `linear_before_reset=1`, whose `[6u]` bias
    is b_in then b_rec; with `reset_after=false` ONNX's recurrent bias half is zeros.
    ONNX also orders gates z, r, h but stores W/R transposed; PyTorch orders them r, z, n.

    Output: `[N, T, u]` with `return_sequences`, else `[N, u]` (the last h); with
    `return_state` two results `(output, h)`. `go_backwards` processes the time steps from
    last to first and, as in Keras, returns the sequence in processing order. T may be
    symbolic; F must be known. No masking, no dropout (inference semantics).
    `bidirectional(gru(...))` is Keras' Bidirectional wrapper (language.md).
    """
    _check_sequence("gru", x, units)
    attrs = dict(
        units=units,
        return_sequences=return_sequences,
        return_state=return_state,
        go_backwards=go_backwards,
        reset_after=reset_after,
    )
    return Infer(_sequence_result(x, units, return_sequences, return_state, 1), attrs)
