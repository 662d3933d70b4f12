"""`netc fmt`: the canonical layout. Run on every example and every ```net file of the docs, it
keeps every comment, is idempotent and compiles to the same IR (nodes, types, attributes and
weights) as the original; a messy file gets exactly the expected layout; the command line
formats in place, checks, diffs and reads stdin."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import netc
from netc.fmt import format_text

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.net"))
DOCS = sorted((ROOT / "docs").glob("*.md"))


def doc_files() -> list[tuple[str, str]]:
    """(name, text) of every ```net block of the docs: each is a whole file."""
    out = []
    for doc in DOCS:
        for i, text in enumerate(re.findall(r"^```net\n(.*?)^```$", doc.read_text(), re.M | re.S)):
            header = re.match(r"# file: (\S+)\n", text)
            out.append((header.group(1) if header else f"{doc.stem}_{i}.net", text))
    return out


DOC_FILES = doc_files()


def comments(text: str) -> list[str]:
    """The comments of a text, in order (outside strings)."""
    found = re.findall(r'"(?:[^"\\\n]|\\.)*"|(#[^\n]*)', text)
    return [c.rstrip() for c in found if c]


def ir(path: Path, text: str) -> list[tuple]:
    """Every model of the file compiled: its nodes without source positions, and its weights."""
    path.write_text(text)
    module = netc.parse.parse(text, str(path))
    models = [i.name for i in module.items if isinstance(i, netc.syntax.ModelDef)]
    out = []
    for name in models:
        m = netc.compile(path, model=name)
        nodes = [(n.name, n.op, n.inputs, repr(dict(n.attrs)), str(n.type)) for n in m.graph.nodes]
        weights = [(k, str(w)) for k, w in m.weights.items()]
        out.append((name, nodes, weights, m.graph.outputs, m.total_params, m.flops))
    return out


def check_formatted(name: str, text: str, folder: Path) -> str:
    formatted = format_text(text, str(folder / name))
    assert format_text(formatted) == formatted, f"{name}: formatting twice changes it"
    assert comments(formatted) == comments(text), f"{name}: comments were lost or moved"
    assert all(len(line) <= 100 or "|>" not in line for line in formatted.split("\n")), name
    assert ir(folder / name, formatted) == ir(folder / name, text), f"{name}: the IR changed"
    return formatted


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_formatting_an_example_keeps_its_comments_and_its_ir(path, tmp_path):
    check_formatted(path.name, path.read_text(), tmp_path)


def test_every_net_file_of_the_docs_formats_to_the_same_ir(tmp_path):
    assert len(DOC_FILES) >= 10
    for name, text in DOC_FILES:  # the libraries first: models import them
        (tmp_path / name).write_text(text)
    for name, text in DOC_FILES:
        check_formatted(name, text, tmp_path)
        (tmp_path / name).write_text(text)


MESSY = """\
# a model, written carelessly
const   WIDTHS=[32,64]   # widths
block  conv_bn( x , filters:int , stride : int=1 ){ y=x|>conv2d(filters,3,stride = stride,bias=true)
  return y|>batchnorm
}
model net(image:f32[N,32,32,3])->(logits:f32[N,10]){


    x=image|>conv_bn(16)|>relu  # first
    for filters,stride in zip(WIDTHS,[2,2]){x=x|>conv_bn(filters,stride)}
    if len(WIDTHS)>1 { x=x*-1 } else
    { x=x }
    z=x[:, 1:-1, ::2, ...]
    logits=x
    |>global_avgpool   # pool
          |>dense(10,kernel_init=random_normal(stddev=0.02))
}
train{loss=sparse_categorical_crossentropy(from_logits=true) epochs=2}
"""

EXPECTED = """\
# a model, written carelessly
const WIDTHS = [32, 64]  # widths

block conv_bn(x, filters: int, stride: int = 1) {
    y = x |> conv2d(filters, 3, stride=stride, bias=true)
    return y |> batchnorm
}

model net(image: f32[N, 32, 32, 3]) -> (logits: f32[N, 10]) {
    x = image |> conv_bn(16) |> relu  # first
    for filters, stride in zip(WIDTHS, [2, 2]) {
        x = x |> conv_bn(filters, stride)
    }
    if len(WIDTHS) > 1 {
        x = x * -1
    } else {
        x = x
    }
    z = x[:, 1:-1, ::2, ...]
    logits = x
        |> global_avgpool  # pool
        |> dense(10, kernel_init=random_normal(stddev=0.02))
}

train {
    loss = sparse_categorical_crossentropy(from_logits=true)
    epochs = 2
}
"""


def test_a_messy_file_gets_the_canonical_layout(tmp_path):
    assert format_text(MESSY) == EXPECTED
    assert format_text(EXPECTED) == EXPECTED
    assert ir(tmp_path / "m.net", MESSY) == ir(tmp_path / "m.net", EXPECTED)


def test_brackets_over_several_lines_indent_from_the_line_that_opened_them():
    text = """\
model m(x: f32[N, 4]) -> (y: f32[N, 12]) {
  y = concat(
  x,
        x |> relu
           |> tanh,   # two steps
  x, axis=-1
      )
  const SIZES = [(1, 2),
                 (3, 4)]
}
"""
    assert (
        format_text(text)
        == """\
model m(x: f32[N, 4]) -> (y: f32[N, 12]) {
    y = concat(
        x,
        x |> relu
            |> tanh,  # two steps
        x, axis=-1
    )
    const SIZES = [(1, 2),
        (3, 4)]
}
"""
    )


def test_a_long_line_is_broken_before_its_pipes_and_if_expressions_stay_on_one_line():
    steps = " |> ".join(['conv2d(64, 3, padding="same")', "batchnorm", "relu"] * 2)
    text = f"block b(x) {{\n    return x |> {steps} |> maxpool(2, stride=2)\n}}\n"
    formatted = format_text(text)
    assert formatted.split("\n")[1:5] == [
        "    return x",
        '        |> conv2d(64, 3, padding="same")',
        "        |> batchnorm",
        "        |> relu",
    ]
    assert format_text(formatted) == formatted
    short = "block b(x, c: bool) {\n    return if c { x |> relu } else { -x }\n}\n"
    assert format_text(short) == short


def test_a_syntax_error_formats_nothing():
    with pytest.raises(netc.NetcError):
        format_text("model m(x: f32[N]) -> (y: f32[N]) {\n    y = x |>\n}\n")


def test_an_empty_file_and_a_comment_alone():
    assert format_text("") == ""
    assert format_text("\n\n  # just a note   \n\n") == "# just a note\n"


def netc_cli(*args: str, stdin: str | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "netc", *args], input=stdin, capture_output=True, text=True, cwd=cwd
    )


def test_the_command_formats_in_place_checks_diffs_and_reads_stdin(tmp_path):
    messy, tidy = tmp_path / "messy.net", tmp_path / "tidy.net"
    messy.write_text(MESSY)
    tidy.write_text(EXPECTED)
    r = netc_cli("fmt", "--check", str(messy), str(tidy))
    assert r.returncode == 1 and r.stderr == f"would reformat {messy}\n"
    assert messy.read_text() == MESSY  # --check writes nothing
    r = netc_cli("fmt", "--diff", str(messy))
    assert r.returncode == 1 and r.stdout.startswith(
        f"--- {messy} (original)\n+++ {messy} (formatted)"
    )
    assert "+const WIDTHS = [32, 64]  # widths\n" in r.stdout
    r = netc_cli("fmt", "-", stdin=MESSY)
    assert r.returncode == 0 and r.stdout == EXPECTED
    r = netc_cli("fmt", str(messy), str(tidy))
    assert r.returncode == 0 and r.stderr == f"reformatted {messy}\n"
    assert messy.read_text() == EXPECTED
    assert netc_cli("fmt", "--check", str(messy), str(tidy)).returncode == 0


def test_the_command_reports_a_syntax_error_and_leaves_the_file(tmp_path):
    bad = tmp_path / "bad.net"
    bad.write_text("model m(x: f32[N]) -> (y: f32[N]) {\n    y = x |>\n}\n")
    r = netc_cli("fmt", str(bad))
    assert r.returncode == 1
    assert r.stderr.startswith(f"{bad}:2:11: error: ")
    assert bad.read_text().endswith("y = x |>\n}\n")
    assert netc_cli("fmt").returncode == 2  # no file: bad usage
