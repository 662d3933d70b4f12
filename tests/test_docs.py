"""The documentation stays true: docs/ops.md is generated from the op table, and
docs/language.md names every keyword and compiles every full example it shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import netc
from netc import syntax as ast
from netc.elaborate import _TENSOR_OPS, BUILTINS
from netc.ir import DTYPES
from netc.ops import OPS
from netc.ops.docs import OPERATORS, render_markdown, signature
from netc.parse import parse
from netc.source import format_value
from netc.train_spec import LOSS_ALIASES, LOSSES, METRICS, OPTIMIZERS, SETTINGS

ROOT = Path(__file__).parent.parent
OPS_MD = ROOT / "docs" / "ops.md"
LANGUAGE_MD = ROOT / "docs" / "language.md"
GRAMMAR = ROOT / "grammar" / "netc.lark"


def language() -> str:
    return LANGUAGE_MD.read_text(encoding="utf-8")


def net_blocks() -> list[str]:
    """The ```net code blocks of docs/language.md: each is a whole file."""
    return re.findall(r"^```net\n(.*?)^```$", language(), re.M | re.S)


def test_ops_md_is_generated_from_the_op_table():
    assert OPS_MD.read_text(encoding="utf-8") == render_markdown(), (
        "docs/ops.md is stale; regenerate it with `python -m netc.ops.docs > docs/ops.md`"
    )


def test_every_op_has_an_entry_in_ops_md():
    text = render_markdown()
    for name, opdef in OPS.items():
        assert f"\n### {name}\n" in text
        assert f"`{signature(opdef)}`" in text


def test_signatures_use_the_languages_syntax():
    assert signature(OPS["dense"]) == "dense(x, units, bias=true)"
    assert signature(OPS["concat"]) == "concat(xs..., axis=-1)"
    assert signature(OPS["maxpool"]) == 'maxpool(x, size=2, stride=none, padding="valid")'
    assert [format_value(v) for v in (False, None, "same", (1,), (), (1, 2), 1e-3)] == [
        "false",
        "none",
        '"same"',
        "(1,)",
        "()",
        "(1, 2)",
        "0.001",
    ]


def test_weights_are_listed_with_shapes_in_terms_of_the_attributes():
    text = render_markdown()
    assert "- `kernel` `[C, units]`: glorot_uniform (`kernel_init`)" in text
    assert "- `kernel` `[*kernel, C, filters]`: glorot_uniform (`kernel_init`)" in text
    assert "- `bias` `[filters]`: zeros (`bias_init`), only with `bias=true`" in text
    assert "- `moving_mean` `[C]`: zeros (`moving_mean_init`), not trainable" in text
    assert "- `kernel` `[*kernel, C, depth_multiplier]`: glorot_uniform (`depthwise_init`)" in text
    assert "- `recurrent_kernel` `[units, 4 * units]`: orthogonal (`recurrent_init`)" in text


def test_operators_named_in_ops_md_are_the_languages():
    assert {op: text.split()[1] for op, text in OPERATORS.items() if op != "neg"} == {
        v: k for k, v in _TENSOR_OPS.items()
    }


def test_every_grammar_keyword_appears_in_language_md():
    keywords = set(re.findall(r'"([a-z]+)"', GRAMMAR.read_text(encoding="utf-8")))
    assert {"import", "block", "model", "train", "for", "in", "none"} <= keywords
    text = language()
    missing = sorted(k for k in keywords if not re.search(rf"`[^`\n]*\b{k}\b[^`\n]*`", text))
    assert not missing, f"keywords never shown in docs/language.md: {missing}"


def test_language_md_names_every_builtin_dtype_and_train_setting():
    text = language()
    names = [*BUILTINS, *DTYPES, *SETTINGS, *LOSSES, *LOSS_ALIASES, *OPTIMIZERS, *METRICS]
    names += [arg for table in (LOSSES, OPTIMIZERS) for args in table.values() for arg in args]
    missing = sorted({n for n in names if f"`{n}" not in text})
    assert not missing, f"not documented in docs/language.md: {missing}"


def test_language_md_has_full_examples():
    assert len(net_blocks()) >= 8


@pytest.mark.parametrize("index", range(len(net_blocks())))
def test_every_full_example_in_language_md_compiles_cleanly(index, tmp_path):
    # A block whose first line is `# file: NAME` is that file; every one is written out first,
    # so that examples can import each other. Library files (no model) are only written.
    blocks = net_blocks()
    paths = []
    for i, text in enumerate(blocks):
        header = re.match(r"# file: (\S+)\n", text)
        path = tmp_path / (header.group(1) if header else f"example_{i}.net")
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    text, path = blocks[index], paths[index]
    models = [i.name for i in parse(text, str(path)).items if isinstance(i, ast.ModelDef)]
    if not models:
        assert re.match(r"# file: ", text), "a ```net block without a model must be `# file:`"
        return
    for name in models:
        model = netc.compile(path, model=name)
        assert model.warnings == (), "\n".join(w.render(model.sources) for w in model.warnings)


def test_the_readme_tour_compiles(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tour = readme.split("## The language, a tour\n", 1)[1].split("\n## ", 1)[0]
    models = [b for b in re.findall(r"^```\n(.*?)^```$", tour, re.M | re.S) if "model " in b]
    assert len(models) >= 2
    compiled = []
    for i, text in enumerate(models):
        path = tmp_path / f"tour_{i}.net"
        path.write_text(text, encoding="utf-8")
        compiled.append(netc.compile(path))
        assert compiled[-1].warnings == ()
    assert compiled[-1].train is not None  # the tour ends with a train section


DOCS = sorted(
    [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("grammar/editors/*/README.md")]
)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_image_resolves(doc):
    """`[text](path)` and `![alt](path)` in the README and docs point at files that exist
    (anchors and web addresses aside)."""
    text = re.sub(r"^```.*?^```$", "", doc.read_text(encoding="utf-8"), flags=re.M | re.S)
    text = re.sub(r"`[^`\n]*`", "", text)  # code spans: `f(*tensors)` is no link
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    broken = [
        t
        for t in targets
        if not t.startswith(("http://", "https://", "#", "mailto:"))
        and not (doc.parent / t.split("#", 1)[0]).exists()
    ]
    assert not broken, f"{doc.relative_to(ROOT)} links to missing files: {broken}"
