"""`python -m netc ...` runs the `netc` command."""

from .cli import main

main()
