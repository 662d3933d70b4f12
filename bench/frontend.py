"""Benchmark of the front end (not a test): how long the `netc` command takes to start, check
and write, and how `netc check` scales with the size of a file.

    python bench/frontend.py [--repeat 5] [--blocks 10000] [--baseline REV]

Commands run as subprocesses (wall and CPU time, median of --repeat runs, interleaved with
the baseline's when `--baseline` names a git revision to compare against: on a shared, loaded
machine only such side-by-side ratios mean much). Bytecode is cached outside the tree, as an
installed package's would be. Then `netc check` of generated files of 1,000 and --blocks
blocks: wall and CPU time, and the peak memory of the process.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
RUN = (  # netc, then its own peak memory on the last line of stderr
    "import atexit, resource, sys; atexit.register(lambda: sys.stderr.write("
    "f'\\nMAXRSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n'))\n"
    "from netc.cli import main; sys.argv[0] = 'netc'; main()"
)


def generated_spec(blocks: int = 1000) -> str:
    """A file of `blocks` distinct blocks (dense, layernorm-free residual) chained by a model."""
    lines = []
    for i in range(blocks):
        lines.append(
            f"block b{i}(x, units: int = 32) {{\n"
            f"    y = x |> dense(units) |> relu\n"
            f"    return x + y * {1 + i % 7}.0\n}}\n"
        )
    body = "\n".join(f"    x = x |> b{i}" for i in range(blocks))
    lines.append(
        f"model chain(input: f32[N, 32]) -> (out: f32[N, 32]) {{\n    x = input\n"
        f"{body}\n    out = x\n}}\n"
    )
    return "\n".join(lines)


def baseline_tree(rev: str, into: Path) -> Path:
    """The netc package of git revision `rev`, laid out for PYTHONPATH."""
    data = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True)
    src = into / "src"
    with tarfile.open(fileobj=BytesIO(data.stdout)) as tar:
        tar.extractall(src, filter="data")
    shutil.copytree(src / "compiler", into / "pkg" / "netc")
    shutil.copytree(src / "grammar", into / "pkg" / "netc" / "grammar")
    shutil.copytree(src / "runtime", into / "pkg" / "netc" / "runtime")
    return into / "pkg"


def run(args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak KB) of `netc ARGS` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", RUN, *args], cwd=ROOT, env=env, capture_output=True
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"netc {' '.join(args)} failed:\n{done.stderr.decode()[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    peak = int(done.stderr.decode().rsplit("MAXRSS ", 1)[1])
    return wall, cpu, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--blocks", type=int, default=10_000, help="0: no generated files")
    ap.add_argument("--baseline", metavar="REV", help="a git revision to compare with")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="netc-bench-"))
    try:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        trees = {"now": env}
        if args.baseline:
            trees[args.baseline] = {**env, "PYTHONPATH": str(baseline_tree(args.baseline, work))}
        out = work / "out.onnx"
        commands = [
            ["--help"],
            ["check", "examples/resnet50.net"],
            ["examples/resnet50.net", "-o", str(out)],
        ]
        print(
            f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
            f"{os.getloadavg()[0]:.1f}; median of {args.repeat} (wall, CPU)"
        )
        for tree in trees.values():  # warm the bytecode caches
            run(["check", "examples/resnet50.net"], tree)
        times: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
        for _ in range(args.repeat):
            for command in commands:
                for name, tree in trees.items():
                    times.setdefault((" ".join(command), name), []).append(run(command, tree))
        for (command, name), ts in times.items():
            wall = statistics.median(t[0] for t in ts)
            cpu = statistics.median(t[1] for t in ts)
            print(f"  netc {command:<48} {name:<10} {wall:6.3f} s  {cpu:6.3f} s CPU")
        for blocks in (1000, args.blocks) if args.blocks else ():  # --blocks 0: none
            path = work / f"gen{blocks}.net"
            path.write_text(generated_spec(blocks))
            for name, tree in trees.items():
                wall, cpu, peak = run(["check", str(path)], tree)
                print(
                    f"  netc check of {blocks:,} blocks ({path.stat().st_size / 2**20:.1f} MB) "
                    f"{name:<10} {wall:6.2f} s  {cpu:6.2f} s CPU  {peak / 1024:6.0f} MB peak"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
