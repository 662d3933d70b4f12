"""--ort-contrib against ONNX Runtime's own optimizer (not a test): self-attention alone and the
Transformer example, netc's generic graph and its com.microsoft Attention form, both at ONNX
Runtime's optimizer level all, timed side by side in one process (runs interleaved).

    python bench/ort_contrib.py --repeat 60

Prints the median latency of each and the median of the per-round speed ratios.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ATTENTION = """model attention(x: f32[N, {t}, {d}]) -> (y: tensor) {{
  y = x |> multi_head_attention(heads={h}, key_dim={k})
}}
"""
WORKLOADS = {
    "attention T=128 D=128 h=4": ATTENTION.format(t=128, d=128, h=4, k=32),
    "attention T=256 D=256 h=8": ATTENTION.format(t=256, d=256, h=8, k=32),
    "transformer_classifier": EXAMPLES / "transformer_classifier.net",
}


def main() -> None:
    """Measure and print a Markdown table."""
    import netc
    import netc.runtime
    from netc import driver
    from netc.backends.onnx_contrib import use_contrib_ops
    from netc.quantize import random_inputs
    from netc.runtime.bench import side_by_side
    from netc.weights import randomized_weights

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=60)
    parser.add_argument("--batch", type=int, action="append")
    parser.add_argument(
        "--threads", type=int, default=None, help="ONNX Runtime's intra-op threads (default all)"
    )
    args = parser.parse_args()
    print("| workload | batch | generic (ms) | --ort-contrib (ms) | speed-up (per round) |")
    print("|---|---:|---:|---:|---:|")
    for name, source in WORKLOADS.items():
        model = netc.compile(source)
        proto = driver.emit(model, "onnx", weights=randomized_weights(model.graph))
        sessions = {
            "generic": netc.runtime.load(proto, device="cpu", threads=args.threads),
            "contrib": netc.runtime.load(
                use_contrib_ops(proto, model.graph), device="cpu", threads=args.threads
            ),
        }
        for batch in args.batch or [1, 8]:
            feed = random_inputs(model.graph, batch, seed=2)
            t = side_by_side(sessions, {k: feed for k in sessions}, repeat=args.repeat)
            ratio = np.median(np.asarray(t["generic"].times) / np.asarray(t["contrib"].times))
            print(
                f"| {name} | {batch} | {t['generic'].median * 1e3:.2f} | "
                f"{t['contrib'].median * 1e3:.2f} | {ratio:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
