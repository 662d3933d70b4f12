"""int8 accuracy of a *trained* MobileNetV2 (not a test): what randomized weights cannot say.

MobileNetV2 with random weights is a degenerate or a chaotic network (docs/quantization.md),
so its int8 top-1 agreement measures nothing; no trained ImageNet weights can be downloaded
here. This script trains examples/mobilenet_v2.net's own layers (every block as written, 52
convolutions, 17 of them depthwise) at 32x32 with a 10-class head on scikit-learn's handwritten
digits (8x8 images scaled up 4x, grey on three channels, in [-1, 1]; 1,797 real images that
need no download) with `netc.runtime.train`, then quantizes it with `--quantize int8` as the
command line does, calibrated on the digits with each calibration method, and prints the
quantization report (top-1 agreement with the float model and the largest error, on the
held-out part of the calibration data: the last 20 %, images the training never saw) with
both models' accuracy against the true labels there.

    python bench/quantize_trained.py [--epochs 30] [--method percentile ...]

The batchnorm momentum is 0.9 here, not Keras' 0.999: a short training on 1,300 images would
leave 0.999's moving statistics mostly at their initial values. The deployed graph is the
same (batchnorm is folded into the convolutions either way). Takes 3-5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mobilenet_v2.net"
TRAIN_SAMPLES = 1300  # the rest (497) are the test images: held out from training
# what changes in the example's text: input size, classes, batchnorm momentum (above)
EDITS = (
    ("momentum=0.999", "momentum=0.9"),
    ("image: f32[N, 224, 224, 3]", "image: f32[N, 32, 32, 3]"),
    ("probs: f32[N, 1000]", "probs: f32[N, 10]"),
    ("dense(1000)", "dense(10)"),
)
TRAIN = """
train {
    loss = sparse_categorical_crossentropy
    optimizer = adam(learning_rate=2e-3)
    metrics = [accuracy]
    epochs = %d
    batch_size = 32
    shuffle = true
    seed = 0
}
"""


def source(epochs: int) -> str:
    """The example's text at 32x32 with 10 classes and a train section."""
    text = EXAMPLE.read_text()
    for old, new in EDITS:
        if old not in text:
            raise SystemExit(f"{EXAMPLE} no longer holds {old!r}: update EDITS")
        text = text.replace(old, new)
    return text + TRAIN % epochs


def digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits as f32[N, 32, 32, 3] in [-1, 1] and their labels, in a seeded order."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images / 8.0 - 1.0).astype(np.float32)  # 0..16 -> -1..1
    images = np.kron(images, np.ones((4, 4), np.float32))[..., None].repeat(3, axis=-1)
    order = np.random.default_rng(0).permutation(len(images))
    return images[order], d.target[order].astype(np.int64)


def main() -> None:
    """Train, quantize with each method, print a Markdown table."""
    import netc
    import netc.runtime
    from netc import driver, quantize
    from netc.runtime.train import train
    from netc.runtime.train_data import Data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--method", action="append", choices=quantize.CALIBRATION_METHODS)
    args = parser.parse_args()
    images, labels = digits()
    model = netc.compile(source(args.epochs))
    t0 = time.perf_counter()
    fit = {"image": images[:TRAIN_SAMPLES], "probs": labels[:TRAIN_SAMPLES]}
    test = {"image": images[TRAIN_SAMPLES:], "probs": labels[TRAIN_SAMPLES:]}
    result = train(model, Data(fit, "digits"), Data(test, "digits (test)"), verbose=0)
    trained = time.perf_counter() - t0
    proto = driver.emit(model, "onnx", weights=result.weights)
    with tempfile.TemporaryDirectory() as tmp:
        calib = Path(tmp) / "calib.npz"
        np.savez(calib, image=images)  # the last 20 % (held out by the report) are test images
        float_probs = netc.runtime.load(proto, device="cpu").run({"image": images})["probs"]
        print(
            f"MobileNetV2 (examples/mobilenet_v2.net at 32x32, 10 classes) trained {args.epochs} "
            f"epochs on {TRAIN_SAMPLES} digits in {trained:.0f} s; float accuracy on the other "
            f"{len(images) - TRAIN_SAMPLES}: "
            f"{100 * np.mean(float_probs[TRAIN_SAMPLES:].argmax(-1) == test['probs']):.1f} %"
        )
        print()
        print("| calibration | top-1 agreement | max error | float accuracy | int8 accuracy |")
        print("|---|---:|---:|---:|---:|")
        for method in args.method or quantize.CALIBRATION_METHODS:
            options = quantize.QuantizeOptions(calib=calib, method=method, warn_only=True)
            int8, report = quantize.quantize(proto, model.graph, options)
            (cost,) = report.outputs
            held = slice(len(images) - cost.rows, None)
            int8_probs = netc.runtime.load(int8, device="cpu").run({"image": images[held]})
            accuracy = [
                100 * np.mean(p.argmax(-1) == labels[held])
                for p in (float_probs[held], int8_probs["probs"])
            ]
            print(
                f"| {method} on {len(images) - cost.rows} | {cost.top1_agreement:.2f} % of "
                f"{cost.rows} | {100 * cost.max_relative_error:.1f} % | {accuracy[0]:.1f} % | "
                f"{accuracy[1]:.1f} % |",
                flush=True,
            )


if __name__ == "__main__":
    main()
