"""Run TVM artifacts: a MODEL.tvm folder netc wrote (or the in-memory `to_tvm.Artifact`, compiled
through the build cache) in the Relax VM behind netc's interface, and every IR value of a graph
as TVM computes it (`run_values`, for `netc verify -t tvm`).

TVM is imported when a session is made (`netc.backends.tvm`). The folder's netc.json carries
netc's own signature, so symbolic dims are checked by name as for every other backend.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from netc.ir import Graph
from netc.source import NetcError, error

from .api import Signature
from .feed import FeedCheck


def _tvm() -> Any:
    from netc.backends import tvm

    return tvm("tvm")


def cuda_available() -> bool:
    """Whether the installed TVM has a CUDA runtime and sees a GPU."""
    tvm = _tvm()
    return bool(tvm.runtime.enabled("cuda")) and bool(tvm.cuda(0).exist)


_pool: dict[str, int] = {}  # the size netc last gave TVM's thread pool in this process


def physical_cores() -> int:
    """The physical cores this process may run on, a core's hyper-threads counted once (Linux's
    CPU topology; elsewhere, or without it, the CPUs the process may use): the threads TVM's
    pool gets by default, as ONNX Runtime's intra-op pool does."""
    import os

    if not hasattr(os, "sched_getaffinity"):
        return os.cpu_count() or 1
    cpus = sorted(os.sched_getaffinity(0))
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            package = (topology / "physical_package_id").read_text().strip()
            core = (topology / "core_id").read_text().strip()
        except OSError:
            return len(cpus)
        cores.add((package, core))
    return max(1, len(cores))


def set_threads(threads: int) -> None:
    """The number of threads TVM's runtime thread pool uses (one pool per process: it applies
    to every TVM session here)."""
    import os

    if threads < 1:
        raise error(f"threads must be >= 1, got {threads}")
    # affinity mode -3 (kSpecifyThreadShareAllCore): `threads` workers sharing every core this
    # process may run on
    cpus = (
        [str(c) for c in sorted(os.sched_getaffinity(0))]
        if hasattr(os, "sched_getaffinity")
        else []
    )
    _tvm().get_global_func("runtime.config_threadpool")(-3, threads, cpus)
    _pool["threads"] = threads


def default_threads() -> None:
    """Size TVM's pool to the physical cores (`physical_cores`) unless it has its size already:
    from netc in this process (`set_threads`), or from TVM_NUM_THREADS or OMP_NUM_THREADS,
    which TVM reads itself. TVM's own default on x86 is half the logical CPUs (it assumes two
    hyper-threads a core): one thread on a 2-core virtual machine without them."""
    import os

    if _pool or os.environ.get("TVM_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS"):
        return
    set_threads(physical_cores())


