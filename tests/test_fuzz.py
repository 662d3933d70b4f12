"""Fuzzing in CI: a seeded slice of bench/fuzz.py (its generated valid networks and every kind of
its mutants), and seeded mutations of the examples' code tokens (deterministic, so CI never
depends on luck; comments, trailing whitespace and the train section are never touched, since a
change there leaves the graph as it was). The campaign at scale is `python bench/fuzz.py`
(docs/fuzzing.md).

1. The front end answers every mutant with a model or a NetcError located in the mutated file,
   never a crash.
2. Mutants that compile to a graph unlike every example's run the same in ONNX Runtime (netc's
   -O0 and -O2, ONNX Runtime's optimizer off and at "all") as in the float64 reference, with
   randomized weights (netc.weights.randomized_weights: no zero bias, no identity batchnorm) on
   every edge input kind, within the model tolerance of netc.runtime.tolerance. The number of
   distinct new graphs is asserted, so a mutator that stops reaching the compiler fails.
"""

from __future__ import annotations

import hashlib
import random
import sys
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import lark
import pytest
from conformance import INPUT_KINDS, inputs_for
from hypothesis import HealthCheck, given, seed, settings
from test_check_implies_onnx import DOCUMENTED_REFUSALS

import netc
from netc import driver
from netc.grammar import GRAMMAR_PATH
from netc.ir import print_graph, verify
from netc.runtime import load
from netc.runtime.reference import run as reference_run
from netc.runtime.tolerance import assert_close
from netc.source import NetcError
from netc.weights import randomized_weights

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(ROOT / "bench"))
import fuzz  # noqa: E402 -- bench/fuzz.py: the campaign's generators and checks

SMALL = tuple(
    EXAMPLES / f"{n}.net" for n in ("mnist_mlp", "lenet", "lstm_forecaster", "speech_classifier")
)

# Tokens of any kind, for the front end: most of these break the file somewhere.
SYNTAX_POOL = (
    *("(", ")", "[", "]", "{", "}", ",", "=", "|>", "+", "-", "*", "/", "@", "...", ":"),
    *("0", "-1", "2.5", "1e9", "99999", '"same"', "true", "none", "x", "N", "f32", "i32"),
    *("relu", "dense", "conv2d", "flatten", "reshape", "concat", "split", "lstm", "channels"),
    *("if", "for", "return", "const", "block", "model", "range", "name", "axis"),
)

# For the agreement test: replacements that keep a file well-formed more often than not.
ACTIVATIONS = ("relu", "relu6", "tanh", "sigmoid", "gelu", "elu", "silu", "softplus", "abs")
ACTIVATIONS += ("neg", "leaky_relu", "softmax", "layernorm", "batchnorm", "dropout")
POOLS = ("maxpool", "avgpool")
STAGES = ACTIVATIONS + ("dense(8)", "dropout(0.5)", "leaky_relu(alpha=0.3)", "layernorm(axis=1)")
STAGES += ("batchnorm(epsilon=0.01)", "softmax(axis=1)", "elu(alpha=0.5)")
INTS = ("1", "2", "3", "4", "5", "8", "16")
FLOATS = ("0.1", "0.5", "1e-3", "2.0")
STRINGS = ('"same"', '"valid"')


@cache
def _lexer() -> lark.Lark:
    return lark.Lark(GRAMMAR_PATH.read_text(encoding="utf-8"), parser="lalr", lexer="basic")


def code_tokens(text: str) -> list[lark.Token]:
    """The tokens of `text` up to its train section (the lexer drops comments and whitespace)."""
    out = []
    for t in _lexer().lex(text):
        if t.type == "TRAIN":
            break
        out.append(t)
    return out


def _call_end(tokens: list[lark.Token], i: int) -> int:
    """The end offset of the call whose name is tokens[i]: the name, or its closing paren."""
    depth, j = 0, i + 1
    if j == len(tokens) or tokens[j].value != "(":
        return tokens[i].end_pos  # type: ignore[return-value]
    while True:
        depth += {"(": 1, ")": -1}.get(tokens[j].value, 0)
        if depth == 0:
            return tokens[j].end_pos  # type: ignore[return-value]
        j += 1


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    """`text` with each (start, end, new) edit applied; overlapping edits after the first are
    dropped."""
    out, last = text, None
    for a, b, new in sorted(edits, reverse=True):
        if last is not None and b > last:
            continue
        out, last = out[:a] + new + out[b:], a
    return out


def syntax_mutant(text: str, rng: random.Random) -> str:
    """`text` with 1-4 code tokens each replaced, deleted, or preceded by a pool token."""
    tokens = code_tokens(text)
    edits = []
    for t in rng.sample(tokens, rng.randint(1, 4)):
        a, b, new = t.start_pos, t.end_pos, rng.choice(SYNTAX_POOL)
        assert a is not None and b is not None
        edits.append(rng.choice(((a, b, new), (a, b, ""), (a, a, new + " "))))
    return _apply(text, edits)


