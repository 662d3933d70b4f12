"""The data `netc train` reads (docs/training.md): arrays from .npz and .npy files, or a folder
of images with one subfolder per class, checked against the model's signature (every input
and trained output present, each shape, dtype and class index in range, one error listing
all) before TensorFlow is imported, and split for validation."""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from netc.ir import DTYPES, TensorType, numpy_dtype
from netc.source import error
from netc.summary import Model
from netc.train_spec import CLASSIFICATION, TrainSpec

COLOR_MODES = {1: "grayscale", 3: "rgb", 4: "rgba"}  # image channels -> Keras' color_mode


@dataclass(frozen=True)
class Data:
    """Arrays by name, one per model input and one target per trained output, and where they
    came from; `classes` are an image folder's class names, by label."""

    arrays: Mapping[str, np.ndarray]
    source: str
    classes: tuple[str, ...] | None = None

    @property
    def samples(self) -> int:
        return len(next(iter(self.arrays.values()))) if self.arrays else 0


DATA_FORMS = (
    "an .npz with one array per input and per trained output, named as them; "
    "two .npy files (the input, then the target); NAME=FILE.npy for each array; "
    "or a folder of images with one subfolder per class"
)


def is_image_folder(sources: Sequence[str | Path]) -> bool:
    """Whether `sources` is one folder (of images by class): reading it needs TensorFlow."""
    return len(sources) == 1 and Path(sources[0]).is_dir()


def read_data(sources: Sequence[str | Path], model: Model, spec: TrainSpec) -> Data:
    """The arrays `sources` hold: one .npz; two .npy (the one input, the one trained output's
    target); NAME=FILE.npy each; or one folder of images by class (read with
    `keras.utils.image_dataset_from_directory`, into memory)."""
    items = [str(s) for s in sources]
    if not items:
        raise error("no training data", hint=f"give {DATA_FORMS}")
    if is_image_folder(items):
        return _image_folder(Path(items[0]), model, spec)
    named = [s.partition("=") for s in items if "=" in s and not Path(s).exists()]
    if named and len(named) == len(items):
        return Data({name: _npy(path) for name, _, path in named}, ", ".join(items))
    if len(items) == 1 and items[0].endswith(".npz"):
        return Data(_npz(Path(items[0])), items[0])
    if len(items) == 2 and all(s.endswith(".npy") for s in items):
        inputs, trained = list(model.graph.inputs), list(spec.losses())
        if len(inputs) != 1 or len(trained) != 1:
            raise error(
                f"two .npy files are the input and the target of a model with one input and one "
                f"trained output; model `{model.graph.name}` takes {len(inputs)} "
                f"({', '.join(inputs)}) and trains {len(trained)} ({', '.join(trained)})",
                hint="name each array: --data NAME=FILE.npy, or use an .npz",
            )
        return Data({inputs[0]: _npy(items[0]), trained[0]: _npy(items[1])}, " and ".join(items))
    raise error(f"cannot read training data from {' '.join(items)}", hint=f"give {DATA_FORMS}")


