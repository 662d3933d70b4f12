"""Completion and signature help, from the text before the cursor (which need not parse): the
open calls and their arguments so far, the last tokens, and the names in scope.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lsprotocol import types as lsp

from .. import syntax as ast
from ..elaborate import BUILTIN_NEEDS, BUILTINS, LANGUAGE_OPS
from ..ir import DTYPES
from ..ops import lookup
from ..ops.docs import signature
from ..ops.registry import describe_hint
from ..parse import KEYWORDS
from ..source import format_value
from ..train_spec import SETTINGS
from . import training
from .analysis import Analysis
from .describe import block_signature
from .select import _owner_of, _show, _walk, _word_at
from .text import LineMap, Text

SCALAR_TYPES = ("int", "float", "bool", "str", "list", "tensor")

_TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|\|>|->|==|!=|<=|>=|\d[\w.]*|\S'
)


@dataclass
class _Call:
    """An open `(` of a call before the cursor: the callee, and what the call has so far."""

    callee: str | None
    piped: bool
    args: int = 0  # commas at this level: the index of the argument being written
    keywords: set[str] = field(default_factory=set)


def _offset(text: str, line0: int, col0: int) -> int:
    lines = text.split("\n")
    return sum(len(s) + 1 for s in lines[:line0]) + col0


TRAIN = "train"  # the `{` of the train section, on the stack of open brackets


def _scan(text: str) -> tuple[list[_Call | str | None], list[str], bool]:
    """The open brackets at the end of `text` (a `_Call` per `(`, TRAIN for the train section's
    `{`, None for other `[` and `{`), its last tokens, and whether it ends inside a string or
    comment."""
    stack: list[_Call | str | None] = []
    tokens: list[str] = []
    inside = False
    for m in _TOKEN.finditer(text):
        tok = m.group()
        inside = tok[0] == "#" or (tok[0] == '"' and (len(tok) == 1 or not tok.endswith('"')))
        inside = inside and m.end() == len(text)
        if tok in ("(", "[", "{"):
            callee = tokens[-1] if tok == "(" and tokens and _is_name(tokens[-1]) else None
            before = tokens[-2] if len(tokens) >= 2 else ""
            if before in ("block", "model"):  # a definition's parameters, not a call
                callee = None
            piped = before == "|>"
            if tok == "(":
                stack.append(_Call(callee, piped))
            else:
                stack.append(TRAIN if tok == "{" and tokens and tokens[-1] == "train" else None)
        elif tok in (")", "]", "}"):
            if stack:
                stack.pop()
        elif tok == "," and stack and isinstance(stack[-1], _Call):
            stack[-1].args += 1
        elif tok == "=" and stack and isinstance(stack[-1], _Call) and tokens:
            if _is_name(tokens[-1]):
                stack[-1].keywords.add(tokens[-1])
        if tok[0] not in "#":
            tokens.append(tok)
    return stack, tokens, inside


def _is_name(tok: str) -> bool:
    return (tok[0].isalpha() or tok[0] == "_") and tok not in KEYWORDS


def _call_context(text: str, offset: int) -> _Call | None:
    stack, _, _ = _scan(text[:offset])
    return stack[-1] if stack and isinstance(stack[-1], _Call) else None


def completion(
    analysis: Analysis | None, text: str, position: lsp.Position, encoding: str = "utf-16"
) -> lsp.CompletionList:
    """Names that fit at `position`: after `|>` ops and blocks; in an op or block call its
    attribute or parameter names first (`stride=`); else ops, blocks, constants, local values,
    built-in functions and keywords; after `:` the types."""
    current = Text(text, encoding)
    col = current.column(position)
    line = current.line(position.line)
    word = _word_at(line, col)
    start = word[1] if word is not None and word[1] < col else col
    before = text[: _offset(text, position.line, start)]
    stack, tokens, inside = _scan(before)
    items: list[lsp.CompletionItem] = []
    if inside:
        return lsp.CompletionList(is_incomplete=False, items=[])
    last = tokens[-1] if tokens else ""
    blocks = analysis.blocks if analysis is not None else {}
    if last == ":":
        items += [
            _item(t, lsp.CompletionItemKind.TypeParameter, "type") for t in (*DTYPES, *SCALAR_TYPES)
        ]
        return lsp.CompletionList(is_incomplete=False, items=items)
    if TRAIN in stack:
        items = _train_items(stack, tokens, line[:start].strip() == "", analysis)
        return lsp.CompletionList(is_incomplete=False, items=items)
    call = stack[-1] if stack and isinstance(stack[-1], _Call) else None
    if call is not None and last in ("(", ","):
        items += _argument_items(call, blocks)
    if last == "|>":
        items += _callable_items(blocks)
        return lsp.CompletionList(is_incomplete=False, items=items)
    items += _callable_items(blocks)
    if analysis is not None:
        for name, value in analysis.constants.items():
            items.append(
                _item(name, lsp.CompletionItemKind.Constant, f"const {name} = {_show(value, True)}")
            )
        if analysis.module is not None:
            owner = _owner_of(analysis.module, _nearest_old_line(analysis, text, position.line))
            for name in _local_names(owner):
                items.append(_item(name, lsp.CompletionItemKind.Variable, "local value"))
    for name in BUILTINS:
        if name not in LANGUAGE_OPS:
            items.append(
                _item(
                    name,
                    lsp.CompletionItemKind.Function,
                    f"built-in: takes {BUILTIN_NEEDS.get(name, 'one tensor')}",
                )
            )
    items += [_item(k, lsp.CompletionItemKind.Keyword, "keyword") for k in KEYWORDS]
    unique: dict[str, lsp.CompletionItem] = {}
    for item in items:  # an argument named like an op, a constant named like a local: once
        unique.setdefault(item.label, item)
    return lsp.CompletionList(is_incomplete=False, items=list(unique.values()))


def _nearest_old_line(analysis: Analysis, text: str, line0: int) -> int:
    """The 1-based line of the analysed text nearest above `line0` of the current text."""
    lines = LineMap(analysis.text, text)
    for i in range(line0, -1, -1):
        old = lines.old(i)
        if old is not None:
            return old + 1
    return 1


def _item(
    label: str, kind: lsp.CompletionItemKind, detail: str, doc: str | None = None, **kw: Any
) -> lsp.CompletionItem:
    return lsp.CompletionItem(
        label=label,
        kind=kind,
        detail=detail,
        documentation=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=doc) if doc else None,
        **kw,
    )


def _callable_items(blocks: Mapping[str, ast.BlockDef]) -> list[lsp.CompletionItem]:
    items = [
        _item(
            name,
            lsp.CompletionItemKind.Function,
            signature(lookup(name)),
            lookup(name).doc.split("\n\n")[0],
        )
        for name in sorted(LANGUAGE_OPS)
    ]
    items += [
        _item(name, lsp.CompletionItemKind.Class, block_signature(b)) for name, b in blocks.items()
    ]
    return items


def _argument_items(call: _Call, blocks: Mapping[str, ast.BlockDef]) -> list[lsp.CompletionItem]:
    """The attributes of an op call (or parameters of a block call) not yet given."""
    names: list[tuple[str, str]] = []
    if call.callee in LANGUAGE_OPS:
        opdef = lookup(call.callee)
        given = call.args + (1 if call.piped else 0) - len(opdef.inputs)
        for i, a in enumerate(opdef.positional_attrs):
            if (given > i and not opdef.variadic) or a.name in call.keywords:
                continue
            default = "" if a.required else f" = {format_value(a.default)}"
            names.append((a.name, f"{describe_hint(a.hint)}{default}"))
        names.append(("name", "the layer's name (a string)"))
        for a in opdef.attrs:  # layer attributes (initializers, activation): by name only
            if a.name in opdef.layer_attrs and a.name not in call.keywords:
                names.append((a.name, f"{describe_hint(a.hint)} = {format_value(a.default)}"))
    elif call.callee is not None and call.callee in blocks:
        params = blocks[call.callee].params
        given = call.args + (1 if call.piped else 0)
        for i, p in enumerate(params):
            if i >= given and p.name not in call.keywords:
                names.append((p.name, ast.format_type(p.type) if p.type else "tensor"))
        names.append(("name", "the block call's name (a string)"))
    return [
        _item(n, lsp.CompletionItemKind.Property, detail, insert_text=f"{n}=", sort_text=f"0{i:03}")
        for i, (n, detail) in enumerate(names)
    ]


def _local_names(owner: ast.BlockDef | ast.ModelDef | None) -> list[str]:
    if owner is None:
        return []
    decls = owner.params if isinstance(owner, ast.BlockDef) else owner.inputs
    names = [p.name for p in decls]
    for s, _ in _walk(owner.body, owner):
        if isinstance(s, (ast.Assign, ast.For)):
            names += s.targets
        elif isinstance(s, ast.ConstDef):
            names.append(s.name)
    return list(dict.fromkeys(names))


def _train_items(
    stack: list[_Call | str | None], tokens: list[str], line_start: bool, analysis: Analysis | None
) -> list[lsp.CompletionItem]:
    """In the train section: its settings at the start of a line, the names a setting takes
    after its `=` (losses, optimizers, metrics, callbacks), a function's keyword arguments."""
    top = stack[-1]
    last = tokens[-1] if tokens else ""
    if isinstance(top, _Call) and top.callee in training.FUNCTIONS and last in ("(", ","):
        _, args = training.FUNCTIONS[top.callee]
        return [
            _item(
                k,
                lsp.CompletionItemKind.Property,
                a.describe(),
                insert_text=f"{k}=",
                sort_text=f"0{i:03}",
            )
            for i, (k, a) in enumerate(args.items())
            if k not in top.keywords
        ]
    if top == TRAIN and (last == "{" or (line_start and last != "=")):
        return [
            _item(
                k,
                lsp.CompletionItemKind.Property,
                SETTINGS[k],
                training.setting_help(k),
                insert_text=f"{k} = ",
            )
            for k in SETTINGS
        ]
    setting = None
    for i in range(len(tokens) - 1, 0, -1):
        if tokens[i] == "=" and tokens[i - 1] in (*SETTINGS, "learning_rate"):
            setting = tokens[i - 1]
            break
    items = [
        _item(
            name,
            lsp.CompletionItemKind.Function,
            training.signature(name) or name,
            training.function_help(name),
        )
        for name in training.CHOICES.get(setting or "", ())
    ]
    if analysis is not None:
        items += [
            _item(name, lsp.CompletionItemKind.Constant, f"const {name} = {_show(v, True)}")
            for name, v in analysis.constants.items()
        ]
    items += [
        _item(k, lsp.CompletionItemKind.Keyword, "keyword") for k in ("true", "false", "none")
    ]
    return items


# --- signature help -------------------------------------------------------------------------------


def signature_help(
    analysis: Analysis | None, text: str, position: lsp.Position, encoding: str = "utf-16"
) -> lsp.SignatureHelp | None:
    """The signature of the op, block, builtin or train function whose call the cursor is in,
    with the argument being written highlighted (a piped value counts as the first)."""
    current = Text(text, encoding)
    before = text[: _offset(text, position.line, current.column(position))]
    stack, tokens, inside = _scan(before)
    if inside:
        return None
    call = next((c for c in reversed(stack) if isinstance(c, _Call)), None)
    if call is None or call.callee is None:
        return None
    blocks = analysis.blocks if analysis is not None else {}
    params, doc, positional = _signature_params(call.callee, blocks)
    if params is None:
        return None
    # the argument being written: a keyword's own parameter, else by position
    keyword = None
    for i in range(len(tokens) - 1, 0, -1):
        if tokens[i] in (",", "("):
            break
        if tokens[i] == "=" and _is_name(tokens[i - 1]):
            keyword = tokens[i - 1]
            break
    names = [p for p, _ in params]
    if keyword is not None:
        active = names.index(keyword) if keyword in names else len(names)
    else:
        active = min(call.args + (1 if call.piped else 0), positional - 1) if positional else 0
    label = f"{call.callee}("
    infos = []
    for i, (_, shown) in enumerate(params):
        if i:
            label += ", "
        infos.append(lsp.ParameterInformation(label=(len(label), len(label) + len(shown))))
        label += shown
    label += ")"
    sig = lsp.SignatureInformation(
        label=label,
        documentation=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=doc) if doc else None,
        parameters=infos,
        active_parameter=active,
    )
    return lsp.SignatureHelp(signatures=[sig], active_signature=0, active_parameter=active)


