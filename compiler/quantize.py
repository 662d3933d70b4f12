"""int8 quantization of an emitted ONNX model (`--quantize int8`, docs/quantization.md), with
its accuracy cost measured against the float model and a bound past which it is refused.

A model with convolutions gets static QDQ quantization calibrated on the user's data
(ONNX Runtime's calibrators: percentile, entropy or min-max), weights per channel; any other
model (dense, matmul, LSTM, attention) dynamic quantization, its activations' scales computed
at run time. Both use `onnxruntime.quantization`; netc decides what stays in float (matmuls of
two activations, such as attention's scores, and everything the scheme cannot quantize) and
turns Gemm into MatMul + Add, which dynamic quantization handles. The cost is measured on the
held-out part of the calibration data (or seeded random inputs), both models run by ONNX
Runtime as deployed. `onnx` and `onnxruntime` are imported only when a model is quantized.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .ir import Graph, TensorType
from .ops import OPS
from .source import error

SCHEMES = ("int8",)
CALIBRATION_METHODS = ("percentile", "entropy", "minmax")
HELD_OUT = 0.2  # the part of the calibration samples kept out of calibration, for the report
# samples per calibration run, at most: ONNX Runtime's histogram calibrators (percentile,
# entropy) stack every run's outputs into one array, so the runs must all be the same size
CALIBRATION_BATCH = 8
RANDOM_SAMPLES = 64  # seeded inputs for the report when no data is given (dynamic scheme)
# IR ops lowered to convolutions (the op table's conv category, and the fused form): a model
# with any of them gets the static (QDQ) scheme
CONV_OPS = frozenset({n for n, op in OPS.items() if op.category == "conv"} | {"fused_conv"})


@dataclass(frozen=True)
class QuantizeOptions:
    """What `--quantize` asks for: the scheme, calibration data and method, and the bound on
    top-1 agreement with the float model (percent) below which the model is refused, or only
    warned about when `warn_only`."""

    scheme: str = "int8"
    calib: str | Path | None = None
    method: str = "percentile"
    min_top1_agreement: float = 99.0
    warn_only: bool = False


@dataclass(frozen=True)
class OutputCost:
    """One output's accuracy cost: the largest |int8 - float| (absolute, and over the float
    output's largest |value|), and the percentage of rows (all axes but the last) whose
    arg-max over the last axis is the same, None for an output with no classes to compare."""

    name: str
    max_error: float
    max_relative_error: float
    top1_agreement: float | None
    rows: int


@dataclass(frozen=True)
class QuantizeReport:
    """What quantization did and what it cost: the scheme ("dynamic" or "static QDQ"), how
    it was calibrated, the data the cost was measured on, and each output's cost."""

    scheme: str
    calibration: str
    measured_on: str
    outputs: tuple[OutputCost, ...]
    quantized_nodes: int
    float_nodes: int
    warnings: tuple[str, ...] = field(default=())

    def lowest_agreement(self) -> float | None:
        """The smallest top-1 agreement over the outputs that have one."""
        agreements = [o.top1_agreement for o in self.outputs if o.top1_agreement is not None]
        return min(agreements) if agreements else None

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-able data."""
        return {
            "scheme": self.scheme,
            "calibration": self.calibration,
            "measured_on": self.measured_on,
            "quantized_nodes": self.quantized_nodes,
            "float_nodes": self.float_nodes,
            "outputs": [asdict(o) for o in self.outputs],
            "warnings": list(self.warnings),
        }

    def lines(self) -> list[str]:
        """The report in words, one line per fact."""
        out = [
            f"int8 ({self.scheme}, {self.calibration}): {self.quantized_nodes} nodes quantized, "
            f"{self.float_nodes} in float",
            f"accuracy against the float model on {self.measured_on}:",
        ]
        for o in self.outputs:
            top1 = (
                f", top-1 agreement {o.top1_agreement:.2f} % of {o.rows}"
                if o.top1_agreement is not None
                else ""
            )
            out.append(
                f"  {o.name}: max error {o.max_error:.3g} "
                f"({100 * o.max_relative_error:.2f} % of its largest value){top1}"
            )
        return out + [f"warning: {w}" for w in self.warnings]


def options(
    target: str,
    scheme: str | None,
    calib: str | None,
    method: str | None,
    min_top1_agreement: float | None,
    warn_only: bool,
) -> QuantizeOptions | None:
    """The QuantizeOptions of the command line's flags (None without --quantize); a NetcError
    for a flag that needs --quantize, or a target other than onnx."""
    if scheme is None:
        given = [
            flag
            for flag, value in (
                ("--calib", calib),
                ("--calib-method", method),
                ("--min-top1-agreement", min_top1_agreement),
                ("--warn-accuracy", warn_only or None),
            )
            if value is not None
        ]
        if given:
            raise error(f"{given[0]} applies with --quantize int8")
        return None
    if target != "onnx":
        raise error(f"--quantize applies to -t onnx, not to -t {target}")
    defaults = QuantizeOptions()
    return QuantizeOptions(
        scheme=scheme,
        calib=calib,
        method=method or defaults.method,
        min_top1_agreement=(
            defaults.min_top1_agreement if min_top1_agreement is None else min_top1_agreement
        ),
        warn_only=warn_only,
    )


def read_calibration(path: str | Path, graph: Graph) -> dict[str, np.ndarray]:
    """Calibration samples from `.npz` (one array per model input, samples along the first
    axis, the same count for every input), checked against the model's inputs."""
    from .ir import numpy_dtype

    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise error(f"no such calibration file: {p}") from None
    except (OSError, ValueError) as e:
        raise error(f"cannot read calibration data from {p}: {e}") from None
    names = list(graph.inputs)
    problems = [f"missing input `{n}`" for n in names if n not in data]
    problems += [f"unexpected array `{k}`" for k in data if k not in names]
    counts = {k: a.shape[0] if a.ndim else 0 for k, a in data.items()}
    if not problems and len(set(counts.values())) != 1:
        problems.append(
            "the inputs hold different sample counts: "
            + ", ".join(f"{k} {c}" for k, c in counts.items())
        )
    for name in names:
        if name not in data:
            continue
        t, a = graph[name].tensor_type, data[name]
        if a.dtype != numpy_dtype(t.dtype):
            problems.append(
                f"`{name}` has dtype {a.dtype}, the model needs {t.dtype} "
                f"(`.astype(np.{numpy_dtype(t.dtype)})`)"
            )
        fixed = [(axis, d) for axis, d in enumerate(t.shape) if axis and isinstance(d, int)]
        if a.ndim != t.rank or any(a.shape[axis] != d for axis, d in fixed):
            problems.append(
                f"`{name}` has shape {list(a.shape)}, the model needs {t} (samples along axis 0)"
            )
    if not problems and next(iter(counts.values())) < 2:
        problems.append("it holds fewer than 2 samples (some are held out to measure the cost)")
    if problems:
        raise error(
            f"{p} does not fit model `{graph.name}` as calibration data",
            notes=problems,
            hint=f"save one array per input ({', '.join(names)}), samples along axis 0",
        )
    return data


