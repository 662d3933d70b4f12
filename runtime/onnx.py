"""Run ONNX models in ONNX Runtime: CUDA when a GPU is really there, quiet when it is not.

`onnx` and `onnxruntime` are imported inside the functions that need them. A model file is
checked before ONNX Runtime sees it, and inputs are checked against the model's signature.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from netc.source import NetcError, error

from .api import Signature
from .feed import FeedCheck

QUIET = 3  # ONNX Runtime log severity: errors only (4: fatal only, while probing providers)


@functools.lru_cache(maxsize=1)
def cuda_available() -> bool:
    """Whether ONNX Runtime can run on a CUDA GPU here: the provider is built in *and* a GPU
    is present (a device node, or `nvidia-smi -L` succeeds)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers() and gpu_present()


def gpu_present() -> bool:
    """Whether this machine has an NVIDIA GPU (a device node, or `nvidia-smi -L` lists one),
    without importing any framework."""
    if os.path.exists("/dev/nvidia0"):
        return True
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        done = subprocess.run([smi, "-L"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and b"GPU" in done.stdout


def read_model(path: str | Path) -> Any:
    """An `onnx.ModelProto` from `path`, or a NetcError saying why the file is not one."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise error(f"no such model file: {p}" if not p.exists() else f"{p} is not a file")
    try:
        model = onnx.load(str(p))
        onnx.checker.check_model(model)
    except Exception as e:  # protobuf's DecodeError, the checker's ValidationError, OSError...
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise error(f"{p} is not a valid ONNX model: {detail}") from None
    return model


_DTYPES = {1: "f32", 10: "f16", 11: "f64", 6: "i32", 7: "i64", 9: "bool", 16: "bf16"}


def _signature(values: Any, skip: Collection[str] = ()) -> tuple[Signature, ...]:
    out = []
    for v in values:
        if v.name in skip:
            continue
        t = v.type.tensor_type
        dims = tuple(
            d.dim_value
            if d.HasField("dim_value")
            else d.dim_param
            if d.HasField("dim_param")
            else None
            for d in t.shape.dim
        )
        out.append(Signature(v.name, _DTYPES.get(t.elem_type, f"onnx type {t.elem_type}"), dims))
    return tuple(out)


_ORT_DTYPES = {
    "tensor(float)": "f32",
    "tensor(float16)": "f16",
    "tensor(double)": "f64",
    "tensor(int32)": "i32",
    "tensor(int64)": "i64",
    "tensor(bool)": "bool",
    "tensor(bfloat16)": "bf16",
}


def _ort_signature(args: Any) -> tuple[Signature, ...]:
    """Signatures from ONNX Runtime's NodeArgs (an ORT-format model has no ModelProto)."""
    return tuple(
        Signature(
            a.name,
            _ORT_DTYPES.get(a.type, a.type),
            tuple(d if isinstance(d, (int, str)) else None for d in a.shape),
        )
        for a in args
    )


def _optimized_by(model: Any) -> str | None:
    """The ONNX Runtime version whose optimizer netc saved `model` after, or None."""
    from netc.backends.onnx_deploy import VERSION_KEY

    return next((p.value for p in model.metadata_props if p.key == VERSION_KEY), None)


def _check_optimized_by(meta: Mapping[str, str], name: str) -> None:
    """A saved optimized graph runs only under the ONNX Runtime that made it: another version's
    kernels and fused forms may differ (at "all", so may the CPU's NCHWc block size)."""
    import onnxruntime as ort

    from netc.backends.onnx_deploy import LEVEL_KEY, VERSION_KEY

    made_by = meta.get(VERSION_KEY)
    if made_by is not None and made_by != ort.__version__:
        raise error(
            f"model `{name}` holds ONNX Runtime {made_by}'s optimized graph "
            f"(level {meta.get(LEVEL_KEY, '?')}); this is ONNX Runtime {ort.__version__}",
            hint="save it again from the .net source with this ONNX Runtime (--ort-optimize)",
        )


# ONNX Runtime's own graph optimizer, on top of netc's passes (benchmarks compare them).
GRAPH_OPTIMIZATION = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


class OnnxSession:
    """An ONNX Runtime session behind netc's interface (named numpy arrays in and out).

    `model` is an `onnx.ModelProto`, or the path of an ORT-format file (`.ort`).
    `graph_optimization` None is "all", or "disable" for a model whose optimized graph netc
    saved (`netc.backends.onnx_deploy`): its optimizer already ran. `self.graph_optimization`
    is the level the session used."""

    def __init__(
        self,
        model: Any,
        *,
        name: str = "model",
        device: str = "auto",
        threads: int | None = None,
        inter_op_threads: int | None = None,
        graph_optimization: str | None = None,
    ):
        import onnxruntime as ort

        ort_file = isinstance(model, (str, Path))
        if not ort_file:
            _check_optimized_by({p.key: p.value for p in model.metadata_props}, name)
        saved = ort_file or _optimized_by(model) is not None
        if graph_optimization is None:
            graph_optimization = "disable" if saved else "all"
        if saved and device == "cuda":
            raise error(
                f"model `{name}` holds ONNX Runtime's graph optimized for the CPU",
                hint="load the .net source or the plain .onnx model for device cuda",
            )
        if saved:
            device = "cpu"  # the graph was optimized for the CPU provider's kernels
        if graph_optimization not in GRAPH_OPTIMIZATION:
            raise error(
                f"unknown ONNX Runtime optimization level `{graph_optimization}`",
                hint=f"use {', '.join(GRAPH_OPTIMIZATION)}",
            )

        if device == "cuda" and not cuda_available():
            cpu_build = "CUDAExecutionProvider" not in ort.get_available_providers()
            raise error(
                "device cuda: this ONNX Runtime is its CPU build (the package onnxruntime)"
                if cpu_build
                else "device cuda: no CUDA GPU is available to ONNX Runtime here",
                hint='on a GPU machine, install the CUDA build: pip install "netc[gpu]" (README, '
                '"On a GPU"); or use device "cpu"'
                if cpu_build
                else 'use device "cpu" (or "auto")',
            )
        use_cuda = device in ("auto", "cuda") and cuda_available()
        options = ort.SessionOptions()
        options.log_severity_level = QUIET
        options.graph_optimization_level = getattr(
            ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION[graph_optimization]
        )
        if threads is not None:
            options.intra_op_num_threads = threads
        if inter_op_threads is not None:
            options.inter_op_num_threads = inter_op_threads
            if inter_op_threads > 1:
                options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        providers = (["CUDAExecutionProvider"] if use_cuda else []) + ["CPUExecutionProvider"]
        # a GPU machine without CUDA's libraries logs its failure to load the provider at
        # error level; it falls back to the CPU, which is checked below
        ort.set_default_logger_severity(4 if use_cuda else QUIET)
        from netc.backends.onnx_deploy import CPU_SLOW_FUSIONS

        try:
            self._session = ort.InferenceSession(
                str(model) if ort_file else model.SerializeToString(),
                options,
                providers=providers,
                # fusions that slow the CPU down (SkipLayerNormalization) stay out of its graph
                disabled_optimizers=[] if use_cuda else list(CPU_SLOW_FUSIONS),
            )
        except Exception as e:
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            contrib = not ort_file and any(n.domain == "com.microsoft" for n in model.graph.node)
            raise error(
                f"ONNX Runtime cannot load model `{name}`: {detail}",
                # --ort-contrib's ops exist only in ONNX Runtime builds with its contrib ops
                hint="the model uses ONNX Runtime's com.microsoft contrib ops (--ort-contrib): "
                "run it in an ONNX Runtime that has them, or compile it without --ort-contrib"
                if contrib
                else None,
            ) from None
        finally:
            ort.set_default_logger_severity(QUIET)
        self.device = "cuda" if "CUDAExecutionProvider" in self._session.get_providers() else "cpu"
        if device == "cuda" and self.device != "cuda":
            raise error(
                "device cuda: ONNX Runtime could not start its CUDA provider",
                hint="check the CUDA and cuDNN libraries ONNX Runtime needs",
            )
        self.name = name
        self.graph_optimization = graph_optimization
        if ort_file:
            # no ModelProto to read: the metadata and signature as ONNX Runtime sees them
            _check_optimized_by(self._session.get_modelmeta().custom_metadata_map, name)
            self.inputs = _ort_signature(self._session.get_inputs())
            self.outputs = _ort_signature(self._session.get_outputs())
            return
        initializers = {i.name for i in model.graph.initializer}
        self.inputs = _signature(model.graph.input, initializers)
        self.outputs = _signature(model.graph.output)

    # What every run needs, made on the first (ONNX Runtime runs a small model in about 20 µs:
    # a per-call cost of 1 µs is 5 %, docs/benchmarks.md). Properties, as __init__ returns early.
    @functools.cached_property
    def _check(self) -> FeedCheck:
        return FeedCheck(self.name, self.inputs)

    @functools.cached_property
    def _output_names(self) -> list[str]:
        return [s.name for s in self.outputs]

    @functools.cached_property
    def _run_options(self) -> Any:
        import onnxruntime as ort

        quiet = ort.RunOptions()
        quiet.log_severity_level = 4  # a failure is raised as a NetcError: no log line too
        return quiet

    def run(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run on named numpy inputs (checked first); returns the named outputs."""
        feed = self._check(inputs)
        names = self._output_names
        try:
            results = self._session.run(names, feed, self._run_options)
        except NetcError:
            raise
        except Exception as e:  # a run-time failure inside ONNX Runtime (e.g. a bad index)
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise error(f"ONNX Runtime failed to run model `{self.name}`: {detail}") from None
        return dict(zip(names, results, strict=True))
