"""netc: a compiler for neural networks. One `.net` source, checked, optimized and lowered.

    import netc
    model = netc.compile("examples/mnist_mlp.net")   # or netc.compile(text) for source text
    print(model.total_params, model.graph)

Mistakes in the source raise `NetcError`, which carries every diagnostic and renders like the CLI.
"""

from __future__ import annotations

from pathlib import Path

from .ir import Graph, Node, TensorType, print_graph, verify
from .source import Diagnostic, NetcError, Reporter, SourceMap, Span
from .summary import Layer, Model, WeightSpec

__all__ = [
    "compile",
    "compile_text",
    "Model",
    "Layer",
    "WeightSpec",
    "Graph",
    "Node",
    "TensorType",
    "NetcError",
    "Diagnostic",
    "Span",
    "SourceMap",
    "print_graph",
    "verify",
]
__version__ = "0.1.0"


def compile(source: str | Path, *, model: str | None = None) -> Model:  # noqa: A001
    """Parse, elaborate and check a `.net` file (a path) or source text (a string holding `{`)."""
    if isinstance(source, str) and "{" in source:
        return compile_text(source, model=model)
    from .source import read_source

    path = str(source)
    return compile_text(read_source(path), path=path, model=model)


def compile_text(text: str, *, path: str = "<string>", model: str | None = None) -> Model:
    """Like `compile`, for source text; `path` names it in diagnostics and resolves imports."""
    from .elaborate import elaborate
    from .parse import parse

    reporter = Reporter()
    reporter.sources.add(path, text)
    try:
        module = parse(text, path)
    except NetcError as e:
        raise NetcError(e.diagnostics, reporter.sources) from None
    result = elaborate(module, reporter, model)
    diagnostics = _dedupe(reporter.diagnostics)
    if any(d.severity == "error" for d in diagnostics):
        raise NetcError(diagnostics, reporter.sources)
    verify(result.graph)
    warnings = tuple(
        sorted((d for d in diagnostics if d.severity == "warning"), key=Diagnostic.sort_key)
    )
    return Model(result.graph, result.train, warnings, reporter.sources, path)


def _dedupe(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """One diagnostic per (severity, message, span): a block called ten times errs once."""
    seen, out = set(), []
    for d in diagnostics:
        key = (d.severity, d.message, d.span)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out
