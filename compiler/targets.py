"""The targets netc compiles for: each one's artifact suffix, lowering module, pip extra and
options. A light module (no framework, no op table), so the CLI can list targets at start-up."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """A backend: its artifact's suffix (a file, or a folder for a SavedModel), its lowering
    module under `netc.backends`, the pip extra its framework comes with, and whether its
    artifact trains (compiled with the keep_training passes unless asked for inference)."""

    name: str
    suffix: str
    module: str
    extra: str | None = None
    trains: bool = False


TARGETS = {
    t.name: t
    for t in (
        Target("onnx", ".onnx", "to_onnx"),
        Target("keras", ".keras", "to_keras", extra="tf", trains=True),
        Target("tf", ".savedmodel", "to_tf", extra="tf"),
        Target("tvm", ".tvm", "to_tvm", extra="tvm"),
    )
}
# Options only some targets take: option -> the targets that take it.
TARGET_OPTIONS = {
    "io_layout": ("onnx",),
    "inference": ("keras",),
    "xla": ("tf",),
    "tvm_target": ("tvm",),
    "dims": ("tvm",),
}
