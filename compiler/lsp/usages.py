"""Find references and rename: a block, a constant (across the document, the files it imports and
the open documents that import it), or a block's parameter (its uses in the body and its
`name=` at every call), a model's input or output, a local value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from lsprotocol import types as lsp

from .. import syntax as ast
from ..elaborate import BUILTINS, LANGUAGE_OPS
from ..parse import KEYWORDS, parse
from ..source import NetcError
from .analysis import Analysis
from .names import Occurrence, binds, occurrences
from .select import _owner_of, _word_at
from .text import LineMap, Text, _norm, uri_of

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Target:
    """What a name at a position refers to: a global (block or constant) or a name bound in one
    block or model (`owner`)."""

    name: str
    owner: str | None  # the block or model that binds it; None for a global
    path: str  # the file the owner is in (for a global: where it is defined)


@lru_cache(maxsize=64)
def _module(text: str, path: str) -> ast.Module | None:
    try:
        return parse(text, path)
    except NetcError:
        return None


def _owners(module: ast.Module | None) -> list[ast.BlockDef | ast.ModelDef]:
    if module is None:
        return []
    return [i for i in module.items if isinstance(i, (ast.BlockDef, ast.ModelDef))]


def _owner_at(module: ast.Module | None, line: int) -> ast.BlockDef | ast.ModelDef | None:
    return _owner_of(module, line) if module is not None else None


def target_at(
    analysis: Analysis, text: str, position: lsp.Position, encoding: str
) -> tuple[Target, Occurrence] | None:
    """The target of the name at `position` of the current `text`, and that occurrence."""
    current = Text(text, encoding)
    col = current.column(position)
    word = _word_at(current.line(position.line), col)
    if word is None:
        return None
    name = word[0]
    found = [
        o
        for o in occurrences(text)
        if o.line == position.line + 1 and o.col == word[1] + 1 and o.name == name
    ]
    if not found:
        return None
    here = found[0]
    if name in KEYWORDS:
        return None
    module = analysis.module
    if analysis.text != text:  # the analysed text is older: read the owners from this one
        module = _module(text, analysis.path) or module
    if here.role == "kwarg":
        if here.callee is not None and here.callee in analysis.blocks:
            block = analysis.blocks[here.callee]
            params = [p.name for p in block.params]
            if name in params:
                return Target(name, block.name, _norm(block.span.path)), here
        return None
    owner = _owner_at(module, here.line)
    if owner is not None and (here.role == "param" or binds(owner, name)):
        return Target(name, owner.name, analysis.path), here
    if name in analysis.definitions:
        return Target(name, None, _norm(analysis.definitions[name].path)), here
    if name in LANGUAGE_OPS or name in BUILTINS:
        return None
    return None


def _occurrences_of(
    target: Target, texts: Mapping[str, str], blocks: Mapping[str, ast.BlockDef]
) -> list[tuple[str, Occurrence]]:
    out: list[tuple[str, Occurrence]] = []
    for path, text in texts.items():
        module = _module(text, path)
        for o in occurrences(text):
            if o.name != target.name:
                continue
            if o.role == "kwarg":
                if target.owner is not None and o.callee == target.owner:
                    is_block = target.owner in blocks
                    if is_block and _norm(blocks[target.owner].span.path) == target.path:
                        out.append((path, o))
                continue
            if o.role == "setting":
                continue
            owner = _owner_at(module, o.line)
            if target.owner is None:
                if owner is not None and binds(owner, o.name) and o.role != "definition":
                    continue  # a local of the same name
                out.append((path, o))
            elif path == target.path and owner is not None and owner.name == target.owner:
                out.append((path, o))
    return out


def _texts(analysis: Analysis, text: str, others: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """Every text a name may be used in: the document as it is now, the files it reads, and
    other documents (path, current text) that read it."""
    texts = {p: t for p, t in analysis.sources.items() if not p.startswith("<")}
    texts[analysis.path] = text
    texts.update(dict(others))
    return texts


def references(
    analysis: Analysis,
    text: str,
    position: lsp.Position,
    *,
    include_declaration: bool = True,
    others: Sequence[tuple[str, str]] = (),
    encoding: str = "utf-16",
) -> list[lsp.Location]:
    """Every place the name at `position` is written, over the files it can be used in."""
    found = target_at(analysis, text, position, encoding)
    if found is None:
        return []
    target, _ = found
    texts = _texts(analysis, text, others)
    locations = []
    for path, o in _occurrences_of(target, texts, analysis.blocks):
        if not include_declaration and o.role in ("definition", "param"):
            continue
        locations.append(_location(path, texts[path], o, encoding))
    return locations


def _location(path: str, text: str, o: Occurrence, encoding: str) -> lsp.Location:
    return lsp.Location(uri=uri_of(path), range=_name_range(Text(text, encoding), o))


def _name_range(t: Text, o: Occurrence) -> lsp.Range:
    return lsp.Range(start=t.position(o.line - 1, o.col - 1), end=t.position(o.line - 1, o.end - 1))


def prepare_rename(
    analysis: Analysis, text: str, position: lsp.Position, encoding: str = "utf-16"
) -> lsp.Range | None:
    """The range of the name at `position` when it can be renamed (not an op or a keyword)."""
    found = target_at(analysis, text, position, encoding)
    if found is None:
        return None
    return _name_range(Text(text, encoding), found[1])


class RenameError(ValueError):
    """A rename the server refuses, with the reason shown to the user."""


def rename(
    analysis: Analysis,
    text: str,
    position: lsp.Position,
    new_name: str,
    *,
    others: Sequence[tuple[str, str]] = (),
    encoding: str = "utf-16",
) -> lsp.WorkspaceEdit | None:
    """Edits that rename the name at `position` everywhere it refers to the same thing."""
    found = target_at(analysis, text, position, encoding)
    if found is None:
        return None
    target, _ = found
    if not _IDENTIFIER.fullmatch(new_name) or new_name in KEYWORDS:
        raise RenameError(f"`{new_name}` is not a name")
    if target.owner is None and (
        new_name in analysis.definitions or new_name in LANGUAGE_OPS or new_name in BUILTINS
    ):
        raise RenameError(f"`{new_name}` is already defined")
    texts = _texts(analysis, text, others)
    changes: dict[str, list[lsp.TextEdit]] = {}
    for path, o in _occurrences_of(target, texts, analysis.blocks):
        edit = lsp.TextEdit(range=_name_range(Text(texts[path], encoding), o), new_text=new_name)
        changes.setdefault(uri_of(path), []).append(edit)
    return lsp.WorkspaceEdit(changes=changes)


def lines_of(analysis: Analysis, text: str) -> LineMap:
    """The line map from the analysed text to `text` (for callers that shift ranges)."""
    return LineMap(analysis.text, text)


def same_file(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)
