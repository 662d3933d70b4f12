"""The outline (document symbols: imports, constants, blocks with their parameters, models with
their inputs, outputs and values, the train section with its settings) and folding ranges
(bodies, brackets over several lines, runs of comments, `# region` markers).
"""

from __future__ import annotations

from lsprotocol import types as lsp

from .. import syntax as ast
from ..fmt import _lex
from ..source import Span
from .text import LineMap, Text

K = lsp.SymbolKind


def document_symbols(
    module: ast.Module, old_text: str, text: str, encoding: str = "utf-16"
) -> list[lsp.DocumentSymbol]:
    """The outline of `module` (parsed from `old_text`), placed in the current `text`."""
    current = Text(text, encoding)
    lines = LineMap(old_text, text)

    def rng(span: Span) -> lsp.Range | None:
        start, end = lines.new(span.line - 1), lines.new(span.end_line - 1)
        if start is None or end is None:
            return None
        return lsp.Range(
            start=current.position(start, span.col - 1), end=current.position(end, span.end_col - 1)
        )

    def name_range(span: Span, name: str) -> lsp.Range | None:
        r = rng(span)
        if r is None:
            return None
        line = current.line(r.start.line)
        col = current.column(r.start)
        at = line.find(name, col)
        if at < 0:
            return lsp.Range(start=r.start, end=r.start)
        return lsp.Range(
            start=current.position(r.start.line, at),
            end=current.position(r.start.line, at + len(name)),
        )

    def symbol(
        name: str,
        kind: lsp.SymbolKind,
        span: Span,
        detail: str | None = None,
        children: list[lsp.DocumentSymbol] | None = None,
    ) -> lsp.DocumentSymbol | None:
        r, n = rng(span), name_range(span, name)
        if r is None or n is None:
            return None
        return lsp.DocumentSymbol(
            name=name, kind=kind, range=r, selection_range=n, detail=detail, children=children
        )

    def decls(params: tuple[ast.ParamDecl, ...], kind: lsp.SymbolKind) -> list[lsp.DocumentSymbol]:
        out = []
        for p in params:
            detail = ast.format_type(p.type) if p.type else "tensor"
            s = symbol(p.name, kind, p.span, detail)
            if s is not None:
                out.append(s)
        return out

    def body(stmts: tuple[ast.Stmt, ...]) -> list[lsp.DocumentSymbol]:
        out: list[lsp.DocumentSymbol | None] = []
        seen: set[str] = set()
        for s in stmts:
            if isinstance(s, ast.ConstDef):
                out.append(symbol(s.name, K.Constant, s.span, "const"))
            elif isinstance(s, ast.Assign):
                spans = s.target_spans or (s.span,) * len(s.targets)
                for t, sp in zip(s.targets, spans):
                    if t not in seen and not t.startswith("_"):  # a value once, where first set
                        seen.add(t)
                        out.append(symbol(t, K.Variable, sp))
            elif isinstance(s, (ast.For, ast.If)):
                inner = s.body if isinstance(s, ast.For) else (*s.then, *s.else_)
                for child in body(inner):
                    if child.name not in seen:
                        seen.add(child.name)
                        out.append(child)
        return [s for s in out if s is not None]

    out: list[lsp.DocumentSymbol | None] = []
    for item in module.items:
        if isinstance(item, ast.Import):
            out.append(symbol(item.path, K.File, item.span, "import"))
        elif isinstance(item, ast.ConstDef):
            out.append(symbol(item.name, K.Constant, item.span, "const"))
        elif isinstance(item, ast.BlockDef):
            children = decls(item.params, K.Variable) + body(item.body)
            out.append(symbol(item.name, K.Function, item.span, "block", children))
        elif isinstance(item, ast.ModelDef):
            children = decls(item.inputs, K.Field) + decls(item.outputs, K.Field)
            children += [c for c in body(item.body) if c.name not in {o.name for o in item.outputs}]
            out.append(symbol(item.name, K.Class, item.span, "model", children))
        elif isinstance(item, ast.TrainDef):
            settings = [
                symbol(k, K.Property, sp, ast.format_expr(v))
                for (k, v), sp in zip(item.entries, item.entry_spans)
            ]
            s = symbol("train", K.Module, item.span, None, [x for x in settings if x])
            out.append(s)
    return [s for s in out if s is not None]


def folding_ranges(text: str) -> list[lsp.FoldingRange]:
    """What folds: every bracket pair over several lines, runs of two or more comment lines, and
    `# region` ... `# endregion`. Read from the tokens: a text that does not parse folds too."""
    out: list[lsp.FoldingRange] = []
    stack: list[int] = []
    regions: list[int] = []
    comment_run: list[int] = []

    def close_comments() -> None:
        if len(comment_run) >= 2:
            out.append(
                lsp.FoldingRange(
                    start_line=comment_run[0],
                    end_line=comment_run[-1],
                    kind=lsp.FoldingRangeKind.Comment,
                )
            )
        comment_run.clear()

    last_code_line = -1
    for t in _lex(text):
        line0 = t.line - 1
        if t.kind == "comment":
            body = t.text[1:].strip()
            if body.startswith("region") and line0 != last_code_line:
                regions.append(line0)
            elif body.startswith("endregion") and regions:
                start = regions.pop()
                out.append(
                    lsp.FoldingRange(
                        start_line=start, end_line=line0, kind=lsp.FoldingRangeKind.Region
                    )
                )
            elif line0 != last_code_line:
                if comment_run and comment_run[-1] != line0 - 1:
                    close_comments()
                comment_run.append(line0)
            continue
        close_comments()
        last_code_line = line0
        if t.text in ("(", "[", "{"):
            stack.append(line0)
        elif t.text in (")", "]", "}") and stack:
            start = stack.pop()
            if line0 > start:
                # the closing line stays visible (`}` or `} else {`)
                out.append(lsp.FoldingRange(start_line=start, end_line=line0 - 1))
    close_comments()
    unique: dict[tuple[int, int], lsp.FoldingRange] = {}
    for r in out:
        if r.end_line > r.start_line or r.kind == lsp.FoldingRangeKind.Comment:
            unique.setdefault((r.start_line, r.end_line), r)
    return sorted(unique.values(), key=lambda r: (r.start_line, r.end_line))
