"""`python -m netc.lsp`: the same as `netc lsp` (stdio; `--tcp PORT` to debug)."""

from .server import main

main()
