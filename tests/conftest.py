"""Shared fixtures: compile .net text written in a test. Loads skip_guard: a skip for any
reason but a missing GPU fails the run."""

from __future__ import annotations

import os
import textwrap

import pytest
from hypothesis import settings

# The guard's hooks, registered as this conftest's own (pytest_plugins is for the root only).
from skip_guard import pytest_configure  # noqa: F401

import netc

# CI runs the property tests on a fixed seed so that a landing never depends on luck; run
# them locally (without CI set) to explore new examples.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def compile_net(tmp_path):
    """Compile dedented .net text saved as a file in tmp_path; returns the Model."""

    def run(text: str, name: str = "model.net", **kw):
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return netc.compile(path, **kw)

    return run


@pytest.fixture
def errors_of(compile_net):
    """The rendered-free (line, col, severity, message) list of a failing compilation."""

    def run(text: str, **kw):
        with pytest.raises(netc.NetcError) as info:
            compile_net(text, **kw)
        return [
            (d.span.line if d.span else None, d.span.col if d.span else None, d.severity, d.message)
            for d in info.value.diagnostics
        ]

    return run
