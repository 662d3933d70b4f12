"""The limits that keep a compilation small and finite, whatever the source says.

Each is checked before the work or memory it bounds, and a source past one gets a located
error (the parameter count also a warning well before its limit). The command line sets them
with `--limit NAME=VALUE` (gcc's `--param` style), the library with `Limits(...)`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

GiB = 2**30


@dataclass(frozen=True)
class Limits:
    """How much a compilation may read, nest, repeat and allocate."""

    source_bytes: int = 8 * 2**20  # one source file (the main one or an import)
    nesting: int = 64  # brackets inside brackets
    expression: int = 1_000_000  # tokens of one statement's expression
    depth: int = 64  # block calls inside block calls
    iterations: int = 1_000_000  # loop iterations in all, and the items of one list
    # a block call or a node costs tens of microseconds to elaborate: at these a file is
    # refused within seconds (real models have a few thousand nodes, weights included)
    calls: int = 200_000  # block calls in all
    nodes: int = 200_000  # IR nodes of a model
    elements: int = 2**31  # elements of one value (symbolic dims count as 1)
    params: int = 10**10  # parameters of a model (a warning past PARAMS_WARNING)
    weight_bytes: int = 16 * GiB  # the weights' memory, each in its own dtype

    def with_settings(self, settings: list[str] | tuple[str, ...]) -> Limits:
        """These limits with `NAME=VALUE` settings applied; ValueError names a bad one."""
        known = {f.name.replace("_", "-"): f.name for f in fields(self)}
        changes: dict[str, int] = {}
        for setting in settings:
            name, sep, value = setting.partition("=")
            key = known.get(name.strip().replace("_", "-"))
            if not sep or key is None:
                raise ValueError(
                    f"unknown limit `{setting}`; limits: {', '.join(known)} (as NAME=VALUE)"
                )
            try:
                number = int(value.replace("_", "").strip())
            except ValueError:
                raise ValueError(f"limit `{name}` needs a whole number, got `{value}`") from None
            if number < 1:
                raise ValueError(f"limit `{name}` must be at least 1, got {number}")
            changes[key] = number
        return replace(self, **changes)


PARAMS_WARNING = 10**9  # a model this large gets a warning: it is rarely meant


def describe_bytes(n: int) -> str:
    """`1.5 GiB`, `12.0 MiB`, `512 bytes`."""
    for unit, size in (("GiB", GiB), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"
