"""Hover: the type(s), parameters, FLOPs and weights of what the source under the cursor made, and
the reference of a name there (an op's signature and doc, a block, a constant, a builtin, a
train setting).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from lsprotocol import types as lsp

from .. import syntax as ast
from ..elaborate import BUILTIN_NEEDS, BUILTINS, LANGUAGE_OPS
from ..ops import lookup
from ..ops.docs import signature
from ..train_spec import SETTINGS
from . import training
from .analysis import Analysis, Compiled
from .select import (
    _amount,
    _distinct,
    _plural,
    _select,
    _Selection,
    _show,
    _word_at,
)
from .text import LineMap, Text, _norm
from .training import setting_help


def hover(
    analysis: Analysis,
    position: lsp.Position,
    *,
    text: str | None = None,
    extra: Sequence[Compiled] = (),
    encoding: str = "utf-16",
) -> lsp.Hover | None:
    """The inferred type(s), parameter count, FLOPs and weights of what the source at `position`
    created (aggregated over every call of a block), and the reference of an op, block or
    constant named there. `text` is the document's current text when `analysis` is of an older
    one; `extra` are models of other documents that import this one."""
    current = Text(analysis.text if text is None else text, encoding)
    old = LineMap(analysis.text, analysis.text if text is None else text).old(position.line)
    if old is None:
        return None
    line = current.line(position.line)
    col = current.column(position)
    models = [*analysis.models, *extra]
    parts: list[str] = []
    sel = _select(analysis, models, old + 1, col + 1)
    if sel is not None:
        parts.append(_describe(sel))
    word = _word_at(line, col)
    if word is not None:
        in_train = _in_train(analysis.module, old + 1)
        if in_train and word[0] in SETTINGS and line[word[2] :].lstrip().startswith("="):
            parts.append(setting_help(word[0]) or "")
        elif in_train and (found := training.function_help(word[0])) is not None:
            parts.append(found)
        else:
            parts.append(_reference(word[0], analysis))
    parts = [p for p in parts if p]
    if not parts:
        return None
    return lsp.Hover(
        contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value="\n\n---\n\n".join(parts))
    )


def _in_train(module: ast.Module | None, line: int) -> bool:
    """Whether 1-based `line` is inside the train section."""
    return module is not None and any(
        isinstance(i, ast.TrainDef) and i.span.line <= line <= i.span.end_line for i in module.items
    )


def _describe(sel: _Selection) -> str:
    """A selection in Markdown: its type(s), where it ran, its ops, params, FLOPs and weights."""
    lines: list[str] = []
    shown = _distinct(sel.values)
    if [s for s, _ in shown] == [sel.title] and not sel.nodes:
        return ""  # a literal: its value is what it says
    title = f"**`{sel.title}`**" if sel.title else ""
    if len(shown) == 1:
        lines.append(f"{title} : `{shown[0][0]}`" if title else f"`{shown[0][0]}`")
    else:
        if title:
            lines.append(title)
        if shown:
            lines.append("\n".join(f"- `{s}`" + (f" ×{n}" if n > 1 else "") for s, n in shown))
    if sel.block is not None and sel.calls:
        times = f", evaluated {len(sel.values)} times" if len(sel.values) > sel.calls else ""
        lines.append(f"in {_plural(sel.calls, 'call')} of `{sel.block}`{times}")
    elif sel.loop:
        lines.append(f"{_plural(sel.loop, 'iteration')}")
    elif len(sel.values) > 1:
        lines.append(f"evaluated {len(sel.values)} times (in a loop)")
    if sel.nodes:
        lines.append(_costs(sel))
    if not lines or lines == [title]:
        return ""
    return "\n\n".join(lines)


def _costs(sel: _Selection) -> str:
    """`3 ops (conv2d, batchnorm, relu) · params … · FLOPs …`, then the weights."""
    ops: dict[str, int] = {}
    weights: dict[str, str] = {}
    flops = 0
    params = 0
    for c, n, _ in sel.nodes:
        ops[n.op] = ops.get(n.op, 0) + 1
        layer = c.layers.get(n.name)
        flops += layer.flops if layer else 0
        for i in n.inputs:
            w = c.model.graph[i]
            if w.op == "param" and f"{c.name}/{w.name}" not in weights:
                weights[f"{c.name}/{w.name}"] = f"`{w.name}` `{w.type}`"
                params += w.tensor_type.numel()
    names = ", ".join(op + (f" ×{k}" if k > 1 else "") for op, k in ops.items())
    # symbolic dims other than the batch count as 1: say so (`netc summary --dim` sets them)
    assumed = sorted({s for c, _, _ in sel.nodes for s in c.model.assumed_dims})
    at = f" at {', '.join(f'{s}=1' for s in assumed)}" if assumed else ""
    text = (
        f"{_plural(len(sel.nodes), 'op')} ({names}) · params **{_amount(params)}**"
        f" · FLOPs **{_amount(flops)}** per sample{at}"
    )
    if weights:
        listed = list(weights.values())
        more = f"\n- … and {len(listed) - 8} more" if len(listed) > 8 else ""
        text += "\n\nweights:\n" + "\n".join(f"- {w}" for w in listed[:8]) + more
    models = sorted({c.name for c, _, _ in sel.nodes})
    if len(models) > 1:
        text += "\n\nin models " + ", ".join(f"`{m}`" for m in models)
    return text


def _reference(word: str, analysis: Analysis) -> str:
    """What a name is: an op's signature and first doc paragraph, a block's signature, a
    constant's value, a built-in function."""
    if word in analysis.blocks:
        b = analysis.blocks[word]
        where = os.path.relpath(_norm(b.span.path), os.path.dirname(analysis.path))
        return f"```netc\n{block_signature(b)}\n```\n\ndefined at {where}:{b.span.line}"
    if word in analysis.constants:
        return f"```netc\nconst {word} = {_show(analysis.constants[word])}\n```"
    if word in LANGUAGE_OPS:
        opdef = lookup(word)
        return f"```netc\n{signature(opdef)}\n```\n\n{opdef.doc.split(chr(10) * 2)[0]}"
    if word in BUILTINS:
        needs = BUILTIN_NEEDS.get(word, "one tensor")
        return f"```netc\n{word}(...)\n```\n\nbuilt-in function; takes {needs}"
    return ""


def block_signature(b: ast.BlockDef) -> str:
    """`block conv_bn(x, filters: int, kernel: int = 3)`."""
    params = []
    for p in b.params:
        text = p.name + (f": {ast.format_type(p.type)}" if p.type else "")
        params.append(text + (f" = {ast.format_expr(p.default)}" if p.default else ""))
    return f"block {b.name}({', '.join(params)})"
