"""Fuzzing the front end at scale (not a test; tests/test_fuzz.py runs a seeded slice of it).

    python bench/fuzz.py [--inputs 1000000] [--jobs 2] [--seed 0] [--timeout 10]
                         [--onnx-every 20] [--out build/fuzz]

Inputs come from two sources:

- `networks()`, Hypothesis strategies that build valid `.net` programs from the grammar and the
  op table: constants, blocks with typed parameters and defaults (recursion, several results,
  loops, `weight(...)`), models of one or two inputs and outputs whose types are tracked
  through every stage (dense, convolutions, pools, norms, recurrent layers, attention,
  reshapes, indexing, arithmetic with numbers and lists, `activation=`, `*_init`, f-string
  names, `for`, `if`, if-expressions), and a train section;
- `mutants()`, which break them: tokens deleted, replaced, inserted or swapped (from a pool of
  the grammar's terminals, op names and builtins), bytes flipped (a file that is no longer
  UTF-8 is read from disk, as `netc check` reads it), truncation, invisible and look-alike
  Unicode characters, huge and odd numbers, deep nesting and long chains, and splices of two
  programs.

Every input goes through `check()`, which is what `netc check` does: compile, then the summary
(layer count, parameters) or the rendered diagnostics. Anything but a model or a `NetcError`
whose diagnostics lie inside the file is a finding: an internal compiler error (what the
command line reports with exit code 3), a diagnostic outside the file, or a hang past
`--timeout` seconds of CPU time (CPU, not wall-clock, time: a loaded machine does not make
an input slow; one blocked without using the CPU is caught by the parent's wall-clock limit).
Every 20th valid network (`--onnx-every`) is also compiled to ONNX (-O0 and -O2 in turn),
checked by onnx.checker, run in ONNX Runtime on random inputs with randomized weights, and
compared with the float64 reference (the model tolerance of netc.runtime.tolerance); a valid
network that netc refuses, or that disagrees, is a finding too. One input in 20 that the
reader accepts is also parsed by Lark, whose tree must be the same.

The work runs in `--jobs` processes (each at most 4 GiB of memory, each input under a time
limit; a process still on one input 6 x `--timeout` + 60 seconds of wall-clock time later is
killed and its input recorded). Findings are written to OUT/findings/ (the input, with what
went wrong in its leading comment); OUT/summary.json holds the counts by input kind and
outcome, the time, and the findings. docs/fuzzing.md records the campaigns run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # conformance's inputs

import netc  # noqa: E402
from netc import NetcError  # noqa: E402

# --- valid networks, from the grammar and the op table ----------------------------------------

ACTIVATIONS = ("relu", "relu6", "tanh", "sigmoid", "gelu", "elu", "silu", "softplus", "abs")
ACTIVATIONS += ("hard_sigmoid", "hard_swish", "hard_silu", "leaky_relu", "neg")
LAYER_ACTIVATIONS = ('"relu"', '"tanh"', '"sigmoid"', '"gelu"', '"silu"', '"swish"', '"elu"')
LAYER_ACTIVATIONS += ('"softplus"', '"relu6"', '"leaky_relu"', '"hard_sigmoid"', '"linear"')
LAYER_ACTIVATIONS += ('"softmax"', '"hard_silu"', "none")
INITIALIZERS = ('"glorot_uniform"', '"he_normal"', '"lecun_normal"', '"zeros"', '"ones"')
INITIALIZERS += ("random_normal(stddev=0.02)", "truncated_normal(mean=0.0, stddev=0.05)")
INITIALIZERS += ("random_uniform(minval=-0.1, maxval=0.1)", "constant(value=0.1)")
INITIALIZERS += ("he_uniform()", "glorot_normal()")
INITIALIZERS += ('variance_scaling(scale=2.0, mode="fan_out", distribution="uniform")',)
INITIALIZERS += ("orthogonal(gain=0.5)",)  # last: for weights of rank >= 2 only
LOSSES = ("mse", "mae", "huber(delta=0.5)", "mean_squared_error")
OPTIMIZERS = ("adam", "adam(1e-3)", "sgd(learning_rate=0.01, momentum=0.9)", "rmsprop")
OPTIMIZERS += ("adamw(learning_rate=3e-4, weight_decay=0.01)", "adagrad(epsilon=1e-6)")
OPTIMIZERS += ("adam(learning_rate=cosine_decay(1e-3, 1000))",)


@dataclass
class Value:
    """A tensor of the program being generated: its name (or expression) and shape."""

    expr: str
    shape: tuple[int | str, ...]
    dtype: str = "f32"

    @property
    def rank(self) -> int:
        return len(self.shape)

    def type(self) -> str:
        return f"{self.dtype}[{', '.join(map(str, self.shape))}]"


@dataclass
class Program:
    """A program under construction: its lines and fresh names."""

    lines: list[str] = field(default_factory=list)
    counter: int = 0

    def fresh(self, stem: str = "h") -> str:
        self.counter += 1
        return f"{stem}{self.counter}"


def _pick(draw: Any, options: Any) -> Any:
    return draw(st.sampled_from(tuple(options)))


def _int(draw: Any, lo: int, hi: int) -> int:
    return draw(st.integers(lo, hi))


def _name_arg(draw: Any, p: Program, op: str) -> str:
    """Sometimes a layer name: a string or an f-string (unique: the counter is in it)."""
    if draw(st.integers(0, 9)) > 1:
        return ""
    p.counter += 1
    if draw(st.booleans()):
        return f', name="{op}_n{p.counter}"'
    return f', name=f"{op}{{{p.counter}}}_x{{{p.counter} * 2}}"'


def _atom(expr: str) -> str:
    """`expr` as an operand: in parentheses unless it is a name."""
    return expr if expr.isidentifier() else f"({expr})"


def _conv_size(n: int, k: int, s: int, padding: str, d: int = 1) -> int:
    if padding == "same":
        return -(-n // s)
    return (n - d * (k - 1) - 1) // s + 1


def _stage(draw: Any, p: Program, x: Value, others: list[Value]) -> Value | None:
    """One stage applied to `x`: the expression of a new value and its shape (None: no stage
    of the drawn family fits `x`)."""
    shape, rank = x.shape, x.rank
    last = shape[-1]
    a = x.expr
    family = _pick(
        draw,
        ["act"] * 3
        + ["dense"] * 3
        + ["norm", "arith", "arith", "conv", "conv", "pool", "reshape", "rnn", "attn"]
        + ["reduce", "index", "concat", "split", "transpose", "resize", "weight", "posemb"],
    )
    pipe = draw(st.booleans())

    def call(op: str, args: str = "") -> str:
        if pipe:
            return f"{x.expr} |> {op}({args})" if args else f"{x.expr} |> {op}"
        return f"{op}({x.expr}{', ' + args if args else ''})"

    if family == "act":
        op = _pick(draw, ACTIVATIONS + ("softmax", "dropout"))
        args = ""
        if op in ("elu", "leaky_relu") and draw(st.booleans()):
            args = f"alpha={_pick(draw, ('0.1', '0.5', '1.0'))}"
        elif op == "softmax" and draw(st.booleans()):
            args = f"axis={_int(draw, 1, rank - 1) if rank > 1 else -1}"
        elif op == "gelu" and draw(st.booleans()):
            args = "approximate=true"
        elif op == "dropout":
            args = _pick(draw, ("0.1", "rate=0.5", "0.0"))
        args += _name_arg(draw, p, op) if args else ""
        return Value(call(op, args.lstrip(", ")), shape)
    if family == "dense" and rank >= 2:
        units = _int(draw, 1, 12)
        args = str(units) if draw(st.booleans()) else f"units={units}"
        if draw(st.booleans()):
            args += f", activation={_pick(draw, LAYER_ACTIVATIONS)}"
        if draw(st.integers(0, 3)) == 0:
            args += ", bias=false"
        elif draw(st.integers(0, 3)) == 0:
            args += f", bias_init={_pick(draw, INITIALIZERS[:-1])}"  # no orthogonal vector
        if draw(st.integers(0, 2)) == 0:
            args += f", kernel_init={_pick(draw, INITIALIZERS)}"
        return Value(call("dense", args + _name_arg(draw, p, "dense")), (*shape[:-1], units))
    if family == "norm":
        if draw(st.booleans()):
            args = _pick(draw, ("", "epsilon=1e-5", "center=false", "gamma_init=ones()"))
            return Value(call("layernorm", args), shape)
        args = _pick(draw, ("", "epsilon=0.01", "momentum=0.9", 'moving_variance_init="ones"'))
        return Value(call("batchnorm", args), shape)
    if family == "arith":
        kind = _int(draw, 0, 6)
        if kind == 0:
            return Value(f"{a} * {_pick(draw, ('0.5', '2', '1.5'))}", shape)
        if kind == 1:
            return Value(f"({a} - {_pick(draw, ('1', '0.25'))}) / 2.0", shape)
        if kind == 2 and isinstance(last, int) and last <= 16:
            consts = ", ".join(str(round(0.1 * (i + 1), 2)) for i in range(last))
            return Value(f"{a} * [{consts}]", shape)
        if kind == 3:
            return Value(f"maximum({x.expr}, 0.0)", shape)
        if kind == 4:
            return Value(f"-{a} + {a} * sigmoid({x.expr})", shape)
        same = [o for o in others if o.shape == shape and o.expr != x.expr]
        if same:
            return Value(f"{a} + {_atom(_pick(draw, same).expr)}", shape)
        return Value(f"minimum({x.expr}, 6.0)", shape)
    if family == "conv" and rank in (3, 4) and all(isinstance(d, int) for d in shape[1:]):
        dims = [d for d in shape[1:-1] if isinstance(d, int)]
        k = _int(draw, 1, min(3, *dims))
        s = _int(draw, 1, 2)
        padding = _pick(draw, ("same", "valid"))
        nd = "1d" if rank == 3 else "2d"
        kind = _pick(draw, ("conv", "conv", "depthwise", "separable", "transpose"))
        assert isinstance(last, int)
        if kind == "transpose":
            f = _int(draw, 1, 8)
            out = [d * s + (max(k - s, 0) if padding == "valid" else 0) for d in dims]
            expr = call(f"conv{nd}_transpose", f'{f}, {k}, stride={s}, padding="{padding}"')
            return Value(expr, (shape[0], *out, f))
        out = [_conv_size(d, k, s, padding) for d in dims]
        if kind == "depthwise":
            m = _int(draw, 1, 2)
            args = f'{k}, stride={s}, padding="{padding}", depth_multiplier={m}'
            return Value(call(f"depthwise_conv{nd}", args), (shape[0], *out, last * m))
        f = _int(draw, 1, 12)
        args = f'{f}, {k}, stride={s}, padding="{padding}"'
        if kind == "separable":
            return Value(call(f"separable_conv{nd}", args), (shape[0], *out, f))
        if last % 2 == 0 and f % 2 == 0 and draw(st.booleans()):
            args += ", groups=2"
        if draw(st.booleans()):
            args += f", activation={_pick(draw, LAYER_ACTIVATIONS)}"
        if draw(st.integers(0, 2)) == 0:
            args += f", kernel_init={_pick(draw, INITIALIZERS)}"
        return Value(call(f"conv{nd}", args + _name_arg(draw, p, "conv")), (shape[0], *out, f))
    if family == "pool" and rank in (3, 4) and all(isinstance(d, int) for d in shape[1:]):
        dims = [d for d in shape[1:-1] if isinstance(d, int)]
        if draw(st.booleans()):
            op = _pick(draw, ("global_avgpool", "global_maxpool"))
            if draw(st.booleans()):
                return Value(call(op, "keepdims=true"), (shape[0], *[1] * len(dims), last))
            return Value(call(op), (shape[0], last))
        size = _int(draw, 1, min(3, *dims))
        padding = _pick(draw, ("same", "valid"))
        op = _pick(draw, ("maxpool", "avgpool"))
        out = [_conv_size(d, size, size, padding) for d in dims]
        return Value(call(op, f'{size}, padding="{padding}"'), (shape[0], *out, last))
    if family == "reshape" and rank >= 3 and all(isinstance(d, int) for d in shape[1:]):
        total = 1
        for d in shape[1:]:
            assert isinstance(d, int)
            total *= d
        if draw(st.booleans()):
            return Value(call("flatten"), (shape[0], total))
        return Value(call("reshape", f"({total},)"), (shape[0], total))
    if family == "rnn" and rank == 3:
        units = _int(draw, 1, 8)
        op = _pick(draw, ("lstm", "gru"))
        seq = draw(st.booleans())
        args = f"{units}, return_sequences={'true' if seq else 'false'}"
        if draw(st.booleans()):
            args += ", go_backwards=true"
        out = (shape[0], shape[1], units) if seq else (shape[0], units)
        return Value(call(op, args), out)
    if family == "attn" and rank == 3:
        heads = _int(draw, 1, 2)
        key_dim = _int(draw, 1, 4)
        causal = ", causal=true" if draw(st.booleans()) else ""
        expr = f"multi_head_attention({x.expr}, {x.expr}, heads={heads}, key_dim={key_dim}{causal})"
        return Value(expr, shape)
    if family == "posemb" and rank == 3 and isinstance(shape[1], int):
        return Value(call("positional_embedding", f"{shape[1] + _int(draw, 0, 3)}"), shape)
    if family == "reduce" and rank >= 3:
        op = _pick(draw, ("reduce_mean", "reduce_max", "reduce_sum", "reduce_min"))
        axis = _int(draw, 1, rank - 2)
        if draw(st.booleans()):
            return Value(
                call(op, f"axis={axis}, keepdims=true"), shape[:axis] + (1,) + shape[axis + 1 :]
            )
        return Value(call(op, f"axis={axis}"), shape[:axis] + shape[axis + 1 :])
    if family == "index" and rank >= 2 and isinstance(last, int) and last >= 2:
        if rank >= 3 and isinstance(shape[1], int) and draw(st.booleans()):
            return Value(f"{a}[:, {_int(draw, 0, shape[1] - 1)}]", (shape[0], *shape[2:]))
        k = _int(draw, 1, last - 1)
        return Value(f"{a}[..., {k}:]", (*shape[:-1], last - k))
    if family == "concat":
        partners = [o for o in others if o.shape[:-1] == shape[:-1] and o.expr != x.expr]
        if partners and isinstance(last, int):
            o = _pick(draw, partners)
            assert isinstance(o.shape[-1], int)
            if draw(st.booleans()):
                expr = f"concat({x.expr}, {o.expr})"
            else:
                expr = f"concat([{x.expr}, {o.expr}], axis={rank - 1})"
            return Value(expr, (*shape[:-1], last + o.shape[-1]))
    if family == "split" and isinstance(last, int) and last % 2 == 0 and last >= 2:
        a, b = p.fresh("a"), p.fresh("b")
        p.lines.append(f"    {a}, {b} = split({x.expr}, 2)")
        return Value(f"{a} * sigmoid({b})", (*shape[:-1], last // 2))
    if family == "transpose" and rank == 3:
        return Value(call("transpose", "(0, 2, 1)"), (shape[0], shape[2], shape[1]))
    if family == "resize" and rank == 4 and all(isinstance(d, int) for d in shape[1:]):
        h, w = shape[1], shape[2]
        assert isinstance(h, int) and isinstance(w, int)
        if draw(st.booleans()):
            return Value(call("upsample", "2"), (shape[0], h * 2, w * 2, last))
        if draw(st.booleans()):
            pads = "((0, 0), (1, 1), (0, 1), (0, 0))"
            return Value(call("pad", pads), (shape[0], h + 2, w + 1, last))
        size = (_int(draw, 1, 6), _int(draw, 1, 6))
        method = _pick(draw, ("nearest", "bilinear"))
        return Value(call("resize", f'{size}, method="{method}"'), (shape[0], *size, last))
    if family == "weight" and isinstance(last, int):
        g = p.fresh("gamma")
        init = _pick(draw, ("constant(0.5)", '"ones"', "random_normal(stddev=0.5)"))
        p.lines.append(f"    {g} = weight([{last}], init={init})")
        return Value(f"{a} * {g}", shape)
    return None


BLOCKS = {
    # name: (definition, the ranks it takes, what it does to the shape)
    "mlp": (
        "block mlp(x, units: int, rate: float = 0.1) {{\n"
        "    return x |> dense(units) |> {act} |> dropout(rate)\n}}\n",
        (2, 3, 4),
        "units",
    ),
    "residual": (
        "block residual(x, scale: float = 1.0) {{\n"
        "    y = x |> layernorm |> dense(channels(x), kernel_init={init}) |> {act}\n"
        "    return x + y * scale\n}}\n",
        (2, 3, 4),
        "same",
    ),
    "layer_scale": (
        "block layer_scale(x, init: float = 0.5) {{\n"
        "    gamma = weight([channels(x)], init=constant(init), dtype=dtype(x))\n"
        "    return x * gamma\n}}\n",
        (2, 3, 4),
        "same",
    ),
    "tower": (
        "block tower(x, units: int, depth: int) {{\n"
        "    return if depth == 0 {{ x }} else {{ x |> dense(units) |> {act} |> "
        "tower(units, depth - 1) }}\n}}\n",
        (2, 3),
        "tower",
    ),
    "stack": (
        "block stack(x, widths: list) {{\n"
        "    for i, w in enumerate(widths) {{\n"
        '        x = x |> dense(w, name=f"layer{{i}}_{{w}}")\n'
        "        x = if i % 2 == 0 {{ x |> {act} }} else {{ x }}\n"
        "    }}\n"
        "    return x\n}}\n",
        (2, 3),
        "widths",
    ),
    "gated": (
        "block gated(x) {{\n"
        "    a, b = split(x |> dense(2 * channels(x)), 2)\n"
        "    return a * sigmoid(b)\n}}\n",
        (2, 3, 4),
        "same",
    ),
}


LIBRARY = """# lib.net: what generated networks import
const LIB_WIDTH = 4