def split(data: Mapping[str, np.ndarray]) -> tuple[dict, dict]:
    """(calibration, held-out) samples: the last HELD_OUT part (at least one) is held out."""
    count = next(iter(data.values())).shape[0]
    held = max(1, int(round(count * HELD_OUT)))
    return {k: a[: count - held] for k, a in data.items()}, {
        k: a[count - held :] for k, a in data.items()
    }


def scheme_for(graph: Graph) -> str:
    """ "static QDQ" for a model with convolutions, "dynamic" for any other."""
    return "static QDQ" if any(n.op in CONV_OPS for n in graph) else "dynamic"


def quantize(model: Any, graph: Graph, options: QuantizeOptions) -> tuple[Any, QuantizeReport]:
    """The int8 model of `model` (an `onnx.ModelProto` emitted from `graph`) and its report;
    a NetcError when its top-1 agreement is below the bound (unless `options.warn_only`)."""
    if options.scheme not in SCHEMES:
        raise error(f"unknown quantization `{options.scheme}`", hint=f"use {', '.join(SCHEMES)}")
    if options.method not in CALIBRATION_METHODS:
        raise error(
            f"unknown calibration method `{options.method}`",
            hint=f"use {', '.join(CALIBRATION_METHODS)}",
        )
    dtypes = {n.type.dtype for n in graph if isinstance(n.type, TensorType)}
    wide = sorted(dtypes & {"f16", "f64", "bf16"})
    if wide:
        raise error(
            f"int8 quantization takes a float32 model; model `{graph.name}` computes in "
            f"{', '.join(wide)}",
            hint="declare its inputs f32 (and drop the casts) to quantize it",
        )
    scheme = scheme_for(graph)
    data = read_calibration(options.calib, graph) if options.calib is not None else None
    if scheme == "static QDQ" and data is None:
        raise error(
            f"model `{graph.name}` has convolutions: its int8 form is calibrated on sample "
            f"inputs (static quantization)",
            hint="pass --calib data.npz: one array per input, samples along axis 0",
        )
    if scheme == "static QDQ":
        assert data is not None
        calibration, held_out = split(data)
        quantized = _quantizer_failure(graph.name, _static, model, calibration, options.method)
        how = f"{options.method} calibration on {_count(calibration)} samples, weights per channel"
        measured_on = f"the held-out {_count(held_out)} of {_count(data)} calibration samples"
    else:
        quantized = _quantizer_failure(graph.name, _dynamic, model)
        how = "activation scales at run time, weights per channel"
        if data is not None:
            held_out, measured_on = data, f"the {_count(data)} samples of {options.calib}"
        else:
            held_out = random_inputs(graph, RANDOM_SAMPLES)
            measured_on = f"{RANDOM_SAMPLES} seeded random inputs (pass --calib for real data)"
    int8, floats = node_counts(quantized)
    report = QuantizeReport(
        scheme=scheme,
        calibration=how,
        measured_on=measured_on,
        outputs=measure(model, quantized, held_out),
        quantized_nodes=int8,
        float_nodes=floats,
    )
    lowest = report.lowest_agreement()
    if lowest is not None and lowest < options.min_top1_agreement:
        message = (
            f"int8 quantization of model `{graph.name}` keeps the top-1 result of "
            f"{lowest:.2f} % of the samples, below the bound of "
            f"{options.min_top1_agreement:g} % (--min-top1-agreement)"
        )
        if not options.warn_only:
            raise error(
                message,
                notes=report.lines(),
                hint="calibrate on more or more typical data, try --calib-method entropy, or "
                "pass --warn-accuracy to write it anyway",
            )
        report = replace(report, warnings=(message,))
    return quantized, report


