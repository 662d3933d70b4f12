"""How close a backend's numbers must be to the numpy reference: one table, per dtype, used by
every backend's tests and by `netc verify`.

An element passes when |got - want| <= atol * scale + rtol * |want|, where scale is
max(1, the largest finite |want| of the tensor): atol follows the tensor's magnitude, so a sum
over thousands of terms is judged by its size. NaNs match NaNs, infinities equal infinities;
integer and bool results must be equal. "op" is one op against its meaning; "model" a whole
network, whose rounding accumulates over its layers. On a GPU, float32 matmuls and convs may
run in TF32 (cuDNN, cuBLAS): the "cuda" rows allow for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# (dtype, scope, device) -> (rtol, atol)
TOLERANCE: dict[tuple[str, str, str], tuple[float, float]] = {
    ("f32", "op", "cpu"): (1e-5, 1e-6),
    ("f32", "model", "cpu"): (1e-4, 1e-5),
    ("f16", "op", "cpu"): (2e-3, 1e-3),
    ("f16", "model", "cpu"): (1e-2, 5e-3),
    ("f32", "op", "cuda"): (1e-3, 1e-3),
    ("f32", "model", "cuda"): (1e-2, 1e-3),
    ("f16", "op", "cuda"): (2e-3, 1e-3),
    ("f16", "model", "cuda"): (1e-2, 5e-3),
}
FLOAT = {"float32": "f32", "float64": "f32", "float16": "f16"}  # f64 results: f32's bound


def tolerance(dtype: str, scope: str = "op", device: str = "cpu") -> tuple[float, float]:
    """(rtol, atol) for a numpy float dtype name or a netc dtype ("f32", "bf16" as "f16")."""
    key = FLOAT.get(dtype, {"f64": "f32", "bf16": "f16"}.get(dtype, dtype))
    return TOLERANCE[key, scope, "cuda" if device == "cuda" else "cpu"]


@dataclass(frozen=True)
class Mismatch:
    """Where two arrays differ beyond tolerance: the worst element and how many differ."""

    index: tuple[int, ...]
    got: Any
    want: Any
    bad: int
    size: int
    max_abs: float
    rtol: float | None  # None: an exact comparison
    atol: float | None  # scaled

    def __str__(self) -> str:
        how = (
            "exact match required"
            if self.rtol is None
            else f"tolerance {self.atol:.1e} + {self.rtol:.1e} * |ref|"
        )
        return (
            f"{self.bad} of {self.size} values differ; worst at {list(self.index)}: got "
            f"{self.got!r}, want {self.want!r} (abs error {self.max_abs:.3g}, {how})"
        )


def mismatch(
    got: Any,
    want: Any,
    *,
    scope: str = "op",
    device: str = "cpu",
    rtol: float | None = None,
    atol: float | None = None,
) -> Mismatch | None:
    """None when `got` matches `want` (same shape, within the tolerance of want's dtype);
    otherwise where it does not. `rtol`/`atol` override the table. Shapes must agree."""
    g, w = np.asarray(got), np.asarray(want)
    assert g.shape == w.shape, f"shape {g.shape}, want {w.shape}"
    if w.size == 0:
        return None
    r: float | None = None
    a: float | None = None
    if w.dtype.kind == "f":
        r0, a0 = tolerance(w.dtype.name, scope, device)
        r = r0 if rtol is None else rtol
        a = a0 if atol is None else atol
        err, _, bad = elementwise(g, w, r, a)
        a = scaled_atol(w, a)
    else:
        bad = g != w
        err = np.where(bad, 1.0, 0.0)
    if not bad.any():
        return None
    index = tuple(
        int(i) for i in np.unravel_index(int(np.argmax(np.where(bad, err, -1.0))), w.shape)
    )
    return Mismatch(
        index,
        g[index].item(),
        w[index].item(),
        int(bad.sum()),
        int(w.size),
        float(err[index]),
        r,
        a,
    )


def scaled_atol(want: Any, atol: float) -> float:
    """`atol` times the scale of `want`: max(1, its largest finite magnitude)."""
    w = np.abs(np.asarray(want, dtype=np.float64))
    finite = w[np.isfinite(w)]
    return atol * max(1.0, float(finite.max()) if finite.size else 1.0)


def elementwise(
    got: Any, want: Any, rtol: float, atol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The float comparison element by element, in float64: (error, bound, bad). The error is
    |got - want|, 0 where the two are equal (infinities) or both NaN, inf where only one is
    NaN; the bound is the scaled atol + rtol * |want| where want is finite, and 0 where it is
    not (an infinity or a NaN is matched exactly); bad is error > bound."""
    g = np.asarray(got, dtype=np.float64)
    w = np.asarray(want, dtype=np.float64)
    a = scaled_atol(w, atol)
    with np.errstate(all="ignore"):
        err = np.abs(g - w)
        same = (g == w) | (np.isnan(g) & np.isnan(w))
        err = np.where(same, 0.0, np.where(np.isnan(err), np.inf, err))
        bound = np.where(np.isfinite(w), a + rtol * np.abs(w), 0.0)
        bad = err > bound
    return err, bound, bad


def assert_close(got: Any, want: Any, *, err_msg: str = "", **how: Any) -> None:
    """Raise AssertionError unless `got` matches `want` in shape, dtype and values (`how`:
    scope, device, rtol, atol as for `mismatch`)."""
    g, w = np.asarray(got), np.asarray(want)
    prefix = f"{err_msg}: " if err_msg else ""
    assert g.shape == w.shape, f"{prefix}shape {list(g.shape)}, want {list(w.shape)}"
    assert g.dtype == w.dtype, f"{prefix}dtype {g.dtype}, want {w.dtype}"
    found = mismatch(g, w, **how)
    assert found is None, f"{prefix}{found}"
