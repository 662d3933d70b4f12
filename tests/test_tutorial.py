"""docs/tutorial.md runs as written: its files are written from the ```python and ```net blocks
marked `# file: NAME`, and every command of its ```sh blocks runs, in order, in an empty folder,
as a user types it (`netc` is this Python's `python -m netc`). The model reaches the test
accuracy the tutorial states (at least 95 %), and what each command is shown to print, it
prints. It trains for real (about 20 epochs of 1,293 digits), so it takes a minute or so.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

TUTORIAL = Path(__file__).resolve().parent.parent / "docs" / "tutorial.md"
TIMEOUT = 600  # seconds one command may take; training takes 20-60 s

# every command, in order, and what the test checks of its output (below)
COMMANDS = [
    "python make_digits.py",
    "netc check digits.net",
    "netc summary digits.net",
    "netc train digits.net --data digits_train.npz -o digits.safetensors",
    "netc digits.net --weights digits.safetensors -q",
    "python evaluate.py",
    "netc verify digits.net --weights digits.safetensors",
    "netc bench digits.onnx --batch 64",
    "netc bench digits.net -t onnx -t tf --batch 64",
]


def blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced code block."""
    return re.findall(r"^```(\w+)\n(.*?)^```$", TUTORIAL.read_text(encoding="utf-8"), re.M | re.S)


def argv(command: str) -> list[str]:
    words = shlex.split(command)
    head = {"netc": [sys.executable, "-m", "netc"], "python": [sys.executable]}[words[0]]
    return [*head, *words[1:]]


def test_the_tutorial_runs_as_written_and_reaches_its_accuracy(tmp_path):
    text = TUTORIAL.read_text(encoding="utf-8")
    for language, body in blocks():
        header = re.match(r"# file: (\S+)\n", body)
        if language in ("python", "net") and header:
            (tmp_path / header.group(1)).write_text(body, encoding="utf-8")
    commands = [
        line.strip()
        for language, body in blocks()
        if language == "sh"
        for line in body.splitlines()
        if line.strip()
    ]
    assert commands == COMMANDS  # a new command in the tutorial needs its check here
    out: dict[str, str] = {}
    for command in commands:
        done = subprocess.run(
            argv(command), cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT
        )
        assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr, f"{command}:\n{done.stderr}"
        out[command] = done.stdout

    assert out[COMMANDS[0]] == "1437 training images, 360 test images\n"
    assert out[COMMANDS[1]] == "ok: model `digits`: 14 layers, 8,602 params\n"
    assert "conv_bn_2.batchnorm" in out[COMMANDS[2]] and "Total params: 8,602" in out[COMMANDS[2]]
    trained = out[COMMANDS[3]].splitlines()
    assert trained[0] == "Epoch 1/20"
    assert re.fullmatch(r"trained \d+ epochs(, stopped early \(of 20\))?: accuracy .*", trained[-2])
    assert trained[-1] == "wrote digits.safetensors, digits.history.json, digits.history.png"
    for name in ("digits.safetensors", "digits.history.json", "digits.history.png"):
        assert (tmp_path / name).is_file()
    assert (tmp_path / "digits.ckpt" / "state.json").is_file()
    assert out[COMMANDS[4]].splitlines()[-1] == "wrote digits.onnx"

    stated = float(re.search(r"^test accuracy: ([\d.]+) %$", text, re.M).group(1))
    got = float(re.fullmatch(r"test accuracy: ([\d.]+) %\n", out[COMMANDS[5]]).group(1))
    assert got >= 95.0, f"the tutorial's model reaches {got} % on the test digits"
    # the same CPU gives the same weights; another CPU may round a few sums otherwise
    assert abs(got - stated) <= 1.5, f"the tutorial states {stated} %, the run gives {got} %"

    assert out[COMMANDS[6]].startswith(
        "digits.net: the onnx backend agrees with the reference: all 7 values of `digits`"
    )
    assert "│ digits.onnx │" in out[COMMANDS[7]]
    assert "│ onnx   │" in out[COMMANDS[8]] and "│ tf     │" in out[COMMANDS[8]]
