"""Fuzzing with seeded token mutations of the examples (deterministic, so CI never depends on
luck): the front end answers every mutant with a model or a NetcError, never a crash; and a
mutant that compiles runs the same in ONNX Runtime (-O0 and -O2) as in the numpy reference."""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pytest

import netc
from netc import driver
from netc.ir import verify
from netc.runtime import load
from netc.runtime.bench import random_inputs
from netc.runtime.reference import run as reference_run
from netc.source import NetcError
from netc.weights import initial_weights

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TOKEN = re.compile(r'"[^"\n]*"|[A-Za-z_]\w*|\d+\.\d*|\d+|\|>|->|\*\*|//|==|!=|<=|>=|\S')
SYNTAX_POOL = (
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    "=",
    "|>",
    "+",
    "-",
    "*",
    "/",
    "@",
    "0",
    "-1",
    "2.5",
    '"same"',
    "true",
    "none",
    "x",
    "N",
    "relu",
    "dense",
    "conv2d",
    "flatten",
    "if",
    "for",
    "return",
    "const",
    "block",
    "model",
    "f32",
    "i32",
    "channels",
    "range",
    "reshape",
    "concat",
    "split",
    "lstm",
    "name",
    "axis",
    "...",
    ":",
    "1e9",
    "99999",
)
LAYER_POOL = (
    "relu",
    "tanh",
    "sigmoid",
    "gelu",
    "softmax",
    "flatten",
    "3",
    "2",
    "1",
    "16",
    "8",
    '"same"',
    '"valid"',
    "maxpool",
    "avgpool",
    "conv1d",
    "dense",
    "batchnorm",
    "layernorm",
    "true",
    "false",
    "0.5",
    "dropout",
    "elu",
    "global_avgpool",
    "+",
    "*",
)


def mutants(paths: list[Path], pool: tuple[str, ...], count: int, seed: int):
    """`count` texts, each an example with 1-4 tokens replaced, deleted or inserted."""
    rng = random.Random(seed)
    for _ in range(count):
        path = rng.choice(paths)
        text = path.read_text()
        for _ in range(rng.randint(1, 4)):
            a, b = rng.choice([m.span() for m in TOKEN.finditer(text)])
            new = rng.choice(pool)
            text = rng.choice(
                (text[:a] + new + text[b:], text[:a] + text[b:], text[:a] + new + " " + text[a:])
            )
        yield path, text


def test_the_front_end_never_crashes_on_mutated_examples():
    compiled = failed = 0
    for path, text in mutants(sorted(EXAMPLES.glob("*.net")), SYNTAX_POOL, 600, seed=1):
        try:
            model = netc.compile_text(text, path=str(path))
        except NetcError as e:
            assert e.diagnostics and all(d.message for d in e.diagnostics)
            failed += 1
        else:  # any other exception fails the test with the mutant's traceback
            verify(model.graph)
            compiled += 1
    assert compiled + failed == 600 and failed > 300  # the mutations do break most files


@pytest.mark.parametrize("level", [0, 2])
def test_mutants_that_compile_run_the_same_in_onnx_runtime_and_the_reference(level):
    small = [
        EXAMPLES / f"{n}.net"
        for n in ("mnist_mlp", "lenet", "lstm_forecaster", "speech_classifier")
    ]
    ran = 0
    for path, text in mutants(small, LAYER_POOL, 120, seed=2):
        try:
            model = netc.compile_text(text, path=str(path))
        except NetcError:
            continue
        session = load(driver.emit(model, level=level), device="cpu")
        inputs = random_inputs(session.inputs, batch=2, symbols={"T": 6})
        want = reference_run(model.graph, inputs, initial_weights(model.graph))
        got = session.run(inputs)
        for name in want:
            np.testing.assert_allclose(
                got[name],
                want[name],
                rtol=1e-3,
                atol=1e-4,
                err_msg=f"{name} of this mutant of {path.name}:\n{text}",
            )
        ran += 1
    assert ran >= 20  # enough mutants survive to mean something