def read_artifact(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """(the library in folder `path`, its netc.json), or a NetcError saying why `path` is not
    a TVM artifact netc wrote."""
    from netc.backends import to_tvm

    p = Path(path)
    if not p.exists():
        raise error(f"no such TVM artifact: {p}")
    if not (p / to_tvm.INFO).is_file() or not (p / to_tvm.LIBRARY).is_file():
        raise error(
            f"{p} is not a netc TVM artifact (it needs {to_tvm.LIBRARY} and {to_tvm.INFO})",
            hint="write one with `netc MODEL.net -t tvm`",
        )
    try:
        info = json.loads((p / to_tvm.INFO).read_text())
        info["functions"]["main"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise error(f"{p} has an unreadable {to_tvm.INFO}: {e}") from None
    if info.get("format") != to_tvm.FORMAT:
        raise error(
            f"{p} has netc TVM format {info.get('format')}, this netc reads {to_tvm.FORMAT}"
        )
    tvm = _tvm()
    if info.get("tvm") != tvm.__version__:
        raise error(
            f"{p} was compiled by TVM {info.get('tvm')}; the installed TVM is {tvm.__version__}",
            hint="compile the model again with this TVM",
        )
    return p / to_tvm.LIBRARY, info


def _signature(items: Any) -> tuple[Signature, ...]:
    return tuple(Signature(s["name"], s["dtype"], tuple(s["shape"])) for s in items)


def _device(device: str, target: Mapping[str, Any]) -> str:
    """The device a session runs on: the target's ("cuda" for a GPU target, else "cpu");
    `device` "cuda" needs a CUDA-enabled TVM and a library compiled for it."""
    from netc.backends import to_tvm

    gpu = str(target.get("kind")) in to_tvm.GPU_KINDS
    if device == "cuda" and not cuda_available():
        raise to_tvm.no_gpu("device cuda")
    if device == "cuda" and not gpu:
        raise error(
            f"device cuda: this library was compiled for the CPU ({json.dumps(dict(target))})",
            hint='compile it for the GPU with --tvm-target cuda, or use device "cpu"',
        )
    if device == "cpu" and gpu:
        raise error(f"device cpu: this library was compiled for {target.get('kind')}")
    return "cuda" if gpu else "cpu"


class TvmSession:
    """A compiled netc TVM module (a MODEL.tvm folder, or a `to_tvm.Artifact` compiled through
    the build cache) in the Relax VM, behind netc's interface: named numpy arrays in, named
    numpy arrays out. `function` picks one Relax function of a module holding several."""

    def __init__(
        self,
        source: Any,
        *,
        name: str = "model",
        device: str = "auto",
        threads: int | None = None,
        function: str = "main",
    ):
        from netc.backends import to_tvm

        tvm = _tvm()
        if isinstance(source, (str, Path)):
            lib, info = read_artifact(source)
        else:
            folder = to_tvm.library(source)
            lib, info = folder / to_tvm.LIBRARY, json.loads((folder / to_tvm.INFO).read_text())
        if function not in info["functions"]:
            raise error(f"the TVM module has no function `{function}`")
        entry = info["functions"][function]
        self.inputs = _signature(entry["inputs"])
        self.outputs = _signature(entry["outputs"])
        self.name = info.get("model") or name
        self._check = FeedCheck(self.name, self.inputs)
        self.target = info["target"]
        self.device = _device(device, self.target)
        if threads is not None:
            set_threads(threads)
        else:
            default_threads()
        dev = tvm.cuda(0) if self.device == "cuda" else tvm.cpu(0)
        try:
            # every library exports the same registration symbol: TVM warns on stderr when a
            # process loads a second one, which is normal here
            with to_tvm.quiet_stderr():
                module = tvm.runtime.load_module(str(lib))
            self._vm = tvm.relax.VirtualMachine(module, dev)
        except (RuntimeError, OSError) as e:
            raise error(f"TVM could not load {lib}: {_detail(e)}") from None
        self._function = self._vm[function]
        self._dev = dev
        self._tvm = tvm
        self._staging = threading.local()  # each thread's aligned copies of its inputs

    def _staged(self, name: str, array: np.ndarray) -> np.ndarray:
        """`array` itself when TVM can read it in place, else its copy in this thread's
        staging buffer for input `name` (64-byte aligned, kept while the shape and dtype
        stay): with a new buffer each call, the MLP's call at batch 1 took 20 µs more than the
        copy itself. A result that shares memory with an input is copied (`_owned`), so a
        later call's staging never changes an earlier result."""
        flags = array.flags
        if flags.c_contiguous and flags.writeable and array.ctypes.data % ALIGNMENT == 0:
            return array
        buffers = self._staging.__dict__
        buffer = buffers.get(name)
        if buffer is None or buffer.shape != array.shape or buffer.dtype != array.dtype:
            buffer = buffers[name] = _aligned_empty(array.shape, array.dtype)
        np.copyto(buffer, array)
        return buffer

    def run(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run on named numpy inputs (checked first); returns the named outputs."""
        tvm = self._tvm
        feed = self._check(inputs)
        try:
            if self.device == "cpu":  # the VM reads the arrays in place, and hands its own back
                arrays = [self._staged(s.name, feed[s.name]) for s in self.inputs]
                results = self._function(*(tvm.runtime.from_dlpack(a) for a in arrays))
                return {
                    s.name: _owned(np.from_dlpack(results[i]), arrays)
                    for i, s in enumerate(self.outputs)
                }
            args = [
                tvm.runtime.tensor(np.ascontiguousarray(feed[s.name]), self._dev)
                for s in self.inputs
            ]
            results = self._function(*args)
            return {s.name: results[i].numpy() for i, s in enumerate(self.outputs)}
        except NetcError:
            raise
        except Exception as e:  # a run-time check inside the VM (a shape it cannot take)
            raise error(f"TVM failed to run model `{self.name}`: {_detail(e)}") from None


# TVM takes a host array without a copy (DLPack) when it is C-contiguous, 64-byte aligned and
# writeable (numpy exports no read-only array by DLPack); a copy into such a buffer, and that
# exchange, cost a microsecond or two where tvm.runtime.tensor's copy took 25-60 and .numpy()
# 10-20 (measured on the MLP)
ALIGNMENT = 64


def _aligned_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialized C-contiguous array starting on a 64-byte boundary."""
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    raw = np.empty(nbytes + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def _owned(result: np.ndarray, inputs: list[np.ndarray]) -> np.ndarray:
    """A VM result as the caller keeps it: a copy where it is one of the caller's inputs (a
    model that returns an input unchanged), else the VM's own buffer (alive while the array
    is)."""
    return result.copy() if any(np.may_share_memory(result, a) for a in inputs) else result


def _detail(e: BaseException) -> str:
    from netc.backends.to_tvm import first_line

    return first_line(e)


# --- netc verify -----------------------------------------------------------------------------


def run_values(
    graph: Graph, weights: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray], device: str
) -> Any:
    """Every computed IR value as TVM gives it: one Relax function returning them all, compiled
    by netc's pipeline and run once. When that fails (a broken lowering), bisect for the
    longest prefix of values that does compile and run; the value after it is the one TVM
    fails to compute."""
    from netc.backends import to_tvm

    from .verify import SOURCES, Backend

    ran_on = _device(device, to_tvm.target_spec(None))  # the host CPU; "cuda" is an error here
    keys: list[tuple[str, int | None]] = []
    for node in graph.nodes:
        if node.op in SOURCES:
            continue
        if isinstance(node.type, tuple):
            keys.extend((node.name, i) for i in range(len(node.type)))
        else:
            keys.append((node.name, None))
    tensors = {k: to_tvm.value_key(k) for k in keys}
    if not keys:
        return Backend({}, tensors, ran_on)

    def run(prefix: list[tuple[str, int | None]]) -> dict[tuple[str, int | None], np.ndarray]:
        try:
            artifact = to_tvm.emit_functions({"main": (graph, weights)}, exposed={"main": prefix})
            session = TvmSession(artifact, device=ran_on)
            out = session.run({n: inputs[n] for n in graph.inputs})
        except NetcError as e:
            raise _Failed(e.diagnostics[0].message) from None
        return {k: out[to_tvm.value_key(k)] for k in prefix}

    try:
        return Backend(run(keys), tensors, ran_on)
    except _Failed as e:
        failure = e.detail
    ok, bad = 0, len(keys)  # the first `ok` values compute; the first `bad` do not
    values: dict[tuple[str, int | None], np.ndarray] = {}
    while bad - ok > 1:
        mid = (ok + bad) // 2
        try:
            values = run(keys[:mid])
            ok = mid
        except _Failed as e:
            bad, failure = mid, e.detail
    return Backend(values, tensors, ran_on, keys[ok], failure)


class _Failed(Exception):
    """TVM could not lower, compile or run a prefix of the values (`detail` says why)."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail
