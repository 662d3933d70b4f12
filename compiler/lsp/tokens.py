"""Semantic tokens: what each name is, which the TextMate grammar cannot know (a block called
before it is defined, a constant, a parameter, a value, a train setting), so that a theme
colours ops, blocks, constants, parameters and train settings apart.
"""

from __future__ import annotations

from lsprotocol import types as lsp

from .. import syntax as ast
from ..elaborate import BUILTINS, LANGUAGE_OPS
from ..ir import DTYPES
from ..train_spec import CALLBACKS, LOSS_ALIASES, LOSSES, METRICS, OPTIMIZERS, SCHEDULES
from .analysis import Analysis
from .legend import TOKEN_MODIFIERS, TOKEN_TYPES
from .names import binds, occurrences
from .select import _owner_of
from .text import Text

_TYPE = {name: i for i, name in enumerate(TOKEN_TYPES)}
_MOD = {name: 1 << i for i, name in enumerate(TOKEN_MODIFIERS)}
_TRAIN_NAMES = frozenset(
    [*LOSSES, *LOSS_ALIASES, *OPTIMIZERS, *SCHEDULES, *CALLBACKS, *METRICS, "per_output"]
)
_PARAM_TYPES = frozenset(["int", "float", "bool", "str", "list", "tuple", "tensor", "any"])


def classify(
    analysis: Analysis | None, module: ast.Module | None, text: str
) -> list[tuple[int, int, int, str, tuple[str, ...]]]:
    """(line, col, length, type, modifiers) for each name of `text` that has a meaning here
    (1-based line and code-point column)."""
    blocks = analysis.blocks if analysis is not None else {}
    constants = analysis.constants if analysis is not None else {}
    models = {i.name for i in module.items if isinstance(i, ast.ModelDef)} if module else set()
    out: list[tuple[int, int, int, str, tuple[str, ...]]] = []
    in_train = _train_lines(module)
    for o in occurrences(text):
        owner = _owner_of(module, o.line) if module is not None else None
        kind: tuple[str, tuple[str, ...]] | None = None
        if o.role == "definition":
            if o.name in models:
                kind = ("class", ("declaration",))
            elif o.name in blocks:
                kind = ("class", ("declaration",))
            else:
                kind = ("variable", ("declaration", "readonly"))
        elif o.role == "kwarg":
            kind = ("parameter", ())
        elif o.role == "param":
            kind = ("parameter", ("declaration",))
        elif o.role == "setting":
            kind = ("property", ("declaration",))
        elif owner is not None and binds(owner, o.name):
            is_param = o.name in _params(owner)
            kind = ("parameter", ()) if is_param else ("variable", ())
        elif o.line in in_train and o.name in _TRAIN_NAMES:
            kind = ("function", ("defaultLibrary",))
        elif o.name in blocks:
            kind = ("class", ())  # a kind of layer: coloured apart from the ops
        elif o.name in constants:
            kind = ("variable", ("readonly",))
        elif o.name in LANGUAGE_OPS or o.name in BUILTINS:
            kind = ("function", ("defaultLibrary",))
        elif o.name in DTYPES or o.name in _PARAM_TYPES:
            kind = ("type", ())
        elif owner is not None and o.line == owner.span.line or _in_type(module, o.line, o.col):
            kind = ("typeParameter", ())
        if kind is not None:
            out.append((o.line, o.col, len(o.name), *kind))
    return out


def _params(owner: ast.BlockDef | ast.ModelDef) -> set[str]:
    decls = owner.params if isinstance(owner, ast.BlockDef) else (*owner.inputs, *owner.outputs)
    return {p.name for p in decls}


def _train_lines(module: ast.Module | None) -> set[int]:
    if module is None:
        return set()
    return {
        line
        for item in module.items
        if isinstance(item, ast.TrainDef)
        for line in range(item.span.line, item.span.end_line + 1)
    }


def _in_type(module: ast.Module | None, line: int, col: int) -> bool:
    """Whether (line, col) is a dim of a tensor type in a header."""
    if module is None:
        return False
    for item in module.items:
        if isinstance(item, (ast.BlockDef, ast.ModelDef)):
            decls = item.params if isinstance(item, ast.BlockDef) else (*item.inputs, *item.outputs)
            for p in decls:
                for s in p.type.dim_spans if p.type else ():
                    if s.line == line and s.col == col:
                        return True
    return False


def semantic_tokens(
    analysis: Analysis | None, module: ast.Module | None, text: str, encoding: str = "utf-16"
) -> lsp.SemanticTokens:
    """The semantic tokens of `text`, encoded as LSP's relative integers."""
    current = Text(text, encoding)
    data: list[int] = []
    last_line, last_start = 0, 0
    for line, col, length, kind, mods in sorted(classify(analysis, module, text)):
        line0 = line - 1
        start = current.position(line0, col - 1).character
        end = current.position(line0, col - 1 + length).character
        delta_line = line0 - last_line
        delta_start = start - last_start if delta_line == 0 else start
        modifiers = 0
        for m in mods:
            modifiers |= _MOD[m]
        data += [delta_line, delta_start, end - start, _TYPE[kind], modifiers]
        last_line, last_start = line0, start
    return lsp.SemanticTokens(data=data)