block lib_dense(x, units: int = LIB_WIDTH, act: str = "relu") {
    y = x |> dense(units)
    return if act == "relu" { relu(y) } else { y |> tanh }
}
"""


def library(folder: Path) -> Path:
    """`folder`, with the lib.net that generated networks import written in it."""
    (folder / "lib.net").write_text(LIBRARY)
    return folder


@st.composite
def networks(draw: Any) -> str:
    """A valid `.net` program: constants, blocks, one model whose every value's type is
    known, and sometimes a train section."""
    p = Program()
    header: list[str] = []
    act = _pick(draw, ACTIVATIONS[:9])
    if draw(st.booleans()):
        header.append(f'const ACT = "{act}"')
    widths = [_int(draw, 1, 8) for _ in range(_int(draw, 1, 3))]
    header.append(f"const WIDTHS = [{', '.join(map(str, widths))}]")
    depth = _int(draw, 0, 2)
    header.append(f"const DEPTH = {depth}")
    imports = draw(st.booleans())
    if imports:
        header.insert(0, 'import "lib.net"')
    blocks = draw(st.lists(st.sampled_from(sorted(BLOCKS)), max_size=3, unique=True))
    for b in blocks:
        header.append(BLOCKS[b][0].format(act=act, init=_pick(draw, INITIALIZERS)))

    # inputs: an image, a sequence, features, or ids
    inputs: list[Value] = []
    for i in range(_int(draw, 1, 2)):
        kind = _pick(draw, ("features", "sequence", "image", "ids"))
        name = f"in{i}"
        if kind == "features":
            v = Value(name, ("N", _int(draw, 1, 12)))
        elif kind == "sequence":
            v = Value(name, ("N", _int(draw, 1, 6), _int(draw, 1, 8)))
        elif kind == "image":
            v = Value(name, ("N", _int(draw, 1, 8), _int(draw, 1, 8), _int(draw, 1, 4)))
        else:
            v = Value(name, ("N", _int(draw, 1, 6)), "i32")
        inputs.append(v)
    current: list[Value] = []
    for v in inputs:
        if v.dtype == "i32":
            h = p.fresh()
            dim = _int(draw, 1, 8)
            init = f", embeddings_init={_pick(draw, INITIALIZERS)}" if draw(st.booleans()) else ""
            p.lines.append(f"    {h} = {v.expr} |> embedding(vocab=12, dim={dim}{init})")
            current.append(Value(h, (*v.shape, dim)))
        else:
            current.append(v)
    seen = list(current)

    for _ in range(_int(draw, 1, 6)):
        x = _pick(draw, current) if len(current) > 1 else current[0]
        form = _pick(draw, ("stage", "stage", "stage", "chain", "block", "for", "if", "lib"))
        if form == "lib" and imports and x.rank >= 2:
            h = p.fresh()
            units = _pick(draw, ("", "3", 'units=2, act="tanh"'))
            p.lines.append(f"    {h} = {x.expr} |> lib_dense({units})")
            y = Value(h, (*x.shape[:-1], {"": 4, "3": 3}.get(units, 2)))
            seen.append(y)
            current[current.index(x)] = y
            continue
        if form == "block" and blocks:
            b = _pick(draw, blocks)
            _, ranks, effect = BLOCKS[b]
            if x.rank in ranks:
                y = _call_block(draw, p, b, x, effect, widths)
                if y is not None:
                    seen.append(y)
                    current[current.index(x)] = y
                    continue
        if form == "for" and x.rank >= 2:
            h = p.fresh()
            p.lines.append(f"    {h} = {x.expr}")
            p.lines.append("    for w in WIDTHS {")
            p.lines.append(f"        {h} = {h} |> dense(w) |> {act}")
            p.lines.append("    }")
            y = Value(h, (*x.shape[:-1], widths[-1]))
            seen.append(y)
            current[current.index(x)] = y
            continue
        if form == "if":
            h = p.fresh()
            cond = _pick(draw, ("DEPTH > 0", "DEPTH == 0", "len(WIDTHS) >= 2", "not (DEPTH == 1)"))
            p.lines.append(f"    if {cond} {{")
            p.lines.append(f"        {h} = {x.expr} |> {act}")
            p.lines.append("    } else {")
            p.lines.append(f"        {h} = if DEPTH < 5 {{ {x.expr} * 0.5 }} else {{ {x.expr} }}")
            p.lines.append("    }")
            y = Value(h, x.shape)
            seen.append(y)
            current[current.index(x)] = y
            continue
        y = x
        for _ in range(_int(draw, 1, 3) if form == "chain" else 1):
            if not y.expr.isidentifier():  # (used twice, it would make its layers twice)
                h = p.fresh()
                p.lines.append(f"    {h} = {y.expr}")
                y = Value(h, y.shape, y.dtype)
                seen.append(y)
            z = _stage(draw, p, y, seen)
            if z is None:
                continue
            y = z
        if y is x:
            continue
        h = p.fresh()
        p.lines.append(f"    {h} = {y.expr}")
        y = Value(h, y.shape, y.dtype)
        seen.append(y)
        current[current.index(x)] = y

    outputs = []
    for i, v in enumerate(current):
        declared = v.type() if draw(st.integers(0, 3)) else "tensor"
        outputs.append(f"out{i}: {declared}")
        p.lines.append(f"    out{i} = {v.expr}")
    model = (
        f"model fuzz({', '.join(f'{v.expr}: {v.type()}' for v in inputs)}) -> "
        f"({', '.join(outputs)}) {{\n" + "\n".join(p.lines) + "\n}\n"
    )
    train = ""
    if draw(st.integers(0, 3)) == 0:
        train = (
            f"\ntrain {{\n    loss = {_pick(draw, LOSSES)}\n"
            f"    optimizer = {_pick(draw, OPTIMIZERS)}\n"
            f"    epochs = {_int(draw, 1, 3)}\n    batch_size = {_pick(draw, (8, 32))}\n}}\n"
        )
    return "\n".join(header) + "\n\n" + model + train


def _call_block(
    draw: Any, p: Program, b: str, x: Value, effect: str, widths: list[int]
) -> Value | None:
    h = p.fresh()
    name = f', name="{b}_{p.counter}"' if draw(st.booleans()) else ""
    if effect == "units":
        units = _int(draw, 1, 10)
        rate = f", rate={_pick(draw, ('0.0', '0.3'))}" if draw(st.booleans()) else ""
        p.lines.append(f"    {h} = {x.expr} |> mlp({units}{rate}{name})")
        return Value(h, (*x.shape[:-1], units))
    if effect == "same":
        p.lines.append(f"    {h} = {x.expr} |> {b}({name.lstrip(', ')})")
        return Value(h, x.shape)
    if effect == "tower":
        units, depth = _int(draw, 1, 8), _int(draw, 0, 3)
        p.lines.append(f"    {h} = tower({x.expr}, {units}, depth={depth}{name})")
        return Value(h, (*x.shape[:-1], units) if depth else x.shape)
    if effect == "widths":
        p.lines.append(f"    {h} = {x.expr} |> stack(WIDTHS{name})")
        return Value(h, (*x.shape[:-1], widths[-1]))
    return None


# --- mutants ---------------------------------------------------------------------------------

KEYWORDS = ("import", "const", "block", "model", "train", "return", "for", "in", "if", "else")
KEYWORDS += ("and", "or", "not", "true", "false", "none")
PUNCTUATION = ("(", ")", "[", "]", "{", "}", ",", ":", "=", "->", "|>", "+", "-", "*", "/")
PUNCTUATION += ("//", "%", "@", "**", "...", "==", "!=", "<", "<=", ">", ">=")
NUMBERS = ("0", "-1", "1", "2.5", "1e9", "99999", "0.0", "-0", "1e-45", "3.4e38", "1e308")
NUMBERS += ("1e309", "2147483648", "9223372036854775808", "18446744073709551616", ".5", "5.")
NUMBERS += ("1e-400", "10**12", "2**63", "2**1023", "2**1025", "1" + "0" * 40, "4" * 5000)
NUMBERS += ("1e99999", "0x10", "1_000", "07", "1e", "1.2.3", "-(-(-1))")
STRINGS = ('"same"', '"valid"', '""', '"f32"', '"he_normal"', '"\\u00e9"', '"a\\"b"', 'f"{1}"')
STRINGS += ('f"{x}"', 'f"{{}}"', 'f"{"', '"\\', 'f"{1:2}"', '"' + "x" * 1000 + '"')
STRINGS += ('"lib.net"', '"../lib.net"', '"/etc/passwd"', '"."', '"fuzz.net"', '"lib"')
NAMES = ("x", "N", "f32", "i32", "bf16", "tensor", "int", "list", "range", "len", "channels")
NAMES += ("shape", "weight", "str", "zip", "enumerate", "name", "axis", "units", "image")
NAMES += ("_", "__init__", "None", "True", "self", "layers", "a" * 300)
UNICODE = ("\u00a0", "\u200b", "\ufeff", "\u202e", "\u2066", "\u201c", "\u201d", "\u2018")
UNICODE += ("\u2212", "\u2013", "\uff08", "\u00e9", "\u03bb", "\u4e2d", "\U0001f600", "\u0301")
UNICODE += ("\u2028", "\x00", "\r", "\x0c", "\t", "\x85", "\ud800", "\U0010ffff", "\u0660")
UNICODE += ("\uff11", "\u0130", "\u00df", "\u3164", "\x1b[31m", "\r\n", "\u200d")


def _pool() -> tuple[str, ...]:
    from netc.values import BUILTINS, LANGUAGE_OPS

    return (
        KEYWORDS
        + PUNCTUATION
        + NUMBERS[:12]
        + STRINGS[:8]
        + NAMES
        + tuple(sorted(LANGUAGE_OPS))
        + tuple(sorted(BUILTINS))
    )


def _tokens(text: str) -> list[tuple[int, int]]:
    """(start, end) of each token-like piece of `text`: words, numbers, strings, symbols."""
    import re

    pattern = (
        r'f?"(?:[^"\\\n]|\\.)*"|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\w+|\|>|->|\*\*|//|\.\.\.|[=!<>]=|\S'
    )
    return [(m.start(), m.end()) for m in re.finditer(pattern, text)]


def _mutate_tokens(text: str, rng: random.Random, pool: tuple[str, ...]) -> str:
    toks = _tokens(text)
    if not toks:
        return rng.choice(pool)
    for _ in range(rng.randint(1, 4)):
        toks = _tokens(text)
        if not toks:
            break
        a, b = rng.choice(toks)
        op = rng.randrange(5)
        if op == 0:
            text = text[:a] + text[b:]
        elif op == 1:
            text = text[:a] + rng.choice(pool) + text[b:]
        elif op == 2:
            text = text[:a] + rng.choice(pool) + " " + text[a:]
        elif op == 3:
            text = text[:b] + " " + text[a:b] + text[b:]  # the token twice
        else:
            c, d = rng.choice(toks)
            if (a, b) < (c, d) and b <= c:
                text = text[:a] + text[c:d] + text[b:c] + text[a:b] + text[d:]
    return text


def _mutate_numbers(text: str, rng: random.Random) -> str:
    toks = [(a, b) for a, b in _tokens(text) if text[a].isdigit()]
    for a, b in sorted(rng.sample(toks, min(len(toks), rng.randint(1, 3))), reverse=True):
        text = text[:a] + rng.choice(NUMBERS) + text[b:]
    return text


def _mutate_unicode(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(text) + 1)
        ch = rng.choice(UNICODE)
        if rng.random() < 0.3 and at < len(text):  # in place of a character
            text = text[:at] + ch + text[at + 1 :]
        else:
            text = text[:at] + ch + text[at:]
    return text


def _mutate_structure(text: str, rng: random.Random) -> str:
    """Deep nesting, long chains and other things past the limits, in place of a value."""
    toks = [(a, b) for a, b in _tokens(text) if text[a].isalnum()]
    if not toks:
        return text
    a, b = rng.choice(toks)
    v = text[a:b]
    n = rng.choice((10, 70, 300, 3000))
    shapes = (
        "(" * n + v + ")" * n,
        "[" * n + v + "]" * n,
        " |> relu" * n,
        "-" * n + v,
        "not " * n + v,
        " + ".join([v] * n),
        f"{v} ** " * min(n, 50) + "2",
        "if true { " * min(n, 100) + v + " } else { 0 }" * min(n, 100),
        f"[{v}] * {10**n if n < 10 else 10**9}",
        f"range({10 ** min(n, 15)})",
        f"str([0] * {n})" * 3,
    )
    new = rng.choice(shapes)
    if new.startswith(" |> "):
        return text[:b] + new + text[b:]
    return text[:a] + new + text[b:]


def _mutate_lines(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    op = rng.randrange(4)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    if op == 0:
        del lines[i]
    elif op == 1:
        lines.insert(i, lines[j])
    elif op == 2:
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines[i] = lines[i].strip()  # indentation carries no meaning: still valid
    return "\n".join(lines)


def _truncate(text: str, rng: random.Random) -> str:
    if rng.random() < 0.5:
        return text[: rng.randrange(len(text) + 1)]
    a = rng.randrange(len(text) + 1)
    return text[:a] + text[a + rng.randint(1, 40) :]


def _mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not b:
            break
        i = rng.randrange(len(b))
        op = rng.randrange(3)
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i] = rng.randrange(256)
        else:
            b.insert(i, rng.choice((0x80, 0xC0, 0xE2, 0xFF, 0xEF, 0x00)))
    return bytes(b)


def mutants(text: str, other: str, rng: random.Random, count: int) -> Iterator[tuple[str, Any]]:
    """`count` (kind, mutant) pairs of `text`; a "bytes" mutant is bytes, the rest str."""
    pool = _pool()
    kinds = ("token", "token", "token", "number", "unicode", "structure", "lines", "truncate")
    kinds += ("bytes", "splice")
    for _ in range(count):
        kind = rng.choice(kinds)
        if kind == "token":
            yield kind, _mutate_tokens(text, rng, pool)
        elif kind == "number":
            yield kind, _mutate_numbers(text, rng)
        elif kind == "unicode":
            yield kind, _mutate_unicode(text, rng)
        elif kind == "structure":
            yield kind, _mutate_structure(text, rng)
        elif kind == "lines":
            yield kind, _mutate_lines(text, rng)
        elif kind == "truncate":
            yield kind, _truncate(text, rng)
        elif kind == "bytes":
            yield kind, _mutate_bytes(text.encode("utf-8"), rng)
        else:
            a, b = rng.randrange(len(text) + 1), rng.randrange(len(other) + 1)
            yield kind, text[:a] + other[b:]


# --- the checks ------------------------------------------------------------------------------


class Finding(Exception):
    """What a check found wrong with netc, in words; `kind` groups findings."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


def check(source: str | bytes, folder: Path) -> tuple[str, Any]:
    """What `netc check FOLDER/fuzz.net` does with `source`: ("compiled", the model) or
    ("refused", the NetcError). Raises Finding for a crash or a diagnostic outside the file.
    Text is compiled as the file's text, imports read beside it (`library()` writes lib.net
    there); bytes are written to the file and read from it, as the command line reads one."""
    path = str(folder / "fuzz.net")
    try:
        if isinstance(source, bytes):
            Path(path).write_bytes(source)
            model = netc.compile(path)
        else:
            model = netc.compile_text(source, path=path)
        model.layer_count, model.total_params  # noqa: B018 -- the summary `check` prints
        for w in model.warnings:
            w.render(model.sources).encode("utf-8")
        return "compiled", model
    except NetcError as e:
        _check_diagnostics(e, source, path)
        return "refused", e
    except Finding:
        raise
    except Exception as e:  # noqa: BLE001 -- the finding: a traceback where a diagnostic belongs
        raise Finding("internal error", "".join(traceback.format_exception(e))) from None


def _check_diagnostics(e: NetcError, source: str | bytes, path: str) -> None:
    rendered = e.render()
    try:
        rendered.encode("utf-8")
    except UnicodeEncodeError:
        raise Finding("unprintable diagnostic", ascii(rendered)) from None
    if not e.diagnostics or not any(d.severity == "error" for d in e.diagnostics):
        raise Finding("no error", rendered)
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError:
            return
    lines = source.split("\n")
    for d in e.diagnostics:
        if not d.message.strip():
            raise Finding("empty message", rendered)
        s = d.span
        if s is None or s.path != path:
            continue
        if not 1 <= s.line <= len(lines) or not 1 <= s.col <= len(lines[s.line - 1]) + 2:
            raise Finding("diagnostic outside the file", f"{s}: {d.message}")


def check_reader(text: str) -> None:
    """The reader and Lark build the same tree (Finding if not)."""
    import dataclasses

    from netc import reader
    from netc.parse import parse_with_lark

    def flat(x: Any) -> list[Any]:  # in a loop: a chain of 10,000 stages nests that deep
        out: list[Any] = []
        todo = [x]
        while todo:
            v = todo.pop()
            if dataclasses.is_dataclass(v) and not isinstance(v, type):
                names = [f.name for f in dataclasses.fields(v)]
                out.append((type(v).__name__, *names))
                todo.extend(reversed([getattr(v, n) for n in names]))
            elif isinstance(v, tuple):
                out.append(("tuple", len(v)))
                todo.extend(reversed(v))
            else:
                out.append(v)
        return out

    try:
        ours = flat(reader.read(text, "fuzz.net"))
    except (reader.Unreadable, NetcError):
        return
    except Exception as e:  # noqa: BLE001
        raise Finding("internal error", "".join(traceback.format_exception(e))) from None
    try:
        theirs = flat(parse_with_lark(text, "fuzz.net"))
    except NetcError as e:
        raise Finding("reader accepts what Lark refuses", e.render()) from None
    except Exception as e:  # noqa: BLE001
        raise Finding("internal error", "".join(traceback.format_exception(e))) from None
    if ours != theirs:
        raise Finding("reader and Lark build different trees", "")


def check_onnx(model: Any, k: int) -> None:
    """The network compiled to ONNX passes onnx.checker (with shape inference) and runs in
    ONNX Runtime as in the float64 reference."""
    from conformance import inputs_for

    from netc import driver
    from netc.runtime import load
    from netc.runtime.reference import run as reference_run
    from netc.runtime.tolerance import mismatch
    from netc.weights import randomized_weights

    weights = randomized_weights(model.graph, seed=k)
    level = (0, 2)[k % 2]
    try:
        artifact = driver.emit(model, "onnx", weights=weights, level=level)
    except NetcError as e:
        raise Finding("valid network not lowered to ONNX", e.render()) from None
    import onnx

    try:
        onnx.checker.check_model(artifact, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise Finding("onnx.checker refuses the model", str(e)) from None
    session = load(artifact, device="cpu", graph_optimization="all", threads=1)
    feed = inputs_for(model.graph, batch=(1, 3)[k % 2], kind="normal", seed=k)
    want = reference_run(model.graph, feed, weights, wide=True)
    got = session.run(feed)
    for name, value in want.items():
        problem = mismatch(got[name], value, scope="model")
        if problem:
            raise Finding(
                "ONNX Runtime disagrees with the reference", f"{name} at -O{level}: {problem}"
            )


# --- the campaign ----------------------------------------------------------------------------


class Timeout(BaseException):
    """An input took longer than the time limit (a BaseException: `check` must not take it
    for a crash of netc, nor netc's own handlers swallow it)."""


def _alarm(signum: int, frame: Any) -> None:
    raise Timeout


@dataclass
class Worker:
    """One process's share of the campaign and its shared counters."""

    index: int
    quota: int
    args: Any
    started: Any  # shared array: when the current input started (0: between inputs)
    done: Any  # shared array: inputs checked


def _run_worker(w: Worker, attempt: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))
    signal.signal(signal.SIGPROF, _alarm)  # CPU time: other work on the machine does not count
    out = Path(w.args.out)
    current = os.open(out / f"current-{w.index}.net", os.O_WRONLY | os.O_CREAT, 0o644)
    stats: Counter[str] = Counter()
    folder = library(Path(tempfile.mkdtemp(prefix="netc-fuzz-")))
    examples = [p.read_text() for p in sorted((ROOT / "examples").glob("*.net"))]
    state = {"k": 0, "previous": examples[0]}

    def one(kind: str, source: str | bytes) -> tuple[str, Any]:
        data = source if isinstance(source, bytes) else source.encode("utf-8", "surrogatepass")
        os.lseek(current, 0, 0)
        os.write(current, data)
        os.ftruncate(current, len(data))
        w.started[w.index] = time.time()
        signal.setitimer(signal.ITIMER_PROF, w.args.timeout)
        try:
            outcome, value = check(source, folder)
        except Timeout:
            _record(out, "hang", f"over {w.args.timeout} s", source, kind)
            outcome, value = "hang", None
        except Finding as f:
            _record(out, f.kind, f.detail, source, kind)
            outcome, value = "finding", None
        except MemoryError:
            _record(out, "out of memory", "MemoryError under a 4 GiB limit", source, kind)
            outcome, value = "finding", None
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            w.started[w.index] = 0
        stats[f"{kind}:{outcome}"] += 1
        w.done[w.index] += 1
        return outcome, value

    def network(text: str) -> None:
        if w.done[w.index] >= w.quota:
            raise _QuotaReached
        k = state["k"] = state["k"] + 1
        outcome, model = one("valid", text)
        if outcome == "refused":
            _record(out, "valid network refused", model.render(), text, "valid")
        elif outcome == "compiled" and w.args.onnx_every and k % w.args.onnx_every == 0:
            signal.setitimer(signal.ITIMER_PROF, w.args.timeout * 6)
            try:
                check_onnx(model, k)
                stats["onnx:agrees"] += 1
            except Finding as f:
                _record(out, f.kind, f.detail, text, "onnx")
                stats["onnx:finding"] += 1
            except Timeout:
                _record(out, "hang", "ONNX check over its time limit", text, "onnx")
            except Exception as e:  # noqa: BLE001
                detail = "".join(traceback.format_exception(e))
                _record(out, "ONNX check crashed", detail, text, "onnx")
                stats["onnx:finding"] += 1
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)
        rng = random.Random(hashlib.sha256(f"{w.args.seed}:{k}:{text}".encode()).digest())
        base = text if rng.random() < 0.8 else rng.choice(examples)
        for kind, mutant in mutants(base, state["previous"], rng, w.args.mutants):
            outcome, _ = one(kind, mutant)
            if kind != "bytes" and rng.random() < 0.05 and isinstance(mutant, str):
                try:
                    check_reader(mutant)
                except Finding as f:
                    _record(out, f.kind, f.detail, mutant, kind)
            if w.done[w.index] >= w.quota:
                raise _QuotaReached
        state["previous"] = text

    chunk = 0
    try:
        while w.done[w.index] < w.quota:
            run = given(networks())(network)
            run = settings(
                max_examples=200,
                database=None,
                deadline=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
                verbosity=Verbosity.quiet,
            )(run)
            run = seed(hash((w.args.seed, w.index, attempt, chunk)) & 0xFFFFFFFF)(run)
            try:
                run()
            except _QuotaReached:
                break
            except Exception as e:  # noqa: BLE001 -- a bug of this script: say it, go on
                _record(out, "fuzzer error", "".join(traceback.format_exception(e)), "", "none")
            chunk += 1
    finally:
        (out / f"stats-{w.index}-{attempt}.json").write_text(json.dumps(stats))


class _QuotaReached(Exception):
    pass


def _record(out: Path, kind: str, detail: str, source: str | bytes, input_kind: str) -> None:
    """Save a finding: the input, with what went wrong in its leading comment."""
    data = source if isinstance(source, bytes) else source.encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(data).hexdigest()[:12]
    slug = "-".join(kind.lower().split())
    folder = out / "findings"
    folder.mkdir(exist_ok=True)
    note = "".join(f"# {line}\n" for line in f"{kind} ({input_kind} input)\n{detail}".split("\n"))
    (folder / f"{slug}-{digest}.net").write_bytes(note.encode("utf-8", "replace") + data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0, help="CPU seconds per input")
    parser.add_argument("--mutants", type=int, default=19, help="mutants per valid network")
    parser.add_argument("--onnx-every", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "build" / "fuzz"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("stats-*.json"), *out.glob("current-*.net")]:
        old.unlink()
    ctx = multiprocessing.get_context("fork")
    started = ctx.Array("d", args.jobs, lock=False)
    done = ctx.Array("q", args.jobs, lock=False)
    quotas = [args.inputs // args.jobs + (i < args.inputs % args.jobs) for i in range(args.jobs)]
    workers = [Worker(i, quotas[i], args, started, done) for i in range(args.jobs)]
    attempts = [0] * args.jobs
    procs: dict[int, Any] = {}
    hangs = crashes = 0
    t0, cpu0 = time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    hard = args.timeout * 6 + 60  # past the worker's own alarm (and the ONNX check's)

    def start(i: int) -> None:
        procs[i] = ctx.Process(target=_run_worker, args=(workers[i], attempts[i]), daemon=True)
        procs[i].start()

    for i in range(args.jobs):
        start(i)
    last_report = t0
    while procs:
        time.sleep(0.5)
        now = time.time()
        for i, proc in list(procs.items()):
            stuck = started[i] and now - started[i] > hard
            if stuck:
                proc.kill()
                proc.join()
            if proc.is_alive():
                continue
            del procs[i]
            if stuck or proc.exitcode != 0:
                data = (out / f"current-{i}.net").read_bytes()
                kind = "hang" if stuck else f"process died (exit code {proc.exitcode})"
                _record(out, kind, "the process was stopped", data, "unknown")
                hangs += stuck
                crashes += not stuck
                done[i] += 1
                started[i] = 0
                if done[i] < workers[i].quota:
                    attempts[i] += 1
                    start(i)
        if now - last_report > 60:
            last_report = now
            total = sum(done)
            print(f"{total:,} inputs, {total / (now - t0):.0f}/s, {now - t0:.0f} s", flush=True)
    wall = time.time() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats: Counter[str] = Counter()
    for f in out.glob("stats-*.json"):
        stats.update(json.loads(f.read_text()))
    findings = (
        sorted(p.name for p in (out / "findings").glob("*.net"))
        if (out / "findings").exists()
        else []
    )
    summary = {
        "inputs": sum(done),
        "wall_seconds": round(wall),
        "cpu_seconds": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime),
        "jobs": args.jobs,
        "seed": args.seed,
        "timeout": args.timeout,
        "outcomes": dict(sorted(stats.items())),
        "killed_hangs": hangs,
        "dead_processes": crashes,
        "findings": findings,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
