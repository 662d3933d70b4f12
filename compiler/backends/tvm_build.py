"""The TVM backend's build: targets (`target_spec`, `make_target`), netc's Relax pipeline
(`pipeline`, `optimize`), where schedules are applied (`schedule`: a tuning database's, then
netc's default ones from `tvm_schedules`), the compile (`build`), and the build cache
(`library`) that artifact folders (`save`) and sessions are made from.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..files import atomic_write_dir
from ..source import error
from . import tvm

if TYPE_CHECKING:
    from .to_tvm import Artifact

LIBRARY = "model.so"  # the compiled module in an artifact folder (and in a cache entry)
INFO = "netc.json"  # its signature and build settings
GPU_KINDS = ("cuda", "rocm", "metal", "vulkan", "opencl")

# --- targets ---------------------------------------------------------------------------------


# LLVM's optimization level for the default target: TVM's own, 3. The default schedules'
# register tiles rely on it (unrolled rows, accumulators kept in registers); level 0 was the
# default while kernels were unscheduled, where it compiled 4-8x faster at the same speed
# (docs/tvm.md, "Targets").
DEFAULT_LLVM_OPT_LEVEL = 3


def host_target() -> dict[str, Any]:
    """This machine's CPU as a TVM target: LLVM with the host's own instruction set, at netc's
    default LLVM optimization level (`DEFAULT_LLVM_OPT_LEVEL`)."""
    cpu = tvm().target.codegen.llvm_get_system_cpu()
    return {"kind": "llvm", "mcpu": cpu, "opt-level": DEFAULT_LLVM_OPT_LEVEL}


def target_spec(text: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """A TVM target as a dict: None is the host CPU; a dict, a JSON object, a kind name
    ("llvm", "cuda") or TVM's older command-line form ("llvm -mcpu=skylake-avx512")."""
    if text is None or text == "host":
        return host_target()
    if isinstance(text, Mapping):
        return dict(text)
    text = text.strip()
    if text.startswith("{"):
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as e:
            raise error(f"--tvm-target is not valid JSON: {e.msg} at column {e.colno}") from None
        if not isinstance(spec, dict) or "kind" not in spec:
            raise error('--tvm-target needs a JSON object with a "kind"', hint=_TARGET_HINT)
        return spec
    kind, *flags = text.split()
    spec = {"kind": kind}
    for flag in flags:  # "-mcpu=x", "-num-cores=4", "-mattr=+avx2,+fma"
        name, eq, value = flag.lstrip("-").partition("=")
        if not eq or not flag.startswith("-"):
            raise error(f"--tvm-target: cannot read `{flag}`", hint=_TARGET_HINT)
        spec[name] = (
            int(value) if value.isdigit() else value.split(",") if name == "mattr" else value
        )
    return spec


_TARGET_HINT = (
    'give a kind ("llvm", "cuda") or a JSON object such as '
    '\'{"kind": "llvm", "mcpu": "skylake-avx512"}\''
)


def make_target(spec: Mapping[str, Any]) -> Any:
    """The `tvm.target.Target` of `spec`; a NetcError when TVM refuses it or when it needs a
    GPU runtime the installed TVM lacks (the PyPI wheel has LLVM only)."""
    t = tvm()
    kind = str(spec.get("kind", ""))
    if kind in GPU_KINDS and not t.runtime.enabled(kind):
        raise no_gpu(f"the tvm target `{kind}`", kind)
    try:
        return t.target.Target(dict(spec))
    except (ValueError, RuntimeError, TypeError) as e:
        raise error(f"TVM refuses the target {json.dumps(dict(spec))}: {first_line(e)}") from None


def no_gpu(what: str, kind: str = "cuda") -> Exception:
    """The error for a GPU (of TVM target kind `kind`) the installed TVM cannot compile for
    or run on."""
    runtime = {"cuda": "CUDA", "rocm": "ROCm", "metal": "Metal"}.get(kind, kind.capitalize())
    return error(
        f"{what} needs a TVM built with {runtime}; the installed apache-tvm "
        f"{tvm().__version__} has no {runtime} (the PyPI wheel is built for CPUs, with LLVM "
        "only)",
        hint=f"build TVM from source with USE_{kind.upper()}=ON (and USE_LLVM) and install its "
        "Python package in place of apache-tvm, or run on the CPU (the default target)",
    )


# --- the pipeline ----------------------------------------------------------------------------