def layer_mutant(text: str, rng: random.Random) -> str:
    """`text` with 1-3 code tokens changed as a user editing a network would: a number, a
    string or a flag replaced, an activation or pool swapped, a pipeline stage inserted,
    deleted or appended to a value."""
    tokens = code_tokens(text)
    targets = []
    for i, t in enumerate(tokens):
        before = tokens[i - 1].value if i else ""
        after = tokens[i + 1].value if i + 1 < len(tokens) else ""
        if t.type in ("INT", "FLOAT", "STRING", "TRUE", "FALSE") or t.value == "|>":
            targets.append(i)
        elif t.type == "NAME" and before in ("=", "|>", "(") and after not in (":", "="):
            targets.append(i)  # a value or an op in an expression, not a name being declared
    edits = []
    for i in rng.sample(targets, min(rng.randint(1, 3), len(targets))):
        t = tokens[i]
        a, b, v = t.start_pos, t.end_pos, t.value
        assert a is not None and b is not None
        if t.type == "INT":
            new = rng.choice(INTS)
        elif t.type == "FLOAT":
            new = rng.choice(FLOATS)
        elif t.type == "STRING":
            new = rng.choice(STRINGS)
        elif t.type in ("TRUE", "FALSE"):
            new = "false" if v == "true" else "true"
        elif v in ACTIVATIONS and rng.random() < 0.7:
            new = rng.choice(ACTIVATIONS)
        elif v in POOLS:
            new = rng.choice(POOLS)
        elif v == "|>" and tokens[i + 1].type == "NAME" and rng.random() < 0.5:
            b, new = _call_end(tokens, i + 1), ""  # drop the stage
        elif v == "|>":
            new = f"|> {rng.choice(STAGES)} |>"
        else:
            new = f"{v} |> {rng.choice(STAGES)}"
        edits.append((a, b, new))
    return _apply(text, edits)


def mutants(paths, mutate, count: int, seed: int) -> Iterator[tuple[Path, str]]:
    """`count` (example, mutated text) pairs, the same ones for the same seed."""
    rng = random.Random(seed)
    for _ in range(count):
        path = rng.choice(paths)
        yield path, mutate(path.read_text(), rng)


def ir_text(model: netc.Model) -> str:
    """The graph as the printer shows it, without source locations."""
    return print_graph(model.graph, locations=False)


def test_mutations_touch_only_code() -> None:
    text = (EXAMPLES / "mnist_mlp.net").read_text()
    tokens = code_tokens(text)
    assert tokens[0].value == "block" and tokens[-1].value == "}"  # no comment, no train
    rng = random.Random(0)
    for mutate in (syntax_mutant, layer_mutant):
        for _ in range(50):
            mutated = mutate(text, rng)
            assert mutated != text
            comments = [line for line in text.splitlines() if line.startswith("#")]
            assert [line for line in mutated.splitlines() if line.startswith("#")] == comments
            assert mutated[mutated.index("\ntrain {") :] == text[text.index("\ntrain {") :]


def test_the_front_end_never_crashes_on_mutated_examples() -> None:
    compiled = failed = 0
    examples = sorted(EXAMPLES.glob("*.net"))
    for path, text in mutants(examples, syntax_mutant, 600, seed=1):
        try:
            model = netc.compile_text(text, path=str(path))
        except NetcError as e:  # any other exception fails the test with the mutant's traceback
            lines = text.count("\n") + 1
            assert e.errors, text
            for d in e.errors:
                assert d.message and d.span is not None, (str(d), text)
                assert d.span.path == str(path) and 1 <= d.span.line <= lines, (str(d), text)
            failed += 1
        else:
            verify(model.graph)
            compiled += 1
    assert compiled + failed == 600 and failed > 400  # the mutations do break most files


@pytest.fixture(scope="module")
def new_graphs() -> list[tuple[Path, str, netc.Model]]:
    """The seeded layer mutants of the small examples that compile to a graph unlike every
    example's and every earlier mutant's."""
    seen = {ir_text(netc.compile(path)) for path in sorted(EXAMPLES.glob("*.net"))}
    out = []
    for path, text in mutants(SMALL, layer_mutant, 200, seed=2):
        try:
            model = netc.compile_text(text, path=str(path))
        except NetcError:
            continue
        ir = ir_text(model)
        if ir not in seen:
            seen.add(ir)
            out.append((path, text, model))
    return out


def test_enough_mutants_compile_to_new_graphs_of_every_example(new_graphs) -> None:
    per_example = Counter(path.stem for path, _, _ in new_graphs)
    assert len(new_graphs) >= 55, per_example
    assert all(per_example[path.stem] >= 8 for path in SMALL), per_example


