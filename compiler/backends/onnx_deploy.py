"""An emitted ONNX model made ready to deploy: ONNX Runtime's optimized graph saved ahead of
time, so that a deployed session skips the optimizer at load (docs/onnx.md, "Session start"),
as an optimized ONNX model (`.onnx`) or ONNX Runtime's own ORT format (`.ort`), marked in its
metadata with the level and the ONNX Runtime version that made it. `onnxruntime` is imported
only when a model is optimized.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..files import atomic_write
from ..source import error

if TYPE_CHECKING:
    from ..ir import Graph
    from ..quantize import QuantizeOptions, QuantizeReport

LEVELS = ("basic", "extended", "all")  # ONNX Runtime's optimizer levels worth saving
LEVEL_KEY = "netc.ort_optimized"  # metadata: the level the graph was optimized at
VERSION_KEY = "netc.onnxruntime"  # metadata: the ONNX Runtime version that optimized it
# ONNX Runtime fusions that make the CPU slower, left out of every CPU session netc makes and of
# the graphs it saves: ONNX Runtime 1.32's CPU SkipLayerNormalization kernel (what it fuses a
# residual Add and the LayerNormalization after it into) takes 3.5-4.4x the time of the Add and
# LayerNormalization kernels it replaces ([1, 128, 128]: 107 us against 31; [8, 128, 768]:
# 4.7 ms against 1.3; one thread, docs/onnx.md): the Transformer example runs 10-15 % faster
# without it. Its CUDA kernel is not slower, and CUDA sessions keep it.
CPU_SLOW_FUSIONS = ("SkipLayerNormFusion",)
_LEVEL_NAMES = {
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


def is_ort_format(path: str | Path) -> bool:
    """Whether `path` names an ORT-format model (by its suffix)."""
    return Path(path).suffix == ".ort"


def save_optimized(model: Any, path: str | Path, level: str = "all") -> None:
    """Write `model` (an `onnx.ModelProto` netc emitted) as ONNX Runtime's CPU session optimizes
    it at `level` (without `CPU_SLOW_FUSIONS`), atomically: an ONNX model (byte-identical for
    the same model), or for a `.ort` path the ORT format (whose bytes ONNX Runtime orders
    differently on every save). At "all" the graph holds NCHWc layout nodes tuned to this CPU's
    vector width: deploy it on the same kind of machine and ONNX Runtime version (another
    version is refused at load)."""
    import onnxruntime as ort

    if level not in LEVELS:
        raise error(
            f"unknown ONNX Runtime optimization level `{level}`", hint=f"use {', '.join(LEVELS)}"
        )
    marked = type(model)()
    marked.CopyFrom(model)
    for key, value in ((LEVEL_KEY, level), (VERSION_KEY, ort.__version__)):
        entry = next((p for p in marked.metadata_props if p.key == key), None)
        if entry is None:
            entry = marked.metadata_props.add()
            entry.key = key
        entry.value = value
    data = marked.SerializeToString(deterministic=True)

    def write(tmp: Path) -> None:
        options = ort.SessionOptions()
        options.log_severity_level = 3  # the "hardware specific optimizations" warning at all
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVEL_NAMES[level])
        options.optimized_model_filepath = str(tmp)
        fmt = "ORT" if is_ort_format(path) else "ONNX"
        options.add_session_config_entry("session.save_model_format", fmt)
        try:
            ort.InferenceSession(
                data,
                options,
                providers=["CPUExecutionProvider"],
                disabled_optimizers=list(CPU_SLOW_FUSIONS),
            )
        except Exception as e:
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise error(f"ONNX Runtime cannot load model `{model.graph.name}`: {detail}") from None

    atomic_write(path, write)


def save(
    model: Any,
    path: str | Path,
    *,
    ort_optimize: str | None = None,
    graph: Graph | None = None,
    quantize: QuantizeOptions | None = None,
) -> QuantizeReport | None:
    """Save an emitted model: as it is (`to_onnx.save`), or optimized by ONNX Runtime at level
    `ort_optimize`, as an ONNX model (the ORT format is refused: its bytes are not the same
    from one save to the next, and it loads slower here; docs/onnx.md). With `quantize`, the
    int8 model of `graph`'s `model` is saved (netc.quantize), and its report returned; a model
    refused for its accuracy leaves no file."""
    from .to_onnx import save as save_plain

    if is_ort_format(path):
        raise error(
            f"netc does not write ONNX Runtime's ORT format ({path}): ONNX Runtime serializes "
            f"it differently each time, and the optimized ONNX model loads faster",
            hint=f"write {Path(path).with_suffix('.onnx')} with --ort-optimize all",
        )
    report = None
    if quantize is not None:
        from ..quantize import quantize as to_int8

        assert graph is not None, "quantization needs the model's graph"
        model, report = to_int8(model, graph, quantize)
    if ort_optimize is None:
        save_plain(model, path)
    else:
        save_optimized(model, path, ort_optimize)
    return report