def _quantizer_failure(name: str, quantizer: Any, *args: Any) -> Any:
    """`quantizer(*args)`, with a failure inside ONNX Runtime's tools as a NetcError."""
    try:
        return quantizer(*args)
    except Exception as e:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise error(f"ONNX Runtime's quantizer failed on model `{name}`: {detail}") from None


def _count(data: Mapping[str, np.ndarray]) -> int:
    return int(next(iter(data.values())).shape[0])


_QUANTIZING = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear")


def node_counts(model: Any) -> tuple[int, int]:
    """(int8, float) counts of the compute nodes of `model` (quantize/dequantize nodes aside):
    an int8 node is an integer op of dynamic quantization, or a node that reads a dequantized
    value (ONNX Runtime runs a float op between QDQ pairs as its int8 kernel)."""
    dequantized = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    int8 = floats = 0
    for n in model.graph.node:
        if n.op_type in _QUANTIZING:
            continue
        integer = n.op_type.endswith("Integer") or n.op_type.startswith(
            ("QLinear", "DynamicQuantize")
        )
        if integer or any(i in dequantized for i in n.input):
            int8 += 1
        else:
            floats += 1
    return int8, floats


def random_inputs(graph: Graph, count: int, seed: int = 0) -> dict[str, np.ndarray]:
    """`count` seeded samples for every input: floats standard normal, integer ids below the
    smallest embedding vocabulary that reads them (or 8), symbolic dims other than the batch
    (the first) 8."""
    from .ir import numpy_dtype

    rng = np.random.default_rng(seed)
    vocab = min((n.attrs["vocab"] for n in graph if n.op == "embedding"), default=8)
    out = {}
    for name in graph.inputs:
        t = graph[name].tensor_type
        shape = [count] + [d if isinstance(d, int) else 8 for d in t.shape[1:]]
        if t.dtype in ("i32", "i64"):
            out[name] = rng.integers(0, vocab, shape).astype(numpy_dtype(t.dtype))
        else:
            out[name] = rng.normal(0.0, 1.0, shape).astype(numpy_dtype(t.dtype))
    return out