def test_new_graphs_run_the_same_in_onnx_runtime_and_the_reference(new_graphs) -> None:
    for k, (path, text, model) in enumerate(new_graphs):
        weights = randomized_weights(model.graph, seed=k)
        sessions = {
            (level, ort): load(
                driver.emit(model, weights=weights, level=level),
                device="cpu",
                graph_optimization=ort,
                threads=1,  # small graphs: a thread pool per session costs more than it saves
            )
            for level in (0, 2)
            for ort in ("disable", "all")
        }
        for i, kind in enumerate(INPUT_KINDS):
            feed = inputs_for(model.graph, batch=(3, 1)[i % 2], kind=kind, seed=k)
            want = reference_run(model.graph, feed, weights, wide=True)
            for (level, ort), session in sessions.items():
                got = session.run(feed)
                for name, value in want.items():
                    assert_close(
                        got[name],
                        value,
                        scope="model",
                        err_msg=f"{name} on {kind} inputs at -O{level}, ONNX Runtime level "
                        f"{ort}, of this mutant of {path.name}:\n{text}",
                    )


# --- a slice of bench/fuzz.py ----------------------------------------------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A folder holding the lib.net that generated networks import."""
    return fuzz.library(tmp_path_factory.mktemp("fuzz"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz.networks())
def test_generated_networks_compile_and_their_mutants_never_crash_the_front_end(
    folder: Path, text: str
) -> None:
    outcome, model = fuzz.check(text, folder)
    assert outcome == "compiled", model.render()
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    other = (EXAMPLES / "lenet.net").read_text()
    for _kind, mutant in fuzz.mutants(text, other, rng, 10):
        fuzz.check(mutant, folder)  # a Finding fails the test, with what it found


def test_the_mutants_are_of_every_kind_and_mostly_refused(folder: Path) -> None:
    text = (EXAMPLES / "mnist_mlp.net").read_text()
    kinds: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    distinct = set()
    for kind, mutant in fuzz.mutants(text, text, random.Random(3), 300):
        kinds[kind] += 1
        outcomes[fuzz.check(mutant, folder)[0]] += 1
        distinct.add(mutant)
    assert len(distinct) > 280
    assert set(kinds) == {"token", "number", "unicode", "structure", "lines", "truncate"} | {
        "bytes",
        "splice",
    }
    assert outcomes["refused"] > 150 and outcomes["compiled"] > 50, outcomes


def test_a_crash_a_bad_location_and_a_reader_disagreement_are_findings(
    folder: Path, monkeypatch
) -> None:
    def crash(*args, **kwargs):
        raise KeyError("x")

    with monkeypatch.context() as m:
        m.setattr(netc, "compile_text", crash)
        with pytest.raises(fuzz.Finding, match="internal error") as info:
            fuzz.check("model m() -> () {}", folder)
        assert "KeyError" in info.value.detail
    outside = NetcError([netc.Diagnostic("error", "x", netc.Span("f.net", 9, 1, 9, 2))])
    with pytest.raises(fuzz.Finding, match="diagnostic outside the file"):
        fuzz._check_diagnostics(outside, "one line", "f.net")
    with monkeypatch.context() as m:
        m.setattr("netc.reader.read", lambda text, path: netc.parse.parse_with_lark("", path))
        with pytest.raises(fuzz.Finding, match="different trees"):
            fuzz.check_reader("const A = 1")


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz.networks())
def test_generated_networks_run_in_onnx_runtime_as_in_the_reference(folder: Path, text: str):
    outcome, model = fuzz.check(text, folder)
    assert outcome == "compiled"
    for k in (1, 2):  # -O2 and -O0, batch 3 and 1
        fuzz.check_onnx(model, k)


@seed(20261130)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz.networks())
def test_whatever_check_accepts_netc_compiles_and_onnx_runtime_loads(folder: Path, text: str):
    """Issue 11's property, on mutants as well as valid networks: every input `netc check`
    accepts compiles to ONNX that onnx.checker passes (full check, shape inference included)
    and ONNX Runtime loads and runs as the float64 reference, or is one of the backend's
    documented refusals, a located error."""
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    accepted = [text]
    for _kind, mutant in fuzz.mutants(text, text, rng, 60):
        if len(accepted) == 4:
            break
        if isinstance(mutant, str) and fuzz.check(mutant, folder)[0] == "compiled":
            accepted.append(mutant)
    for k, source in enumerate(accepted):
        outcome, model = fuzz.check(source, folder)
        assert outcome == "compiled"
        try:
            fuzz.check_onnx(model, k)
        except fuzz.Finding as f:
            if f.kind != "valid network not lowered to ONNX" or not DOCUMENTED_REFUSALS.search(
                f.detail
            ):
                raise
