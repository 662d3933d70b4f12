"""What `netc verify` found: the deployed outputs' checks, the values that diverge, and the
report rendered as a sentence, a located diagnostic or JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netc.ir import numpy_dtype
from netc.source import CallSite, Diagnostic, SourceMap, Span

from .verify_inputs import INPUT_KINDS


@dataclass(frozen=True)
class Check:
    """One value compared: a node's result (`result` is its index for a multi-result op)."""

    node: str
    result: int | None
    max_abs: float  # the largest |backend - reference| over the tensor
    max_rel: float  # the largest |backend - reference| / |reference| (where the reference != 0)
    ratio: float  # the largest error as a fraction of its tolerance (> 1: beyond it)


@dataclass(frozen=True)
class OutputCheck:
    """One output of the deployed session on one kind of inputs, against the reference."""

    kind: str  # a key of INPUT_KINDS
    output: str
    ratio: float  # the largest error as a fraction of its tolerance (> 1: beyond it)
    max_abs: float = 0.0
    index: tuple[int, ...] | None = None  # the worst element beyond tolerance
    got: Any = None
    want: Any = None
    bad: int = 0
    size: int = 0
    failure: str | None = None  # the session did not load or run, or a wrong shape or dtype

    @property
    def ok(self) -> bool:
        return self.failure is None and self.bad == 0

    @property
    def what(self) -> str:
        """How it differs, for a note."""
        if self.failure is not None:
            return self.failure
        return (
            f"{self.bad} of {self.size} values differ; at {list(self.index or ())} the session "
            f"has {_value(self.got)}, the reference {_value(self.want)}"
        )


@dataclass(frozen=True)
class Divergence:
    """A node whose value is not the reference's: what it is, where the user wrote it, how far
    off it is, and why it is blamed (`cause`):

    - "node": computed by the backend from the backend's own inputs, it differs;
    - "fused": it agrees computed on its own, but not computed alone in the deployed form
      (the runtime's optimizer fuses it with what comes before it), while its inputs agree;
    - "passes": an output whose reference after netc's passes differs from the source's;
    - "output": an output of the deployed session differs and no single value is to blame."""

    node: str  # the IR value
    op: str
    result: int | None  # which result of a multi-result op (lstm's states, split)
    span: Span | None
    calls: tuple[CallSite, ...]  # the block calls that led here, innermost first
    origin: tuple[str, ...]  # spans of what the optimizer fused into this node
    tensor: str  # the backend's name for the value (an ONNX tensor)
    dtype: str
    shape: tuple[int, ...]  # the reference's shape
    got_shape: tuple[int, ...]
    got_dtype: str  # the numpy dtype the backend returned
    size: int
    # for values of the right shape and dtype: the largest error among the elements beyond
    # tolerance, where it is, the two values there, and how many elements are beyond it
    max_abs: float = float("nan")
    max_rel: float = float("nan")
    index: tuple[int, ...] | None = None
    got: Any = None
    want: Any = None
    bad: int = 0
    rtol: float | None = None  # None: an exact comparison
    atol: float | None = None  # the scaled atol applied
    failure: str | None = None  # the backend could not compute the value at all: its error
    cause: str = "node"
    kind: str = "normal"  # the inputs it was found on (a key of INPUT_KINDS)

    @property
    def what(self) -> str:
        """How it differs, as the clause in parentheses of the error message."""
        if self.failure is not None:
            return self.failure
        if self.got_shape != self.shape:
            return f"shape {list(self.got_shape)} where the reference has {list(self.shape)}"
        if self.got_dtype != str(numpy_dtype(self.dtype)):
            return f"dtype {self.got_dtype} where the reference has {self.dtype}"
        where = f" at {list(self.index)}" if self.index is not None else ""
        if self.rtol is None:
            return (
                f"max abs error {_num(self.max_abs)}{where}, exact match required for {self.dtype}"
            )
        return (
            f"max abs error {_num(self.max_abs)}{where}, tolerance "
            f"{_num(self.atol or 0)} + {_num(self.rtol)} * |ref|"
        )


