"""The VS Code plugin (grammar/editors/vscode) stays in sync with the language: every keyword and
operator of grammar/netc.lark, every op and builtin, every dtype gets its scope.

Text is tokenized by VS Code's own engine: vscode-textmate on Oniguruma (vscode-oniguruma), run
by tests/editor/tokenize.js in Node. The first use installs them from tests/editor's
package-lock.json (`npm ci` into tests/editor/node_modules, again when the lock file changes);
Node.js and npm must be on the PATH, and a missing one fails these tests."""

from __future__ import annotations

import atexit
import hashlib
import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import netc
from netc.elaborate import BUILTINS, LANGUAGE_OPS, SCALAR_TYPES
from netc.grammar import GRAMMAR_PATH
from netc.ir import DTYPES
from netc.parse import KEYWORDS
from netc.train_spec import (
    CALLBACKS,
    LOSS_ALIASES,
    LOSSES,
    METRICS,
    OPTIMIZERS,
    PER_OUTPUT,
    SCHEDULES,
)

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "grammar" / "editors" / "vscode"
TM_PATH = "grammar/editors/vscode/syntaxes/netc.tmLanguage.json"

# The grammar's symbols that are not operators, and the scope each gets.
PUNCTUATION = {
    "(": "punctuation.section.parens.begin",
    ")": "punctuation.section.parens.end",
    "[": "punctuation.section.brackets.begin",
    "]": "punctuation.section.brackets.end",
    "{": "punctuation.section.braces.begin",
    "}": "punctuation.section.braces.end",
    ",": "punctuation.separator.comma",
    ":": "punctuation.separator",
    "...": "constant.other.ellipsis",
}
OPERATORS = ("|>", "->", "**", "//", "==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "%")
OPERATORS += ("@", "=")


# --- the plugin's files --------------------------------------------------------------------------


@cache
def _tm() -> dict[str, Any]:
    return json.loads((ROOT / TM_PATH).read_text())


def _grammar_literals() -> set[str]:
    """The double-quoted literals of netc.lark, outside its `//` comment lines."""
    text = GRAMMAR_PATH.read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    # a literal is "..."; a /regex/ may hold quotes (STRING) and is no literal
    tokens = re.finditer(r'"((?:[^"\\]|\\.)+)"|/(?:[^/\\\n]|\\.)+/', code)
    return {t[1] for t in tokens if t[1] is not None}


def _alternations(regex: str) -> list[set[str]]:
    """The word alternations `(a|b|c)` / `(?:a|b|c)` written in a regex."""
    groups = re.findall(r"\((?:\?:)?([a-z0-9_]+(?:\|[a-z0-9_]+)*)\)", regex)
    return [set(g.split("|")) for g in groups]


def _alternation_of(rule: str, containing: str) -> set[str]:
    r = _tm()["repository"][rule]
    (words,) = [a for a in _alternations(r.get("match") or r["begin"]) if containing in a]
    return words


# --- VS Code's TextMate engine, in Node -----------------------------------------------------------

EDITOR_TOOLS = ROOT / "tests" / "editor"  # package.json, package-lock.json, tokenize.js


def _install_engine() -> str:
    """`npm ci` in tests/editor unless node_modules holds what package-lock.json pins; returns
    the path of node."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "the editor tests run VS Code's TextMate engine: install Node.js and npm"
    lock = hashlib.sha256((EDITOR_TOOLS / "package-lock.json").read_bytes()).hexdigest()
    stamp = EDITOR_TOOLS / "node_modules" / ".installed-from-lock"
    if not stamp.is_file() or stamp.read_text() != lock:
        r = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=EDITOR_TOOLS,
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, f"npm ci in {EDITOR_TOOLS} failed:\n{r.stdout}{r.stderr}"
        stamp.write_text(lock)
    return node


@cache
def _engine() -> subprocess.Popen[str]:
    """tokenize.js --serve, started once; it ends with this process (its stdin closes)."""
    proc = subprocess.Popen(
        [_install_engine(), str(EDITOR_TOOLS / "tokenize.js"), "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def stop() -> None:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)

    atexit.register(stop)
    return proc


def _ask(request: dict[str, str]) -> dict[str, Any]:
    """One request to tokenize.js (see its header) and its answer."""
    proc = _engine()
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(json.dumps(request) + "\n")
    proc.stdin.flush()
    answer = proc.stdout.readline()
    assert answer, f"tokenize.js stopped: {proc.stderr.read()}"
    return json.loads(answer)


def _per_character(text: str, lines: list[list[list[Any]]]) -> list[list[tuple[str, ...]]]:
    """Token lists ([start, end, scopes]) as the scopes of each character, per line."""
    out = []
    for line, tokens in zip(text.split("\n"), lines, strict=True):
        chars: list[tuple[str, ...]] = [()] * len(line)
        for start, end, scopes in tokens:
            chars[start:end] = [tuple(scopes)] * (end - start)
        out.append(chars)
    return out


@cache
def tokenize(text: str) -> tuple[list[list[tuple[str, ...]]], int]:
    """Scopes per character, per line (the root scope left out), and how many begin/end
    regions are left open, as VS Code's engine tokenizes `text`."""
    answer = _ask({"text": text})
    return _per_character(text, answer["lines"]), answer["open"]


def oniguruma_error(regex: str) -> str | None:
    """Why Oniguruma cannot compile `regex`, or None when it can."""
    return _ask({"oniguruma": regex})["error"]


def javascript_search(regex: str, text: str) -> bool:
    """Whether JavaScript's RegExp(regex) matches in `text` (VS Code's language-configuration
    patterns are JavaScript regexes)."""
    answer = _ask({"javascript": regex, "text": text})
    assert answer["error"] is None, answer["error"]
    return answer["match"]


def test_the_engine_is_oniguruma_not_pythons_re():
    """Oniguruma syntax Python's `re` refuses, and the other way round, to show which engine
    answers."""
    assert oniguruma_error(r"\h+(?i:ABC)\G") is None  # \h: a hex digit in Oniguruma
    with pytest.raises(re.error):
        re.compile(r"\h+")
    assert oniguruma_error(r"(?P<n>a)(?P=n)") is not None
    assert oniguruma_error("(unclosed") is not None


def _find(text: str, word: str, nth: int = 0) -> int:
    """Where the `nth` occurrence of `word` starts; a name is not found inside a longer one."""
    pattern = re.escape(word)
    if re.fullmatch(r"\w+", word):
        pattern = rf"(?<!\w){pattern}(?!\w)"
    return [m.start() for m in re.finditer(pattern, text)][nth]


def scopes_of(text: str, word: str, nth: int = 0) -> tuple[str, ...]:
    """The scopes of the `nth` occurrence of `word` in a one-line `text` (the same on each char)."""
    start = _find(text, word, nth)
    (line,), _ = tokenize(text)
    first = line[start]
    for i in range(start, start + len(word)):
        assert line[i] == first, f"`{word}` in {text!r} is split across scopes: {line[i]}, {first}"
    return first


def has(scopes: tuple[str, ...], prefix: str) -> bool:
    return any(s == prefix or s.startswith(prefix + ".") for s in scopes)


# --- the files parse and register the language --------------------------------------------------


def test_package_json_registers_the_netc_language_for_dot_net_files():
    pkg = json.loads((PLUGIN / "package.json").read_text())
    (lang,) = pkg["contributes"]["languages"]
    (grammar,) = pkg["contributes"]["grammars"]
    assert lang["id"] == "netc" and lang["extensions"] == [".net"]
    assert grammar["language"] == "netc"
    assert grammar["scopeName"] == _tm()["scopeName"] == "source.netc"
    assert (PLUGIN / grammar["path"]).is_file()
    assert (PLUGIN / lang["configuration"]).is_file()


def test_language_configuration_has_comments_brackets_and_indentation():
    conf = json.loads((PLUGIN / "language-configuration.json").read_text())
    assert conf["comments"] == {"lineComment": "#"}
    assert sorted(map(tuple, conf["brackets"])) == [("(", ")"), ("[", "]"), ("{", "}")]
    assert {p["open"] for p in conf["autoClosingPairs"]} == {"(", "[", "{", '"'}
    rules = conf["indentationRules"]

    def increase(line: str) -> bool:
        return javascript_search(rules["increaseIndentPattern"], line)

    def decrease(line: str) -> bool:
        return javascript_search(rules["decreaseIndentPattern"], line)

    assert increase("block f(x) {") and increase("} else {  # comment")
    assert not increase("x = if c { a } else { b }") and not increase("# {")
    assert decrease("    }") and not decrease("    x = y")


def test_every_regex_of_the_plugin_compiles():
    def regexes(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node[k] for k in ("match", "begin", "end") if isinstance(node.get(k), str)]
            return own + [r for v in node.values() for r in regexes(v)]
        return [r for v in node for r in regexes(v)] if isinstance(node, list) else []

    found = regexes(_tm())
    assert len(found) > 20
    errors = [(src, error) for src in found if (error := oniguruma_error(src)) is not None]
    assert not errors, errors


def test_readme_says_how_to_install_the_plugin():
    text = (PLUGIN / "README.md").read_text()
    assert "~/.vscode/extensions" in text and "vsce package" in text


# --- keywords and operators of grammar/netc.lark ------------------------------------------------


def test_the_grammar_keywords_are_the_parser_keywords():
    words = {w for w in _grammar_literals() if re.fullmatch(r"[a-z_]+", w)}
    assert words == set(KEYWORDS)


def test_every_keyword_is_highlighted_as_a_keyword():
    words = {w for w in _grammar_literals() if re.fullmatch(r"[a-z_]+", w)} | set(KEYWORDS)
    for word in sorted(words):
        scopes = scopes_of(word, word)
        expected = "constant.language" if word in ("true", "false", "none") else "keyword"
        assert has(scopes, expected), (
            f"keyword `{word}` gets {scopes}, not {expected}: add it to the `keywords` patterns "
            f"of {TM_PATH}"
        )


def test_every_symbol_of_the_grammar_is_known_here():
    symbols = {s for s in _grammar_literals() if not re.fullmatch(r"[a-z_]+", s)}
    unknown = symbols - set(OPERATORS) - set(PUNCTUATION)
    assert not unknown, (
        f"grammar/netc.lark has new symbols {sorted(unknown)}: add them to the `operators` "
        f"patterns of {TM_PATH} and to OPERATORS or PUNCTUATION in this test"
    )


@pytest.mark.parametrize("symbol", OPERATORS)
def test_every_operator_is_highlighted_as_an_operator(symbol):
    scopes = scopes_of(f"a {symbol} b", symbol)
    assert has(scopes, "keyword.operator"), (
        f"`{symbol}` gets {scopes}: add it to the `operators` patterns of {TM_PATH}"
    )


@pytest.mark.parametrize("symbol", sorted(PUNCTUATION))
def test_every_punctuation_symbol_gets_its_scope(symbol):
    text = {"(": "f(x)", ")": "f(x)", "...": "x[..., 0]", ":": "x[1:2]"}.get(symbol, f"[a{symbol}]")
    text = {"{": "{ a }", "}": "{ a }"}.get(symbol, text)
    assert has(scopes_of(text, symbol), PUNCTUATION[symbol])


# --- ops, builtins, types -----------------------------------------------------------------------


def test_the_op_pattern_lists_exactly_the_ops_a_file_may_call():
    listed = _alternation_of("ops", "conv2d")
    missing = sorted(set(LANGUAGE_OPS) - listed)
    extra = sorted(listed - set(LANGUAGE_OPS))
    assert not missing, "".join(f"add `{op}` to {TM_PATH} (the `ops` pattern)\n" for op in missing)
    assert not extra, "".join(
        f"`{name}` is not an op a .net file may call: remove it from {TM_PATH} "
        "(the `ops` pattern)\n"
        for name in extra
    )


def test_every_op_is_highlighted_as_an_op_called_or_piped():
    wrong = [
        (op, text, scopes)
        for op in sorted(LANGUAGE_OPS)
        for text in (f"y = {op}(x, axis=1)", f"y = x |> {op}", f"y = x |> {op}(2)")
        if not has(scopes := scopes_of(text, op), "support.function")
        or has(scopes, "support.function.builtin")
    ]
    assert not wrong, "".join(
        f"`{op}` in {text!r} gets {scopes}: add `{op}` to {TM_PATH} (the `ops` pattern)\n"
        for op, text, scopes in wrong
    )


def test_the_builtin_pattern_lists_exactly_the_builtins():
    listed = _alternation_of("builtins", "range")
    missing = sorted(set(BUILTINS) - listed)
    extra = sorted(listed - set(BUILTINS))
    assert not missing, "".join(
        f"add `{b}` to {TM_PATH} (the `builtins` pattern)\n" for b in missing
    )
    assert not extra, f"not builtins: {extra}; remove them from {TM_PATH} (the `builtins` pattern)"


def test_every_builtin_is_highlighted_as_a_builtin_or_an_op():
    for name in sorted(BUILTINS):
        scopes = scopes_of(f"n = {name}(x)", name)
        expected = "support.function.op" if name in LANGUAGE_OPS else "support.function.builtin"
        assert expected in {s.removesuffix(".netc") for s in scopes}, (
            f"builtin `{name}` gets {scopes}: add it to {TM_PATH} (the `builtins` pattern)"
        )


def test_other_names_are_neither_ops_nor_builtins():
    for text, word in [("y = x |> conv_bn(64)", "conv_bn"), ("y = x |> tower", "tower")]:
        assert has(scopes_of(text, word), "entity.name.type.block.call")
    for name in ("fused_conv", "fused_dense", "x", "filters"):
        assert not has(scopes_of(f"y = {name}", name), "support"), name


def test_the_type_pattern_lists_every_dtype_and_parameter_type():
    assert _alternation_of("annotations", "f32") == set(DTYPES), (
        f"the dtypes in the `annotations` pattern of {TM_PATH} must be {sorted(DTYPES)}"
    )
    params = (set(SCALAR_TYPES) - set(DTYPES)) | {"tensor"}
    assert _alternation_of("annotations", "tensor") == params, (
        f"the parameter types in the `annotations` pattern of {TM_PATH} must be {sorted(params)}"
    )
    for dtype in DTYPES:
        assert has(scopes_of(f"block f(x: {dtype}[N, 4]) {{", dtype), "storage.type.dtype")
    for name in params:
        assert has(scopes_of(f"block f(x, n: {name} = 1) {{", name), "storage.type")


def test_a_tensor_type_highlights_its_dtype_and_symbolic_dims():
    text = "model mlp(image: f32[N, 224, STEPS]) -> (y: i64[N, 10]) {"
    assert has(scopes_of(text, "mlp"), "entity.name.type")
    assert has(scopes_of(text, "image"), "variable.parameter")
    assert has(scopes_of(text, "f32"), "storage.type.dtype")
    assert has(scopes_of(text, "N"), "variable.other.constant.dimension")
    assert has(scopes_of(text, "STEPS"), "variable.other.constant.dimension")
    assert has(scopes_of(text, "224"), "constant.numeric.integer")
    assert has(scopes_of(text, "->"), "keyword.operator.arrow")
    assert has(scopes_of(text, "i64"), "storage.type.dtype")
    assert has(scopes_of(text, "N", nth=1), "variable.other.constant.dimension")


def test_slices_and_calls_are_not_taken_for_types():
    text = "y = x[:, 1:int(n)] + x[..., -4:]"
    assert has(scopes_of(text, "int"), "support.function.builtin")
    assert not has(scopes_of(text, "x", nth=1), "variable.parameter")


def test_keyword_arguments_and_defaults_are_parameters():
    text = 'y = x |> reshape(shape=(4, 4), pad=1, name="head") == z'
    for word in ("shape", "pad", "name"):
        assert has(scopes_of(text, word), "variable.parameter"), word
    assert has(scopes_of(text, "=="), "keyword.operator.comparison")
    assert not has(scopes_of("mean, peak = stats(x)", "peak"), "variable.parameter")
    assert has(scopes_of("block f(x, k = 3) {", "k"), "variable.parameter")


def test_literals_get_their_scopes():
    text = 'c = [3, 0.5, .5, 1e-3, 2., 1.001e-5, "a\\"b", true, none]'
    for word in ("0.5", ".5", "1e-3", "2.", "1.001e-5"):
        assert has(scopes_of(text, word), "constant.numeric.float"), word
    assert has(scopes_of(text, "3"), "constant.numeric.integer")
    assert has(scopes_of(text, '\\"'), "constant.character.escape")
    assert has(scopes_of(text, "a"), "string.quoted.double")
    assert has(scopes_of(text, "true"), "constant.language")
    (line,), _ = tokenize("y = x |> conv2d(8)")
    assert has(line[len("y = x |> conv")], "support.function")


def test_an_f_string_highlights_its_text_and_the_expressions_in_it():
    text = 'y = x |> relu(name=f"conv{stage + 2}_{{b}}_{str(i)}") |> dense(4)'
    assert has(scopes_of(text, "f", 0), "storage.type.string")
    assert has(scopes_of(text, "conv"), "string.interpolated")
    assert has(scopes_of(text, "stage"), "meta.interpolation")
    assert has(scopes_of(text, "+"), "keyword.operator")
    assert has(scopes_of(text, "2"), "constant.numeric.integer")
    assert has(scopes_of(text, "{{"), "constant.character.escape")
    assert has(scopes_of(text, "str"), "support.function.builtin")
    assert has(scopes_of(text, "dense"), "support.function")  # the f-string ended
    assert not has(scopes_of(text, "dense"), "string")
    _, left_open = tokenize(text)
    assert left_open == 0


# --- a real file --------------------------------------------------------------------------------


def test_resnet50_gets_the_scopes_a_reader_expects():
    text = (ROOT / "examples" / "resnet50.net").read_text()
    lines, left_open = tokenize(text)
    assert left_open == 0
    src = text.split("\n")

    def at(line_start: str, word: str, nth: int = 0) -> tuple[str, ...]:
        n = next(i for i, line in enumerate(src) if line.lstrip().startswith(line_start))
        return lines[n][_find(src[n], word, nth)]

    assert has(at("# examples/resnet50.net", "ResNet-50"), "comment.line")
    assert has(at("const EPSILON", "const"), "keyword")
    assert has(at("const EPSILON", "1.001e-5"), "constant.numeric.float")
    assert has(at("block conv_bn", "block"), "keyword")
    assert has(at("block conv_bn", "conv_bn"), "entity.name.type.block")
    assert has(at("block conv_bn", "filters"), "variable.parameter")
    assert has(at("block conv_bn", "int"), "storage.type")
    assert has(at("|> conv2d(filters", "conv2d"), "support.function")
    assert has(at("|> conv2d(filters", "|>"), "keyword.operator.pipe")
    assert has(at("|> conv2d(filters", "stride", 0), "variable.parameter")
    assert has(at("|> conv2d(filters", '"same"'), "string.quoted.double")
    assert has(at("|> batchnorm(epsilon", "batchnorm"), "support.function")
    assert has(at("block bottleneck", "false"), "constant.language")
    assert has(at("return relu(skip", "relu"), "support.function")
    assert has(at("return relu(skip", "return"), "keyword.control")
    assert has(at("for _ in range", "range"), "support.function.builtin")
    assert has(at("for _ in range", "in"), "keyword.control")
    assert has(at("skip = if project", "if"), "keyword.control")
    assert has(
        at("x = x |> bottleneck(filters, stride", "bottleneck"), "entity.name.type.block.call"
    )
    assert has(at("model resnet50", "resnet50"), "entity.name.type")
    assert has(at("model resnet50", "f32"), "storage.type.dtype")
    assert has(at("model resnet50", "N"), "variable.other.constant.dimension")
    assert has(at("|> conv2d(64, 7", "# [N, 112"), "comment.line")
    assert not has(at("|> conv2d(64, 7", "N"), "variable.other.constant.dimension")
    assert has(at("probs = x", "softmax"), "support.function")


def test_every_example_closes_every_region_it_opens():
    """tokenize.js's command line, on the example files."""
    paths = sorted((ROOT / "examples").glob("*.net"))
    r = subprocess.run(
        [_install_engine(), str(EDITOR_TOOLS / "tokenize.js"), *map(str, paths)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert sorted(out) == sorted(map(str, paths))
    for path in paths:
        assert out[str(path)]["open"] == 0, path.name
        assert len(out[str(path)]["lines"]) == len(path.read_text().split("\n"))
        assert (
            _per_character(path.read_text(), out[str(path)]["lines"])
            == tokenize(path.read_text())[0]
        )


# --- ops, blocks and the train section are told apart --------------------------------------------

TRAIN_NAMES = sorted(
    {*LOSSES, *LOSS_ALIASES, *OPTIMIZERS, *SCHEDULES, *CALLBACKS, *METRICS, PER_OUTPUT}
)


def test_the_train_pattern_lists_exactly_the_names_of_the_train_section():
    listed = _alternation_of("train-functions", "adam")
    assert listed == set(TRAIN_NAMES), (
        f"the `train-functions` pattern of {TM_PATH} must list {sorted(set(TRAIN_NAMES) - listed)}"
        f" and not {sorted(listed - set(TRAIN_NAMES))}"
    )


TRAIN_TEXT = """\
const RATE = 1e-3
model m(x: f32[N, 4]) -> (y: f32[N, 3]) {
    y = x |> adam_block(3)
}
train {
    loss = sparse_categorical_crossentropy(from_logits=true)
    optimizer = adamw(learning_rate=cosine_decay(RATE, 1000), weight_decay=0.01)
    metrics = [accuracy, top_k_categorical_accuracy]
    callbacks = [early_stopping(monitor="val_loss", patience=3)]
    epochs = 10
}
"""


def test_the_train_section_gives_its_settings_and_functions_their_own_scopes():
    lines, left_open = tokenize(TRAIN_TEXT)
    assert left_open == 0
    src = TRAIN_TEXT.split("\n")

    def at(line_start: str, word: str) -> tuple[str, ...]:
        n = next(i for i, line in enumerate(src) if line.lstrip().startswith(line_start))
        return lines[n][_find(src[n], word)]

    for setting in ("loss", "optimizer", "metrics", "callbacks", "epochs"):
        assert has(at(setting, setting), "variable.other.property.setting"), setting
    for line, name in [
        ("loss", "sparse_categorical_crossentropy"),
        ("optimizer", "adamw"),
        ("optimizer", "cosine_decay"),  # a schedule inside the optimizer's call
        ("metrics", "accuracy"),
        ("metrics", "top_k_categorical_accuracy"),
        ("callbacks", "early_stopping"),
    ]:
        scopes = at(line, name)
        assert has(scopes, "support.function.train"), (name, scopes)
        assert not has(scopes, "entity.name.type.block"), (name, scopes)
    assert has(at("optimizer", "learning_rate"), "variable.parameter.keyword")
    assert has(at("callbacks", '"val_loss"'), "string.quoted.double")
    assert has(at("epochs", "10"), "constant.numeric.integer")
    assert has(at("y = x", "adam_block"), "entity.name.type.block.call")  # outside: a block


def test_ops_blocks_builtins_and_train_functions_get_four_different_scopes():
    found = {
        "op": scopes_of("y = x |> conv2d(8, 3)", "conv2d")[-1],
        "block": scopes_of("y = x |> conv_bn(8)", "conv_bn")[-1],
        "builtin": scopes_of("n = len(x)", "len")[-1],
        "train": tokenize("train { optimizer = adam(1e-3) }")[0][0][len("train { optimizer = ")][
            -1
        ],
    }
    assert found == {
        "op": "support.function.op.netc",
        "block": "entity.name.type.block.call.netc",
        "builtin": "support.function.builtin.netc",
        "train": "support.function.train.netc",
    }


# --- the extension: a language client, its settings, commands and snippets -----------------------


def test_package_json_declares_the_client_its_settings_and_commands():
    pkg = json.loads((PLUGIN / "package.json").read_text())
    assert pkg["main"] == "./dist/extension.js"
    assert pkg["activationEvents"] == ["onLanguage:netc"]
    assert "vscode-languageclient" in pkg["dependencies"]
    assert pkg["repository"]["directory"] == "grammar/editors/vscode"
    assert (PLUGIN / "LICENSE").read_text().lstrip().startswith("Apache License")
    commands = {c["command"]: c["title"] for c in pkg["contributes"]["commands"]}
    assert commands["netc.restartServer"] == "Restart Language Server"
    settings = pkg["contributes"]["configuration"]["properties"]
    assert settings["netc.server.path"]["default"] == "netc"
    assert settings["netc.server.args"]["default"] == ["lsp"]
    assert settings["netc.trace.server"]["enum"] == ["off", "messages", "verbose"]
    source = (PLUGIN / "src" / "extension.js").read_text()
    assert "TransportKind.stdio" in source and '"netc.restartServer"' in source
    assert "pip install 'netc[lsp]'" in source  # what a missing netc is told
    ignored = (PLUGIN / ".vscodeignore").read_text().split("\n")
    assert "src/**" in ignored and "node_modules/**" in ignored


def _expand(body: list[str]) -> str:
    """A snippet's text with each placeholder replaced by its default (a choice by its first)."""
    text = "\n".join(body).replace("\t", "    ")
    defaults = dict(re.findall(r"\$\{(\d+):([^${}]*)\}", text))
    text = re.sub(r"\$\{\d+\|([^,|]*)[^}]*\|\}", r"\1", text)
    text = re.sub(r"\$\{\d+:([^${}]*)\}", r"\1", text)
    return re.sub(r"\$(\d+)", lambda m: defaults.get(m.group(1), ""), text)


def test_every_snippet_expands_to_text_that_parses(tmp_path):
    from netc.parse import parse

    snippets = json.loads((PLUGIN / "snippets" / "netc.json").read_text())
    assert {"model", "block", "train"} <= set(snippets)
    for name, snippet in snippets.items():
        text = _expand(snippet["body"])
        if name in ("for", "if"):
            text = f"model m(x: f32[N]) -> (y: f32[N]) {{\n{text.replace('condition', 'true')}\n"
            text += "y = x\n}"
        parse(text, f"<snippet {name}>")
    model = _expand(snippets["model"]["body"])
    assert netc.compile_text(model).graph.outputs  # the model snippet compiles as it is


# --- vscode-tmgrammar-test on annotated files -------------------------------------------------

ANNOTATED = EDITOR_TOOLS / "grammar"


def _tmgrammar_test(*files: Path) -> subprocess.CompletedProcess[str]:
    _install_engine()
    tool = EDITOR_TOOLS / "node_modules" / ".bin" / "vscode-tmgrammar-test"
    return subprocess.run(
        [str(tool), "-g", str(ROOT / TM_PATH), *map(str, files)],
        capture_output=True,
        text=True,
        cwd=EDITOR_TOOLS,
        timeout=300,
    )


def test_the_annotated_files_pass_vscode_tmgrammar_test():
    files = sorted(ANNOTATED.glob("*.net"))
    assert len(files) >= 2
    r = _tmgrammar_test(*files)
    assert r.returncode == 0, r.stdout + r.stderr
    for f in files:
        assert f"✓ {f} run successfuly." in r.stdout or f.name in r.stdout


def test_vscode_tmgrammar_test_fails_on_a_wrong_annotation(tmp_path):
    """The tool is live: an annotation that says an op is a block call fails."""
    text = (ANNOTATED / "blocks_and_ops.net").read_text()
    wrong = text.replace(
        "#               ^^^^^^ support.function.op.netc",
        "#               ^^^^^^ entity.name.type.block.call.netc",
        1,
    )
    assert wrong != text
    (tmp_path / "wrong.net").write_text(wrong)
    r = _tmgrammar_test(tmp_path / "wrong.net")
    assert r.returncode != 0
    assert "missing required scopes: entity.name.type.block.call.netc" in r.stdout + r.stderr
