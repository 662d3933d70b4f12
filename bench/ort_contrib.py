"""--ort-contrib against ONNX Runtime's own optimizers (not a test): self-attention,
cross-attention and the Transformer example, each as netc's generic graph, as that graph after
`onnxruntime.transformers`' offline fusions, and in netc's com.microsoft forms; all three at
ONNX Runtime's optimizer level all, timed side by side in one process (runs interleaved).

    python bench/ort_contrib.py --repeat 60 --threads 1

Prints, per workload, the contrib ops each form runs, and a Markdown table of the median
latencies and the median of the per-round speed ratios against the generic graph.
`onnxruntime.transformers` needs sympy (the `bench` extra).
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SELF = """model attention(x: f32[N, {t}, {d}]) -> (y: tensor) {{
  y = x |> multi_head_attention(heads={h}, key_dim={k})
}}
"""
CROSS = """model cross(x: f32[N, {t}, {d}], memory: f32[N, {s}, {d}]) -> (y: tensor) {{
  y = multi_head_attention(x, memory, heads={h}, key_dim={k})
}}
"""
WORKLOADS: dict[str, tuple[str | Path, int, int]] = {  # source, heads, model width
    "self-attention T=128 D=128 h=4": (SELF.format(t=128, d=128, h=4, k=32), 4, 128),
    "self-attention T=256 D=256 h=8": (SELF.format(t=256, d=256, h=8, k=32), 8, 256),
    "cross-attention T=32 S=256 D=128 h=4": (CROSS.format(t=32, s=256, d=128, h=4, k=32), 4, 128),
    "transformer_classifier": (EXAMPLES / "transformer_classifier.net", 4, 128),
}


def transformers_fusions(proto: Any, heads: int, width: int) -> Any:
    """`proto` after onnxruntime.transformers' BERT fusions (opt_level 0: its own graph
    rewrites only; the session then applies ONNX Runtime's level all as for the others)."""
    import onnx
    from onnxruntime.transformers import optimizer

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(proto, path)
        fused = optimizer.optimize_model(
            str(path), model_type="bert", num_heads=heads, hidden_size=width, opt_level=0
        )
    return fused.model


def contrib_ops(proto: Any) -> str:
    """The com.microsoft ops of `proto`, counted."""
    ops = Counter(n.op_type for n in proto.graph.node if n.domain == "com.microsoft")
    return ", ".join(f"{op} {count}" for op, count in sorted(ops.items())) or "none"


def main() -> None:
    """Measure and print a Markdown table."""
    import netc
    import netc.runtime
    from netc import driver
    from netc.backends.onnx_contrib import use_contrib_ops
    from netc.quantize import random_inputs
    from netc.runtime.bench import side_by_side
    from netc.runtime.tolerance import assert_close
    from netc.weights import randomized_weights

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=60)
    parser.add_argument("--batch", type=int, action="append")
    parser.add_argument(
        "--threads", type=int, default=None, help="ONNX Runtime's intra-op threads (default all)"
    )
    args = parser.parse_args()
    rows = []
    for name, (source, heads, width) in WORKLOADS.items():
        model = netc.compile(source)
        proto = driver.emit(model, "onnx", weights=randomized_weights(model.graph))
        forms = {
            "generic": proto,
            "ort.transformers": transformers_fusions(proto, heads, width),
            "--ort-contrib": use_contrib_ops(proto, model.graph),
        }
        print(f"{name}: " + "; ".join(f"{k}: {contrib_ops(p)}" for k, p in forms.items()))
        sessions = {
            k: netc.runtime.load(p, device="cpu", threads=args.threads) for k, p in forms.items()
        }
        for batch in args.batch or [1, 8]:
            feed = random_inputs(model.graph, batch, seed=2)
            want = sessions["generic"].run(feed)
            for k, session in sessions.items():  # a fast wrong answer is no answer
                for out, value in session.run(feed).items():
                    assert_close(value, want[out], scope="model", err_msg=f"{name}, {k}")
            t = side_by_side(sessions, {k: feed for k in sessions}, repeat=args.repeat)
            base = np.asarray(t["generic"].times)
            cells = [f"{t['generic'].median * 1e3:.2f}"]
            for k in ("ort.transformers", "--ort-contrib"):
                ratio = np.median(base / np.asarray(t[k].times))
                cells.append(f"{t[k].median * 1e3:.2f} ({ratio:.2f}x)")
            rows.append(f"| {name} | {batch} | " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    print()
    print(
        "| workload | batch | generic (ms) | ort.transformers fusions (ms, speed-up) "
        "| --ort-contrib (ms, speed-up) |"
    )
    print("|---|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