def _file(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise error(f"no such data file: {p}" if not p.exists() else f"{p} is not a file")
    return p


def _npy(path: str) -> np.ndarray:
    p = _file(path)
    if p.suffix != ".npy":
        raise error(f"{p} is not an .npy file", hint=f"give {DATA_FORMS}")
    try:
        return np.load(p, allow_pickle=False)
    except Exception as e:  # a corrupt file or an object array: no unpickling, ever
        raise error(f"cannot read {p}: {e}") from None


def _npz(path: Path) -> dict[str, np.ndarray]:
    p = _file(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:
        raise error(f"cannot read {p}: {e}") from None


def _image_folder(path: Path, model: Model, spec: TrainSpec) -> Data:
    """A folder with a subfolder of images per class: the images resized to the model's one
    image input (values 0-255, as Keras reads them), the labels as the trained output's loss
    takes them (class indices, one-hot rows, or a 0/1 column)."""
    g = model.graph
    trained = spec.losses()
    t = g[g.inputs[0]].tensor_type if len(g.inputs) == 1 else None
    image = (
        t is not None
        and t.rank == 4
        and all(isinstance(d, int) for d in t.shape[1:])
        and t.shape[3] in COLOR_MODES
    )
    if not image or len(trained) != 1 or next(iter(trained.values())).name not in CLASSIFICATION:
        raise error(
            f"a folder of images trains a model with one image input f32[N, H, W, C] (C = 1, 3 "
            f"or 4) and one output with a classification loss; model `{g.name}` is not one",
            hint="give the data as an .npz instead",
        )
    assert t is not None
    ((out, loss),) = trained.items()
    h, w, c = (int(d) for d in t.shape[1:])
    from netc.backends import tensorflow

    tensorflow("keras")  # TensorFlow imported quietly
    import keras

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # "Found 100 files belonging to..."
            ds = keras.utils.image_dataset_from_directory(
                path,
                labels="inferred",
                label_mode="int",
                color_mode=COLOR_MODES[c],
                batch_size=None,
                image_size=(h, w),
                shuffle=False,
            )
    except ValueError as e:  # no images, or no class folders
        raise error(f"cannot read images from {path}: {str(e).splitlines()[0]}") from None
    classes = tuple(ds.class_names)
    images, labels = [], []
    for x, y in ds.batch(256):
        images.append(x.numpy())
        labels.append(y.numpy())
    if not images:
        raise error(f"{path} holds no images", hint="one subfolder of images per class")
    label = np.concatenate(labels).astype(np.int32)
    scored = _classes(g[dict(g.outputs)[out]].tensor_type)
    if scored is not None and len(classes) != scored:
        raise error(
            f"{path} has {len(classes)} class folders ({', '.join(classes)}), output `{out}` "
            f"scores {scored} classes"
        )
    target: np.ndarray
    if loss.name == "categorical_crossentropy":
        target = np.eye(len(classes), dtype=np.float32)[label]
    elif loss.name == "binary_crossentropy":
        target = label.astype(np.float32)[:, None]
    else:
        target = label
    return Data({g.inputs[0]: np.concatenate(images), out: target}, str(path), classes)


def _classes(t: TensorType) -> int | None:
    if not t.shape or not isinstance(t.shape[-1], int):
        return None
    return t.shape[-1] if t.shape[-1] > 1 else 2


@dataclass(frozen=True)
class _Expected:
    """What one array must be: an input, or a trained output's target."""

    kind: str  # "input" or "target"
    type: TensorType  # the input's, or for a target the output's
    loss: str | None = None

    @property
    def sparse(self) -> bool:
        return self.loss == "sparse_categorical_crossentropy"

    def shapes(self) -> list[tuple[Any, ...]]:
        """The shapes it may have (dims: ints or symbols)."""
        shape = tuple(self.type.shape)
        return [shape[:-1], (*shape[:-1], 1)] if self.sparse else [shape]

    def describe(self) -> str:
        if self.sparse:
            dims = ", ".join(str(d) for d in self.type.shape[:-1])
            return f"class indices, ints of shape [{dims}]"
        return str(self.type)


def check_data(data: Data, model: Model, spec: TrainSpec) -> dict[str, np.ndarray]:
    """The arrays of `data`, checked against the model's inputs and the trained outputs'
    targets (names, dtypes, shapes, one size per symbol and one sample count, finite values,
    class indices in range) and cast to the dtypes the model takes; one NetcError lists every
    problem."""
    g = model.graph
    expected: dict[str, _Expected] = {
        name: _Expected("input", g[name].tensor_type) for name in g.inputs
    }
    outputs = dict(g.outputs)
    for out, choice in spec.losses().items():
        expected[out] = _Expected("target", g[outputs[out]].tensor_type, choice.name)
    problems: list[str] = []
    out_arrays: dict[str, np.ndarray] = {}
    symbols: dict[str, tuple[int, str]] = {}
    samples: dict[str, int] = {}
    for name, want in expected.items():
        if name not in data.arrays:
            what = f"{want.kind} `{name}`" + (f" ({want.loss})" if want.loss else "")
            problems.append(f"missing {what}: {want.describe()}")
            continue
        a = np.asarray(data.arrays[name])
        found = _check_array(name, a, want, spec, symbols, problems)
        if found is not None:
            out_arrays[name] = found
            samples[name] = len(a)
    inputs, targets = ", ".join(g.inputs), ", ".join(spec.losses())
    for name in data.arrays:
        if name not in expected:
            problems.append(
                f"unexpected array `{name}`; the model takes {inputs} and trains {targets}"
            )
    if len(set(samples.values())) > 1:
        counts = ", ".join(f"{k} {v}" for k, v in samples.items())
        problems.append(f"the arrays hold different numbers of samples: {counts}")
    if samples and not any(samples.values()):
        problems.append("the arrays hold no samples")
    if problems:
        raise error(
            f"{data.source} does not fit model `{g.name}` ({len(problems)} problem"
            f"{'s' if len(problems) > 1 else ''})",
            notes=problems,
            hint=f"the model takes {inputs} and trains {targets}; give an array of each, "
            "named as it",
        )
    return out_arrays


def _check_array(
    name: str,
    a: np.ndarray,
    want: _Expected,
    spec: TrainSpec,
    symbols: dict[str, tuple[int, str]],
    problems: list[str],
) -> np.ndarray | None:
    """`a` cast for the model, or None after adding its problems."""
    before = len(problems)
    what = f"{want.kind} `{name}`"
    t = want.type
    if want.sparse:
        ok_kind = a.dtype.kind in "iu"
        dtype = np.dtype(np.int32)
        need = "class indices (ints)"
    elif t.is_float:
        ok_kind = a.dtype.kind in "fiub"
        dtype = numpy_dtype(t.dtype)
        need = f"numbers ({t.dtype})"
    else:
        ok_kind = a.dtype.kind in ("b" if t.dtype == "bool" else "iu")
        dtype = numpy_dtype(t.dtype)
        need = DTYPES.get(t.dtype, t.dtype)
    if not ok_kind:
        problems.append(f"{what} has dtype {a.dtype}, the model needs {need}")
    shapes = want.shapes()
    if not any(len(s) == a.ndim for s in shapes):
        problems.append(f"{what} has shape {list(a.shape)}, the model needs {want.describe()}")
    else:
        shape = next(s for s in shapes if len(s) == a.ndim)
        for axis, (d, n) in enumerate(zip(shape, a.shape)):
            if axis == 0 and isinstance(d, int) and d != spec.batch_size:
                problems.append(
                    f"{what} has a fixed batch of {d} ({t}); train it with --batch-size {d}"
                )
            elif axis > 0 and isinstance(d, int) and d != n:
                problems.append(
                    f"{what} has shape {list(a.shape)}, the model needs {want.describe()} "
                    f"(axis {axis} must be {d})"
                )
            elif axis > 0 and isinstance(d, str) and "*" not in d:
                size, first = symbols.setdefault(d, (n, name))
                if size != n:
                    problems.append(f"{what} axis {axis} is {n}, but {d} = {size} in `{first}`")
    if len(problems) > before:
        return None
    if a.dtype.kind == "f":
        bad = int(np.size(a) - np.isfinite(a).sum())
        if bad:
            problems.append(f"{what} holds {bad} NaN or infinite value{'s' if bad > 1 else ''}")
            return None
    if want.sparse and a.size:
        classes = t.shape[-1]
        low, high = int(a.min()), int(a.max())
        if low < 0 or isinstance(classes, int) and high >= classes:
            worst = low if low < 0 else high
            at = int(np.argmax(a.reshape(len(a), -1) == worst) // max(1, a[0].size))
            problems.append(
                f"{what} holds class {worst} (sample {at}); output `{name}` scores "
                f"{classes} classes"
            )
            return None
    return a.astype(dtype, copy=False)


def split(arrays: Mapping[str, np.ndarray], fraction: float) -> tuple[dict, dict]:
    """(train, validation): the last `fraction` of the samples are for validation, before any
    shuffling, as Keras' validation_split takes them."""
    n = len(next(iter(arrays.values())))
    at = int(math.floor(n * (1.0 - fraction)))
    if at == 0:  # 0 < fraction < 1 leaves a validation sample whenever one trains
        raise error(
            f"validation_split {fraction} of {n} sample{'s' if n != 1 else ''} leaves no "
            "training sample",
            hint="give more samples, another validation_split, or --val FILE",
        )
    return {k: v[:at] for k, v in arrays.items()}, {k: v[at:] for k, v in arrays.items()}
