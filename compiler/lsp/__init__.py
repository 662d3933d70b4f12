"""The netc language server (`netc lsp`): diagnostics, hover, inlay hints, completion, signature
help, navigation, rename, symbols, semantic tokens, folding, quick fixes and formatting.

Each feature is a plain function from an `Analysis` (one document parsed and every model in it
elaborated, with the value each expression took) and a position to LSP types, in a module of
its own; `server.py` registers thin pygls handlers over them. `import netc` never imports this
package, and `import netc.lsp` imports neither pygls nor the compiler: the names below load
their module on first use, so that the server answers `initialize` before the compiler is
loaded (it warms it in the background).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .analysis import Analysis, Compiled, analyze
    from .complete import completion, signature_help
    from .describe import block_signature, hover
    from .inlay import inlay_hints
    from .navigation import definition
    from .outline import document_symbols, folding_ranges
    from .problems import code_actions, diagnostics
    from .server import State, create_server, main
    from .text import document_path, uri_of
    from .tokens import semantic_tokens
    from .usages import prepare_rename, references, rename

# name -> the module of this package that defines it
_EXPORTS = {
    "Analysis": "analysis",
    "Compiled": "analysis",
    "analyze": "analysis",
    "completion": "complete",
    "signature_help": "complete",
    "code_actions": "problems",
    "diagnostics": "problems",
    "block_signature": "describe",
    "hover": "describe",
    "inlay_hints": "inlay",
    "definition": "navigation",
    "document_symbols": "outline",
    "folding_ranges": "outline",
    "prepare_rename": "usages",
    "references": "usages",
    "rename": "usages",
    "State": "server",
    "create_server": "server",
    "main": "server",
    "document_path": "text",
    "uri_of": "text",
    "semantic_tokens": "tokens",
}

__all__ = [
    "Analysis",
    "Compiled",
    "State",
    "analyze",
    "block_signature",
    "code_actions",
    "completion",
    "create_server",
    "definition",
    "diagnostics",
    "document_path",
    "document_symbols",
    "folding_ranges",
    "hover",
    "inlay_hints",
    "main",
    "prepare_rename",
    "references",
    "rename",
    "semantic_tokens",
    "signature_help",
    "uri_of",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