def _signature_params(
    callee: str, blocks: Mapping[str, ast.BlockDef]
) -> tuple[list[tuple[str, str]] | None, str, int]:
    """(name, as shown) of each parameter, the documentation, and how many are positional."""
    if callee in blocks:
        b = blocks[callee]
        params = []
        for p in b.params:
            shown = p.name + (f": {ast.format_type(p.type)}" if p.type else "")
            params.append(
                (p.name, shown + (f" = {ast.format_expr(p.default)}" if p.default else ""))
            )
        return [*params, ("name", 'name="..."')], f"block `{callee}`", len(params)
    if callee in LANGUAGE_OPS:
        opdef = lookup(callee)
        params = [
            (n, f"{n}..." if opdef.variadic and i == len(opdef.inputs) - 1 else n)
            for i, n in enumerate(opdef.inputs)
        ]
        params += [
            (a.name, a.name if a.required else f"{a.name}={format_value(a.default)}")
            for a in opdef.positional_attrs
        ]
        positional = len(params)
        params += [
            (a.name, f"{a.name}={format_value(a.default)}")
            for a in opdef.attrs
            if a.name in opdef.layer_attrs
        ]
        return [*params, ("name", 'name="..."')], opdef.doc.split("\n\n")[0], positional
    if callee in training.FUNCTIONS:
        what, args = training.FUNCTIONS[callee]
        params = [(k, f"{k}: {a.describe()}") for k, a in args.items()]
        return params, f"Keras' {what}", len(params)
    if callee in BUILTINS:
        return [("...", "...")], f"built-in: takes {BUILTIN_NEEDS.get(callee, 'one tensor')}", 1
    return None, "", 0