def pipeline(target: Any) -> list[Any]:
    """The Relax passes netc runs before the schedules, in order (tvm.compile on a CPU target
    runs none of them: its kernels would be unfused, with every weight transform left at run
    time). Its result is what `schedule` schedules and what `netc tune` tunes."""
    relax = tvm().relax
    return [
        relax.transform.CanonicalizeBindings(),  # the aliases rules leave (dropout, identities)
        relax.transform.FastMathTransform(),  # exp, tanh, erf, softmax: vectorizable forms
        relax.transform.LegalizeOps(),  # every Relax op -> a TIR PrimFunc (topi)
        relax.transform.AnnotateTIROpPattern(),  # elementwise, injective, reduction, opaque
        relax.transform.FoldConstant(),  # weight reshapes and flips run now, not per call
        relax.transform.FuseOps(),  # conv/matmul + bias + activation (+ residual): one group
        relax.transform.FuseTIR(),  # ... and one PrimFunc per group
        relax.transform.DeadCodeElimination(),  # the PrimFuncs fusion replaced
    ]


def optimize(module: Any, target: Any) -> Any:
    """`module` after netc's pipeline (`pipeline`) for `target`: fused, folded, legalized, with
    the weights each PrimFunc takes marked (a schedule may repack them) and TOPI's
    `schedule_rule` annotations dropped (`drop_schedule_rules`)."""
    from .tvm_schedules import drop_schedule_rules, mark_weights

    t = tvm()
    with t.target.Target(target) if not isinstance(target, t.target.Target) else target:
        return drop_schedule_rules(mark_weights(t.transform.Sequential(pipeline(target))(module)))


def schedule(module: Any, target: Any, database: Any = None, *, defaults: bool = True) -> Any:
    """Where schedules are applied to the fused PrimFuncs: the tuned ones a MetaSchedule
    `database` holds (`tvm.s_tir.meta_schedule.Database`), then netc's default CPU schedules
    (`tvm_schedules`) on every other one unless `defaults` is False (TVM's unscheduled loop
    nests: for comparisons). The weights a schedule repacks are repacked now (constant
    folding), not per call."""
    from . import tvm_schedules

    relax = tvm().relax
    with target:
        if database is not None:
            with database:
                module = relax.transform.MetaScheduleApplyDatabase(enable_warning=False)(module)
        if defaults:
            module = tvm_schedules.apply(module, target)
        module = tvm_schedules.split_repacking(module)  # a repacking -> its own PrimFunc
        return tvm().transform.Sequential(
            [
                relax.transform.FoldConstant(),  # ... run on the weights at compile time
                relax.transform.DeadCodeElimination(),
            ]
        )(module)


def build(module: Any, target: Any, database: Any = None, *, defaults: bool = True) -> Any:
    """Compile a Relax module for `target`: netc's pipeline, the schedules (`schedule`), then
    TVM's lowering to the VM and LLVM (`relax.build`); returns the `relax.Executable`."""
    t = tvm()
    target = target if isinstance(target, t.target.Target) else make_target(target)
    module = schedule(optimize(module, target), target, database, defaults=defaults)
    with target:  # TVM's own lowering to the VM: memory planning, shape functions, ...
        module = t.relax.get_pipeline("default")(module)
    return t.relax.build(_ordered_shape_functions(module), target, relax_pipeline=None)


_SLOT = re.compile(r"\[T\.int64\((\d+)\)\]")


def _ordered_shape_functions(module: Any) -> Any:
    """`module` with the stores of each shape function (the host code computing symbolic
    shapes into the VM's shape heap) in slot order. TVM emits them in the order of a pointer-
    keyed map, which changes from process to process, and with it the library's bytes; they
    are independent (each computes one slot from the slots of the symbolic variables, which
    the VM fills), and a function where one reads another's slot is left as it is."""
    tirx = tvm().tirx
    for gv, func in list(module.functions.items()):
        if not isinstance(func, tirx.PrimFunc) or not gv.name_hint.startswith("shape_func"):
            continue
        body = func.body
        stores = list(body.seq) if isinstance(body, tirx.SeqStmt) else []
        slots = [_slot(s) for s in stores]
        if not stores or None in slots:
            continue
        written = {k for k in slots if k is not None}
        if any(int(k) in written for s in stores for k in _SLOT.findall(str(s.value))):
            continue
        ordered = sorted(zip(slots, stores, strict=True), key=lambda pair: pair[0] or 0)
        module[gv] = func.with_body(tirx.SeqStmt([store for _, store in ordered]))
    return module


def _slot(stmt: Any) -> int | None:
    """The shape-heap slot a store writes (H[k] with k a constant), else None."""
    tirx = tvm().tirx
    if not isinstance(stmt, tirx.BufferStore) or len(stmt.indices) != 1:
        return None
    index = stmt.indices[0]
    return int(index.value) if isinstance(index, tirx.IntImm) else None


