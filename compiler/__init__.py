"""netc: a compiler for neural networks. One `.net` source, checked, optimized and lowered.

    import netc
    model = netc.compile("examples/mnist_mlp.net")   # or netc.compile(text) for source text
    print(model.total_params, model.graph)

Mistakes in the source raise `NetcError`, which carries every diagnostic and renders like the CLI.
Names load on first use, so `import netc` costs little until a model is compiled.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .source import Diagnostic, NetcError, Reporter, SourceMap, Span

if TYPE_CHECKING:
    from .ir import Graph, Node, TensorType, print_graph, verify
    from .limits import Limits
    from .summary import Layer, Model, WeightSpec

__all__ = [
    "compile",
    "compile_text",
    "Model",
    "Layer",
    "WeightSpec",
    "Limits",
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

_LAZY = {
    "Graph": "ir",
    "Node": "ir",
    "TensorType": "ir",
    "print_graph": "ir",
    "verify": "ir",
    "Model": "summary",
    "Layer": "summary",
    "WeightSpec": "summary",
    "Limits": "limits",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'netc' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def compile(  # noqa: A001
    source: str | Path,
    *,
    model: str | None = None,
    include: Iterable[str | Path] = (),
    limits: Limits | None = None,
) -> Model:
    """Parse, elaborate and check a `.net` file (a path) or source text (a string holding `{`).

    Imports read only inside the file's folder and the `include` folders (then those of the
    NETC_PATH environment variable); for source text the current folder stands for the file's.
    `limits` bound the work and memory a source may ask for (`netc.Limits`)."""
    if isinstance(source, str) and "{" in source:
        return compile_text(source, model=model, include=include, limits=limits)
    from .source import read_source

    path = str(source)
    text = read_source(path, limits)
    return compile_text(text, path=path, model=model, include=include, limits=limits)


def compile_text(
    text: str,
    *,
    path: str = "<string>",
    model: str | None = None,
    include: Iterable[str | Path] = (),
    limits: Limits | None = None,
) -> Model:
    """Like `compile`, for source text; `path` names it in diagnostics and places it for its
    imports (`<string>`: the current folder)."""
    from .elaborate import deep_stack, elaborate
    from .imports import ImportPaths
    from .ir import verify
    from .limits import Limits, describe_bytes
    from .parse import parse
    from .source import error
    from .summary import Model

    limits = limits or Limits()
    size = len(text)
    if size * 4 > limits.source_bytes:  # a character is at most 4 bytes of UTF-8
        size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.source_bytes:
        raise error(
            f"{path} is larger than the limit of {describe_bytes(limits.source_bytes)} for a "
            "source file",
            hint="raise it with `--limit source-bytes=N` if the file is meant to be this large",
        )
    reporter = Reporter()
    reporter.sources.add(path, text)
    paths = ImportPaths.for_file(path, include)
    try:
        with deep_stack():
            try:
                module = parse(text, path, limits)
            except NetcError as e:
                raise NetcError(e.diagnostics, reporter.sources) from None
            result = elaborate(module, reporter, model, limits=limits, paths=paths)
    except RecursionError:  # a last resort: the limits and loops are meant to prevent it
        raise NetcError(
            [
                Diagnostic(
                    "error",
                    f"{path} nests too deeply to check",
                    hint="nest fewer brackets and block calls",
                )
            ],
            reporter.sources,
        ) from None
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
