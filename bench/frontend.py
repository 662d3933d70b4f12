"""Benchmark of the front end (not a test): `netc check` time for ResNet-50 and for a
generated spec of 1,000 blocks. Run: `python bench/frontend.py [--repeat 5]`."""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


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


def _time(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    import netc
    from netc.elaborate import elaborate
    from netc.parse import parse
    from netc.source import Reporter

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    spec = generated_spec()
    cases = {
        "resnet50.net": (EXAMPLES / "resnet50.net").read_text(),
        "generated 1,000 blocks": spec,
    }
    print(
        f"netc check, median of {args.repeat} (min..max); python {platform.python_version()}, "
        f"{platform.processor() or platform.machine()}"
    )
    for label, text in cases.items():
        module = parse(text, label)
        parse_t = _time(lambda t=text, p=label: parse(t, p), args.repeat)
        elab_t = _time(lambda m=module: elaborate(m, Reporter(), None), args.repeat)
        total_t = _time(lambda t=text, p=label: netc.compile_text(t, path=p), args.repeat)
        nodes = len(netc.compile_text(text, path=label).graph.nodes)
        for stage, ts in (("parse", parse_t), ("elaborate", elab_t), ("total", total_t)):
            print(
                f"  {label:<24} {stage:<10} {statistics.median(ts) * 1e3:8.1f} ms "
                f"({min(ts) * 1e3:.1f}..{max(ts) * 1e3:.1f})  {nodes} IR nodes"
            )


if __name__ == "__main__":
    main()