# --- the library and its cache ---------------------------------------------------------------


def cache_dir() -> Path:
    """Where compiled libraries are kept by key: $NETC_CACHE_DIR/tvm, else the XDG cache
    ($XDG_CACHE_HOME/netc/tvm, ~/.cache/netc/tvm)."""
    root = os.environ.get("NETC_CACHE_DIR")
    if root:
        return Path(root) / "tvm"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "netc" / "tvm"


def library(artifact: Artifact, database: Any = None, *, defaults: bool = True) -> Path:
    """The folder holding `artifact` compiled (model.so and netc.json): its cache entry, built
    now unless an earlier run built the same key (same IR, weights, target, TVM and netc, and
    the tuning `database`'s records; by default the one `netc tune` saved for it, if any:
    `tvm_tune.saved_database`). `defaults=False` builds without netc's default
    schedules (TVM's loop nests as legalized: for comparisons), its own cache entry."""
    if database is None and defaults:  # what `netc tune` wrote for this very build, if any
        from .tvm_tune import saved_database

        database = saved_database(artifact)
    key = artifact.key if database is None else _tuned_key(artifact.key, database)
    if not defaults:
        key = hashlib.sha256(f"{key}\0unscheduled".encode()).hexdigest()
    folder = cache_dir() / key[:40]
    if _complete(folder, key):
        return folder
    executable = build(artifact.module, make_target(artifact.target), database, defaults=defaults)
    info = {**artifact.info(), "key": key}

    def write(tmp: Path) -> None:
        _export(executable, tmp / LIBRARY)
        (tmp / INFO).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")

    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_dir(folder, write)
    except OSError as e:
        raise error(
            f"cannot write the TVM build cache at {folder.parent}: {e.strerror or e}",
            hint="set NETC_CACHE_DIR to a writable folder",
        ) from None
    return folder


def _tuned_key(key: str, database: Any) -> str:
    import tvm_ffi

    # each record as its kernel's hash and its schedule's trace as Python (a record's as_json
    # has no JSON for the IndexMap of a layout rewrite)
    records = [
        f"{tvm_ffi.structural_hash(r.workload.mod)}:" + "\n".join(r.trace.as_python())
        for r in database.get_all_tuning_records()
    ]
    return hashlib.sha256((key + "\0" + "\n".join(sorted(records))).encode()).hexdigest()


def _complete(folder: Path, key: str) -> bool:
    try:
        info = json.loads((folder / INFO).read_text())
    except (OSError, ValueError):
        return False
    return info.get("key") == key and (folder / LIBRARY).is_file()


def _export(executable: Any, path: Path) -> None:
    """Write the executable as a shared library (TVM links it with the system's C compiler);
    TVM's C++ side logs a warning per VM scope it saves, silenced here."""
    with quiet_stderr():
        try:
            executable.export_library(str(path))
        except (RuntimeError, OSError) as e:
            raise error(
                f"TVM could not write the compiled library: {first_line(e)}",
                hint="TVM links the library with the system's C compiler (cc or g++)",
            ) from None


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (where TVM's C++ side logs) inside a `with` block."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def save(artifact: Artifact, path: str | Path, database: Any = None) -> None:
    """Write `artifact` compiled as the folder `path` (MODEL.tvm/: model.so, the library the
    Relax VM loads, and netc.json, its signature and build settings), atomically: a temporary
    folder beside it, swapped in when complete."""
    path = Path(path)
    _check_replaceable(path)
    built = library(artifact, database)

    def write(tmp: Path) -> None:
        for name in (LIBRARY, INFO):
            shutil.copyfile(built / name, tmp / name)

    atomic_write_dir(path, write)


def _check_replaceable(path: Path) -> None:
    """Refuse to replace a folder that holds something other than a netc TVM artifact."""
    if path.is_dir() and any(path.iterdir()) and not (path / INFO).is_file():
        raise error(
            f"{path} is a folder that is not a netc TVM artifact: netc does not replace it",
            hint="pick another output path with -o",
        )
    if path.exists() and not path.is_dir():
        raise error(f"{path} exists and is not a folder", hint="pick another output path with -o")


def first_line(e: BaseException) -> str:
    """What an exception from TVM says, without its C++ backtrace."""
    lines = [s.strip() for s in str(e).splitlines()]
    said = [s for s in lines if s and not s.startswith(("File ", "Traceback", "note:"))]
    return said[-1] if said else type(e).__name__
