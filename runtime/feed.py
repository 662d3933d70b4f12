"""The runtime's input check, made once per session: `FeedCheck(name, signature)(inputs)` gives
what `check_feed` gives, and raises what it raises, but checks the common case (numpy arrays
of the right dtypes and shapes, nothing more) in a few comparisons. ONNX Runtime runs a small
model in about 20 µs; the generic check, which also builds every problem's message, cost a
third of that on every call."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

import numpy as np

from netc.ir import DTYPES

from .api import Signature, check_feed


class FeedCheck:
    """`check_feed` for one signature, with the signature's facts worked out once: per input,
    the dtypes it takes, its rank, its fixed dims, and the axes of each symbol shared by two
    or more dims (which must then agree). Anything else (a list, another dtype or shape, a
    missing or unexpected name) goes to `check_feed`, which accepts or explains it."""

    def __init__(self, model: str, signature: Sequence[Signature]):
        self.model = model
        self.signature = tuple(signature)
        specs = []
        axes: dict[str, list[tuple[str, int]]] = {}
        for sig in self.signature:
            if sig.dtype == "bf16":  # float32 arrays stand for bf16 ones (numpy has none)
                dtypes = {np.dtype("float32")}
            else:
                dtypes = {np.dtype(DTYPES[sig.dtype])} if sig.dtype in DTYPES else set()
            fixed = [(i, d) for i, d in enumerate(sig.shape) if isinstance(d, int)]
            for i, d in enumerate(sig.shape):
                if isinstance(d, str) and "*" not in d:
                    axes.setdefault(d, []).append((sig.name, i))
            specs.append((sig.name, tuple(dtypes), len(sig.shape), *_dims(fixed)))
        self._specs = tuple(specs)
        self._shared = tuple(tuple(a) for a in axes.values() if len(a) > 1)
        self._count = len(self.signature)

    def __call__(self, inputs: Mapping[str, Any]) -> Mapping[str, np.ndarray]:
        """The inputs as arrays by name, checked against the signature (a NetcError lists
        every problem, as `check_feed` words them)."""
        if len(inputs) == self._count:
            try:
                for name, dtypes, rank, dims, sizes in self._specs:
                    a = inputs[name]
                    if type(a) is not np.ndarray or a.dtype not in dtypes or a.ndim != rank:
                        break
                    if dims(a.shape) != sizes:
                        break
                else:
                    if not self._shared or all(
                        len({inputs[n].shape[i] for n, i in axes}) == 1 for axes in self._shared
                    ):
                        # exactly the signature's names, each an array that fits: the
                        # caller's own mapping serves (the backends only read it)
                        return inputs if type(inputs) is dict else dict(inputs)
            except KeyError:
                pass
        return check_feed(self.model, self.signature, inputs)


def _dims(fixed: Sequence[tuple[int, int]]) -> tuple[Callable[[tuple[int, ...]], Any], Any]:
    """(a function of a shape, what it must return): the fixed dims of a shape, read by one
    C-level itemgetter (a lone index gives a number, not a tuple)."""
    if not fixed:
        return (lambda shape: ()), ()
    axes, sizes = zip(*fixed, strict=True)
    return itemgetter(*axes), sizes if len(sizes) > 1 else sizes[0]