def measure(
    model: Any, quantized: Any, data: Mapping[str, np.ndarray], batch: int = 1
) -> tuple[OutputCost, ...]:
    """Each output's cost: both models run by ONNX Runtime (optimizer at all) on `data`, one
    sample at a time by default, as requests are served: dynamic quantization's activation
    scale is one per tensor over the whole batch, so a sample's result depends on the others
    run with it."""
    want = _run(model, data, batch)
    got = _run(quantized, data, batch)
    costs = []
    for name, f in want.items():
        q = got[name].astype(np.float64)
        f = f.astype(np.float64)
        err = float(np.max(np.abs(q - f))) if f.size else 0.0
        scale = float(np.max(np.abs(f))) if f.size else 0.0
        top1 = None
        rows = 0
        if f.ndim >= 2 and f.shape[-1] > 1 and want[name].dtype.kind == "f":
            same = np.argmax(q, axis=-1) == np.argmax(f, axis=-1)
            top1, rows = 100.0 * float(np.mean(same)), int(same.size)
        costs.append(OutputCost(name, err, err / scale if scale else err, top1, rows))
    return tuple(costs)


def _session(model: Any) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _run(model: Any, data: Mapping[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
    """The model's outputs on the samples of `data`, run `batch` samples at a time."""
    session = _session(model)
    names = [o.name for o in session.get_outputs()]
    parts: list[list[np.ndarray]] = [[] for _ in names]
    for feed in _batches(data, batch):
        for part, value in zip(parts, session.run(names, feed), strict=True):
            part.append(value)
    return {n: np.concatenate(p) for n, p in zip(names, parts, strict=True)}


def calibration_batch(count: int) -> int:
    """The largest run size up to CALIBRATION_BATCH that splits `count` samples evenly (1 for
    a prime count): equal runs, as the histogram calibrators need."""
    return next(b for b in range(min(CALIBRATION_BATCH, count), 0, -1) if count % b == 0)


def _batches(data: Mapping[str, np.ndarray], batch: int) -> list[dict[str, np.ndarray]]:
    count = _count(data)
    return [{k: a[i : i + batch] for k, a in data.items()} for i in range(0, count, batch)]


def _dynamic(model: Any) -> Any:
    """Dynamic int8: weights per channel, activations quantized at run time; matmuls of two
    activations (attention's scores and mixing) stay in float."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    prepared = _gemm_as_matmul(model)
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        out = Path(tmp) / "int8.onnx"
        quantize_dynamic(
            prepared,
            out,
            # Attention: --ort-contrib's fused self-attention, as QAttention. Not Gather: an
            # int8 embedding table is dequantized whole on every run (40 % slower at batch 1)
            op_types_to_quantize=["MatMul", "Attention", "LSTM"],
            per_channel=True,
            reduce_range=True,  # see _static
            weight_type=QuantType.QInt8,
            # a value after a contrib op may lack an inferred type: float, as netc emits
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": 1},
        )
        return _load(out)


def _static(model: Any, calibration: Mapping[str, np.ndarray], method: str) -> Any:
    """Static QDQ int8, calibrated by `method` on `calibration`: weights int8 per channel,
    activations uint8 (ONNX Runtime's u8s8 kernels, the fast ones on x86)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(_batches(calibration, calibration_batch(_count(calibration))))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    methods = {
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
        "minmax": CalibrationMethod.MinMax,
    }
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        out = Path(tmp) / "int8.onnx"
        cache = None
        if method == "entropy":  # ranges computed here, handed over as a calibration cache
            cache = Path(tmp) / "ranges.json"
            _entropy_ranges(model, Reader(), Path(tmp), cache)
        quantize_static(
            _copy(model),  # ONNX Runtime moves a ModelProto's weights out to a file in place
            out,
            None if cache else Reader(),
            calibration_cache_path=cache,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            # 7-bit weights: x86 without VNNI multiplies u8 x s8 with VPMADDUBSW, whose 16-bit
            # pairwise sums saturate with full-range weights (an MLP's error grew 25x)
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=methods[method],
            extra_options={"MatMulConstBOnly": True, "CalibTensorRangeSymmetric": False},
        )
        return _load(out)


def _entropy_ranges(model: Any, reader: Any, tmp: Path, cache: Path) -> None:
    """Entropy (KL divergence) calibration of a 512-bin histogram into 128 quantized bins (193
    candidate thresholds; TensorRT's 2048 bins took 8x longer), saved as a calibration cache.
    quantize_static's own entropy calibrator keeps 128 bins for both, which leaves a single
    candidate threshold, the full range: it is min-max calibration under another name."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, create_calibrator
    from onnxruntime.quantization.calibrate import save_tensors_data

    path = tmp / "float.onnx"
    onnx.save(model, str(path))
    calibrator = create_calibrator(
        path,
        None,
        augmented_model_path=str(tmp / "augmented.onnx"),
        calibrate_method=CalibrationMethod.Entropy,
        extra_options={"symmetric": False, "num_bins": 512, "num_quantized_bins": 128},
    )
    calibrator.collect_data(reader)
    save_tensors_data(calibrator.compute_data(), cache)


@contextlib.contextmanager
def _quiet() -> Any:
    """ONNX Runtime's quantization tools log advice on the root logger ("consider
    pre-processing": netc's models carry full shapes already) and print the calibrator's
    progress to stdout, which is the CLI's output."""
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(logging.NOTSET)


def _copy(model: Any) -> Any:
    out = type(model)()
    out.CopyFrom(model)
    return out


def _load(path: Path) -> Any:
    import onnx

    return onnx.load(str(path))


def _gemm_as_matmul(model: Any) -> Any:
    """A copy of `model` with every Gemm of a weight (no transposes, alpha = beta = 1) as MatMul
    + Add: ONNX Runtime's dynamic quantization handles MatMul, not Gemm."""
    from onnx import helper

    weights = {i.name for i in model.graph.initializer}
    out = type(model)()
    out.CopyFrom(model)
    nodes = []
    for node in out.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = all(
            attrs.get(k, d) == d
            for k, d in (("alpha", 1.0), ("beta", 1.0), ("transA", 0), ("transB", 0))
        )
        if node.op_type != "Gemm" or not plain or node.input[1] not in weights:
            nodes.append(node)
            continue
        if len(node.input) < 3 or not node.input[2]:
            nodes.append(helper.make_node("MatMul", node.input[:2], node.output, node.name))
            continue
        product = f"{node.name}/MatMul"
        nodes.append(helper.make_node("MatMul", node.input[:2], [product], product))
        nodes.append(helper.make_node("Add", [product, node.input[2]], node.output, node.name))
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    return out
