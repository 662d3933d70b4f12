"""The semantic token legend: the kinds of name the server tells apart, and their modifiers.

In a module of its own because the server announces it before the compiler is loaded."""

from __future__ import annotations

from lsprotocol import types as lsp

TOKEN_TYPES = [
    "function",  # ops, builtins and the train section's functions (defaultLibrary)
    "class",  # blocks and models: kinds of layer, coloured apart from the ops
    "variable",  # constants (readonly), values
    "parameter",  # parameters, inputs, outputs, keyword arguments
    "property",  # train settings
    "type",  # dtypes and parameter types
    "typeParameter",  # symbolic dims
]
TOKEN_MODIFIERS = ["declaration", "readonly", "defaultLibrary"]
LEGEND = lsp.SemanticTokensLegend(token_types=TOKEN_TYPES, token_modifiers=TOKEN_MODIFIERS)