@dataclass(frozen=True)
class Report:
    """What `verify` found: the deployed session's outputs per input kind (`outputs`), the
    values compared one by one, and the divergences; `first` is the one to fix first."""

    model: str
    path: str
    target: str
    level: int
    device: str
    symbols: Mapping[str, int]
    compared: int  # values compared (results of op nodes)
    divergences: tuple[Divergence, ...]  # every node that diverges on its own, in order
    checks: tuple[Check, ...] = ()
    sources: SourceMap = field(default_factory=SourceMap, repr=False)
    outputs: tuple[OutputCheck, ...] = ()  # the deployed session, per input kind and output
    graph_optimization: str = "all"  # ONNX Runtime's optimizer level of the session
    weights: str = "randomized"  # "randomized", "initial" or "given"
    seed: int = 0
    assumed: tuple[str, ...] = ()  # symbols other than the batch whose size was not given

    @property
    def ok(self) -> bool:
        return not self.divergences and all(o.ok for o in self.outputs)

    @property
    def first(self) -> Divergence | None:
        return self.divergences[0] if self.divergences else None

    @property
    def deployed_ok(self) -> bool:
        """Whether the deployed session's outputs agree on every kind of inputs."""
        return all(o.ok for o in self.outputs)

    @property
    def closest(self) -> Check | None:
        """The compared value nearest to its tolerance (the margin of an ok report)."""
        return max(self.checks, key=lambda c: c.ratio, default=None)

    @property
    def settings(self) -> str:
        """The compile and runtime settings checked, for messages."""
        parts = [f"-O{self.level}"]
        if self.target == "onnx":
            parts.append(f"ONNX Runtime optimizer {self.graph_optimization}")
        parts.append(
            f"{self.weights} weights" + (f" (seed {self.seed})" if self.weights != "given" else "")
        )
        sizes = ", ".join(f"{k}={v}" for k, v in self.symbols.items())
        if self.assumed:
            flags = " ".join(f"--dim {k}=SIZE" for k in self.assumed)
            sizes += f" ({', '.join(self.assumed)} assumed: {flags} sets it)"
        parts += [sizes or "no symbols", self.device]
        return ", ".join(parts)

    def diagnostic(self) -> Diagnostic | None:
        """The first divergence as a located error, with call sites and fused origins."""
        d = self.first
        if d is None:
            bad = next((o for o in self.outputs if not o.ok), None)
            if bad is None:
                return None
            return Diagnostic(  # the session failed on some inputs, and no value is to blame
                "error",
                f"the deployed {self.target} session's output `{bad.output}` differs from the "
                f"reference on {INPUT_KINDS[bad.kind]} inputs ({bad.what})",
            )
        of = f"result {d.result} of " if d.result is not None else ""
        value = f"{of}IR value `{d.node}` ({d.op})"
        notes = [f"{value}, emitted as {self.target} tensor `{d.tensor}`"]
        deployed = self._deployed_note()
        if d.cause == "node":
            if d.got_shape == d.shape and d.index is not None:
                notes.append(
                    f"{d.bad} of {d.size} values differ on {INPUT_KINDS[d.kind]} inputs; at "
                    f"{list(d.index)} the {self.target} backend has {_value(d.got)}, the "
                    f"reference {_value(d.want)}"
                )
            notes += [f"the optimizer fused {o} into this node" for o in d.origin]
            notes.append(
                "its inputs agree with the reference: the "
                + ("failure" if d.failure else "difference")
                + " starts here"
            )
            later = self.divergences[1:]
            if later:
                at = ", ".join(str(x.span) if x.span else f"`{x.node}`" for x in later[:3])
                more = f" and {len(later) - 3} more" if len(later) > 3 else ""
                notes.append(f"{len(later)} later nodes also differ on their own: {at}{more}")
            if deployed:
                notes.append(deployed)
            differs = (
                "fails to compute this value" if d.failure else "differs from the reference here"
            )
            return Diagnostic(
                "error",
                f"the {self.target} backend {differs} ({d.what})",
                d.span,
                d.calls,
                notes=tuple(notes),
            )
        if d.cause == "fused":
            runtime = self._runtime()
            notes.append(
                f"{d.bad} of {d.size} values differ on {INPUT_KINDS[d.kind]} inputs; at "
                f"{list(d.index or ())} the deployed session has {_value(d.got)}, the reference "
                f"{_value(d.want)}"
            )
            notes += [f"the optimizer fused {o} into this node" for o in d.origin]
            notes.append(
                "with every value an output it agrees with the reference; computed alone, as "
                f"deployed, it differs while its inputs agree: {runtime} changes it when it "
                "fuses it with the ops before it"
            )
            if deployed:
                notes.append(deployed)
            hint = (
                "`--ort-opt disable` checks the session without ONNX Runtime's optimizer"
                if self.target == "onnx" and self.graph_optimization != "disable"
                else None
            )
            return Diagnostic(
                "error",
                f"the deployed {self.target} session differs from the reference here ({d.what})",
                d.span,
                d.calls,
                hint=hint,
                notes=tuple(notes),
            )
        if d.cause == "passes":
            notes = [value]
            if deployed:
                notes.append(deployed)
            return Diagnostic(
                "error",
                f"netc's -O{self.level} passes change this output ({d.what})",
                d.span,
                d.calls,
                hint="`netc MODEL.net --verify-passes` names the pass",
                notes=tuple(notes),
            )
        notes.append(
            "every value agrees with the reference computed one by one and computed alone: "
            "the difference comes from how the session runs the whole model"
        )
        return Diagnostic(
            "error",
            f"the deployed {self.target} session's output differs from the reference ({d.what})",
            d.span,
            d.calls,
            notes=tuple(notes),
        )

    def _runtime(self) -> str:
        if self.target == "onnx":
            return f"ONNX Runtime's optimizer (level {self.graph_optimization})"
        return f"the {self.target} runtime"

    def _deployed_note(self) -> str | None:
        bad = [o for o in self.outputs if not o.ok]
        if not bad:
            return None
        kinds = list(dict.fromkeys(INPUT_KINDS[o.kind] for o in bad))
        outputs = list(dict.fromkeys(f"`{o.output}`" for o in bad))
        return (
            f"the deployed session ({self.settings}) gives wrong outputs "
            f"{_words(outputs)} on {_words(kinds)} inputs"
        )

    def render(self) -> str:
        """The user-facing text: the located error, or that everything agrees."""
        diagnostic = self.diagnostic()
        if diagnostic is not None:
            return diagnostic.render(self.sources)
        margin = ""
        c = self.closest
        if c is not None:
            of = f"result {c.result} of " if c.result is not None else ""
            share = "<1%" if c.ratio < 0.01 else f"{c.ratio:.0%}"
            margin = f"; closest: {of}`{c.node}` at {share} of its tolerance"
        kinds = list(dict.fromkeys(INPUT_KINDS[o.kind] for o in self.outputs))
        return (
            f"{self.path}: the {self.target} backend agrees with the reference: all "
            f"{self.compared} values of `{self.model}` one by one, and the deployed session's "
            f"outputs on {_words(kinds) or 'no'} inputs, are within tolerance "
            f"({self.settings}{margin})"
        )

    def to_json(self) -> dict:
        """Plain data for `--json`."""
        out: dict = {
            "ok": self.ok,
            "model": self.model,
            "target": self.target,
            "level": self.level,
            "graph_optimization": self.graph_optimization if self.target == "onnx" else None,
            "weights": self.weights,
            "seed": self.seed,
            "device": self.device,
            "symbols": dict(self.symbols),
            "assumed": list(self.assumed),
            "compared": self.compared,
            "outputs": [
                {
                    "kind": o.kind,
                    "output": o.output,
                    "ok": o.ok,
                    "max_abs": _finite(o.max_abs),
                    "ratio": _finite(o.ratio),
                    "bad": o.bad,
                    "failure": o.failure,
                }
                for o in self.outputs
            ],
        }
        diagnostic = self.diagnostic()
        if diagnostic is not None:
            out["error"] = diagnostic.to_json()
        d = self.first
        if diagnostic is not None and d is not None:
            out["first"] = {
                **diagnostic.to_json(),
                "node": d.node,
                "op": d.op,
                "result": d.result,
                "cause": d.cause,
                "kind": d.kind,
                "origin": list(d.origin),
                "max_abs": _finite(d.max_abs),
                "max_rel": _finite(d.max_rel),
                "index": None if d.index is None else list(d.index),
                "bad": d.bad,
                "size": d.size,
            }
            out["diverging"] = [x.node for x in self.divergences]
        return out


def _words(items: list[str]) -> str:
    """a, b and c."""
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _num(x: float) -> str:
    """1e-05, 3.1e-02: one significant decimal, none when it is zero."""
    if not np.isfinite(x):
        return str(x)
    return f"{x:.1e}".replace(".0e", "e")


def _finite(x: float) -> float | None:
    """JSON has no inf or nan: those become null."""
    return x if np.isfinite(x) else None


def _value(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)
