"""Tuning for the TVM backend (`netc tune`): MetaSchedule searches schedules for the kernels
of netc's Relax pipeline (`optimize`'s fused PrimFuncs, the same ones `schedule` sees),
measuring candidates on this machine, and writes the best as a database. The database is kept
in the build cache under the artifact's key (same IR, weights, target, TVM and netc), so every
later build of the same model for the same target finds it (`saved_database`) and applies it
before netc's default schedules, which keep the kernels it has no record for.
"""

from __future__ import annotations

import inspect
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..files import atomic_write_dir
from ..source import error
from . import tvm
from .tvm_build import cache_dir, first_line, make_target, optimize

if TYPE_CHECKING:
    from .to_tvm import Artifact

# the files of MetaSchedule's JSON database (tvm.s_tir.meta_schedule.database.JSONDatabase)
DATABASE_FILES = ("database_workload.json", "database_tuning_record.json")
# per kernel: the tuned time, netc's default schedule's, and which one the database keeps
SUMMARY = "summary.json"
# progress(trials done, trials asked, seconds so far): what `tune` reports after each batch
Progress = Callable[[int, int, float], None]


def database_dir(artifact: Artifact) -> Path:
    """Where the tuning database of `artifact` is kept: the build cache's tvm-tuning/KEY."""
    return cache_dir().parent / "tvm-tuning" / artifact.key[:40]


def saved_database(artifact: Artifact) -> Any:
    """The database `netc tune` wrote for `artifact` (a MetaSchedule JSONDatabase), or None."""
    folder = database_dir(artifact)
    if not all((folder / name).is_file() for name in DATABASE_FILES):
        return None
    return _json_database(folder)


def _json_database(folder: Path) -> Any:
    from tvm.s_tir import meta_schedule as ms

    paths = [str(folder / name) for name in DATABASE_FILES]
    return ms.database.JSONDatabase(*paths, allow_missing=False)


# a TIR node through TVM's JSON serialization, which MetaSchedule uses to copy every module it
# searches and to send candidates to its builders: in a child process, as it may crash
_SERIALIZES = "import tvm; tvm.ir.save_json(tvm.tirx.IntImm('int32', 1))"


@cache
def check_serialization() -> None:
    """A NetcError when the installed TVM cannot serialize its IR, without which MetaSchedule
    cannot run: apache-tvm 0.27.0.post1 with apache-tvm-ffi 0.1.15.post2 crashes the process
    (a segmentation fault in ffi::ToJSONGraph) on any TIR node."""
    result = subprocess.run([sys.executable, "-c", _SERIALIZES], capture_output=True)
    if result.returncode == 0:
        return
    import tvm_ffi

    raise error(
        f"netc tune needs MetaSchedule, which cannot run with the installed apache-tvm "
        f"{tvm().__version__} and apache-tvm-ffi {tvm_ffi.__version__}: serializing TVM's IR "
        "(tvm.ir.save_json, which MetaSchedule does to copy and measure every candidate) "
        f"crashes the process (exit status {result.returncode})",
        hint='install an apache-tvm whose IR serializes (python -c "import tvm; '
        "tvm.ir.save_json(tvm.tirx.IntImm('int32', 1))\" must not crash); -t tvm builds "
        "without tuning, with netc's default schedules",
    )


def tune(
    artifact: Artifact,
    trials: int,
    *,
    progress: Progress | None = None,
    quiet: bool = False,
    seed: int = 0,
) -> Any:
    """Tune `artifact`'s kernels with MetaSchedule for `trials` measured candidates in all
    (shared among the kernels by TVM's gradient task scheduler), save the database in
    `database_dir(artifact)` (atomically) and return it. `quiet` silences TVM's own log."""
    if trials < 1:
        raise error(f"--trials must be >= 1, got {trials}")
    check_serialization()
    from tvm.s_tir import meta_schedule as ms

    target = make_target(artifact.target)
    if str(target.kind.name) != "llvm":
        raise error(f"netc tune measures on this machine's CPU; the target is {target.kind.name}")
    from netc.runtime.tvm import physical_cores, set_threads

    # candidates are measured with the threads a session gets by default
    n = physical_cores()
    set_threads(n)
    # MetaSchedule sizes its parallel loops by the target's core count, which it requires
    tuning_target = make_target({**artifact.target, "num-cores": n})
    module = optimize(artifact.module, target)
    tasks = ms.relax_integration.extract_tasks(module, tuning_target)
    if not tasks:
        raise error(f"model `{artifact.name}` has no kernel to tune")
    # MetaSchedule tiles loops of known extents only: a kernel over a symbolic dim fails its
    # search (a check in the trace replay), and would be tuned for no particular size anyway
    dims = [_symbolic_dims(t) for t in tasks]
    symbolic = sorted(set().union(*dims))
    tasks = [t for t, d in zip(tasks, dims, strict=True) if not d]
    if not tasks:
        fixed = " ".join(f"--dim {d}=SIZE" for d in symbolic)
        raise error(
            f"model `{artifact.name}` has no kernel of a fixed size to tune: its kernels run "
            f"over the symbolic dims {', '.join(symbolic)}, and MetaSchedule tunes kernels of "
            "known sizes",
            hint=f"tune for the size you deploy with {fixed}, and build with the same --dim",
        )
    folder = database_dir(artifact)
    with tempfile.TemporaryDirectory(prefix="netc-tune-") as work, _host_search(quiet, n):
        contexts, weights = _contexts(tasks, _search(trials / len(tasks)), seed, n)
        database = ms.database.JSONDatabase(work_dir=work)
        callbacks = list(ms.measure_callback.MeasureCallback.create("default"))
        if progress is not None:
            callbacks.append(_progress_callback(progress, trials))
        try:
            ms.tune.tune_tasks(
                tasks=contexts,
                task_weights=weights,
                work_dir=work,
                max_trials_global=trials,
                # each kernel gets a share of the first rounds (the scheduler then favours
                # the ones whose latency falls)
                num_trials_per_iter=max(1, min(64, trials // len(contexts))),
                builder=_in_process_builder(),
                runner=_in_process_runner(),
                database=database,
                cost_model=_cost_model(n),
                measure_callbacks=callbacks,
            )
        except (RuntimeError, ValueError) as e:
            raise error(f"TVM's tuning failed: {first_line(e)}") from None

        kernels = _against_defaults(tasks, database, tuning_target)

        def write(tmp: Path) -> None:
            kept = ms.database.JSONDatabase(*(str(tmp / name) for name in DATABASE_FILES))
            for kernel, record in kernels:
                if kernel["kept"]:
                    workload = kept.commit_workload(record.workload.mod)
                    kept.commit_tuning_record(
                        ms.database.TuningRecord(
                            record.trace,
                            workload,
                            record.run_secs,
                            record.target,
                            record.args_info,
                        )
                    )
            summary = {"trials": trials, "kernels": [kernel for kernel, _ in kernels]}
            (tmp / SUMMARY).write_text(json.dumps(summary, indent=1))

        folder.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_dir(folder, write)
    return _json_database(folder)


def _against_defaults(tasks: list[Any], database: Any, target: Any) -> list[tuple[dict, Any]]:
    """Per kernel: (its best tuned time against netc's default schedule measured the same
    way, as MetaSchedule's builder and runner do, here in this process; its best record).
    `kept` when the tuned one is faster, so that a tuned build is never slower than netc's on
    a kernel (a few trials of a random search often are)."""
    from tvm.s_tir import meta_schedule as ms

    from .tvm_schedules import cpu, schedule_function

    info = cpu(target)
    out = []
    for task in tasks:
        mod = task.dispatched[0]
        best = database.query_tuning_record(mod, target, "main")
        if best is None or not best.run_secs:
            continue
        tuned = _mean(best.run_secs)
        default = None
        scheduled = schedule_function(mod["main"], info) if info is not None else None
        if scheduled is not None:
            try:
                alone = type(mod)({"main": scheduled})
                path = _build(alone, target)
                # the weights as the kernel reads them, already repacked (as MetaSchedule's)
                args = tuple(a.as_json() for a in ms.arg_info.ArgInfo.from_entry_func(alone, True))
                default = _mean(_measure(path, "cpu", args))
                shutil.rmtree(Path(path).parent, ignore_errors=True)
            except Exception:  # noqa: BLE001 - a default that does not build: tuned wins
                default = None
        summary = {
            "kernel": task.task_name,
            "tuned_us": tuned * 1e6,
            "default_us": None if default is None else default * 1e6,
            "kept": default is None or tuned < default,
        }
        out.append((summary, best))
    return out


def _build(mod: Any, target: Any) -> str:
    """A kernel built and exported as MetaSchedule's LocalBuilder does (its weight-layout
    rewrite blocks taken out), into a temporary folder of its own; the library's path."""
    from tvm.s_tir.meta_schedule.builder.local_builder import default_build, default_export

    return str(default_export(default_build(mod, target, None)))


def _measure(path: str, device: str, args: tuple) -> list[float]:
    """Seconds per run of a built kernel on random arguments, as MetaSchedule's LocalRunner
    measures it (its own worker function, called in this process)."""
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.runner.local_runner import _worker_func

    config = ms.runner.EvaluatorConfig._normalized(None)
    return [float(x) for x in _worker_func(None, None, None, config, 1, path, device, args)]


def _mean(values: Any) -> float:
    return sum(float(x) for x in values) / len(values)


def tuning_summary(artifact: Artifact) -> dict[str, Any] | None:
    """What `netc tune` found for `artifact`: per kernel the best tuned time, netc's default
    schedule's, and whether the tuned one was kept; None before any tuning."""
    try:
        return json.loads((database_dir(artifact) / SUMMARY).read_text())
    except (OSError, ValueError):
        return None


def _contexts(tasks: list[Any], strategy: Any, seed: int, n: int) -> tuple[list, list]:
    """MetaSchedule's tune contexts of `tasks`, as `extracted_tasks_to_tune_contexts` makes
    them but with one quiet logger of netc's: MetaSchedule's own loggers are made by
    `logging.config.dictConfig`, which closes every handler of the process (pytest's capture
    among them) and points new ones at whatever sys.stdout is at that moment."""
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.utils import fork_seed

    _import_tensor_intrinsics()  # what a TuneContext imports first, at a fraction of the cost
    logger = logging.getLogger("netc.tvm_tune")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    contexts, weights = [], []
    for task, state in zip(tasks, fork_seed(seed, n=len(tasks)), strict=True):
        context = ms.TuneContext(
            mod=task.dispatched[0],
            target=task.target,
            space_generator="post-order-apply",
            search_strategy=strategy,
            task_name=task.task_name,
            logger=logger,
            rand_state=state,
            num_threads=n,
        )
        contexts.append(context.clone())
        weights.append(task.weight)
    return contexts, weights


def _import_tensor_intrinsics() -> None:
    """Import `tvm.s_tir.tensor_intrin` (MetaSchedule's TuneContext does, first thing) with
    TVMScript's decorators given a shallow `inspect.stack`. The module parses ~500 TVMScript
    functions as it is imported, and each decorator takes `inspect.stack()`, which reads the
    source lines of every frame of the stack; on frames of frozen modules that search scans
    all of `sys.modules`. It took 32 s in a bare process, 60-130 s under pytest with
    TensorFlow loaded (`netc tune` of a tiny model: 135 s of its 140). The decorators read
    only frames[2]'s source line and the deeper frames' `frame` (`is_defined_in_class`,
    `resolve_closure_vars`): the shallow stack gives those the same."""
    if "tvm.s_tir.tensor_intrin" in sys.modules:
        return
    from tvm.relax.script.parser import entry as relax_entry
    from tvm.script.parser.ir import entry as ir_entry
    from tvm.tirx.script.parser import entry as tir_entry

    modules = (relax_entry, ir_entry, tir_entry)
    saved = [m.inspect for m in modules]
    for m in modules:
        m.inspect = _SHALLOW_INSPECT
    try:
        import tvm.s_tir.tensor_intrin  # noqa: F401
    finally:
        for m, original in zip(modules, saved, strict=True):
            m.inspect = original


class _ShallowInspect:
    """The `inspect` module, but `stack()` reads source lines for the nearest 3 frames only."""

    def __getattr__(self, name: str) -> Any:
        return getattr(inspect, name)

    @staticmethod
    def stack(context: int = 1) -> list[inspect.FrameInfo]:
        frames: list[inspect.FrameInfo] = []
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            if len(frames) < 3:
                info = inspect.getframeinfo(frame, context)
                frames.append(inspect.FrameInfo(frame, *info, positions=info.positions))
            else:
                where = (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
                frames.append(inspect.FrameInfo(frame, *where, None, None, positions=None))
            frame = frame.f_back
        return frames


_SHALLOW_INSPECT = _ShallowInspect()


def _search(per_kernel: float) -> Any:
    """MetaSchedule's evolutionary search, its population sized to the trials each kernel
    gets: the default (512 candidates evolved 4 times, seconds per round on two cores) for a
    real tuning run, a smaller one when there are only a few trials to choose."""
    from tvm.s_tir import meta_schedule as ms

    population = int(min(512, max(32, 16 * per_kernel)))
    return ms.search_strategy.EvolutionarySearch(
        population_size=population,
        init_min_unmeasured=min(50, population // 2),
        genetic_num_iters=4 if population >= 256 else 2,
    )


def _symbolic_dims(task: Any) -> set[str]:
    """The symbolic dims a MetaSchedule task's kernel runs over (its buffers' shapes)."""
    from tvm import tirx

    out = set()
    for func in task.dispatched[0].functions.values():
        for param in func.params:  # buffers (with a shape) and scalars
            shape = getattr(param, "shape", None) or ()
            out |= {str(d) for d in shape if not isinstance(d, tirx.IntImm)}
    return out


def _in_process_builder() -> Any:
    """A MetaSchedule builder compiling each candidate in this process, as LocalBuilder's
    workers would (its own build and export functions: the weight-layout rewrite blocks taken
    out, each library in a temporary folder of its own, which the runner's callback removes).
    LocalBuilder sends candidates to worker processes, which with apache-tvm 0.27 never answer
    (each candidate killed after its 30 s timeout)."""
    from tvm.ir.utils import derived_object
    from tvm.s_tir import meta_schedule as ms

    @derived_object
    class InProcess(ms.builder.PyBuilder):
        def build(self, build_inputs: list[Any]) -> list[Any]:
            results = []
            for candidate in build_inputs:
                try:
                    path = _build(candidate.mod, candidate.target)
                    results.append(ms.builder.BuilderResult(path, None))
                except Exception as e:  # a candidate that does not build is a result
                    results.append(ms.builder.BuilderResult(None, first_line(e)))
            return results

    return InProcess()


def _in_process_runner() -> Any:
    """A MetaSchedule runner measuring each candidate in this process, with LocalRunner's
    own worker function (load the library, random arguments, TVM's time evaluator): its pool
    worker, another process importing TVM, took seconds per batch here."""
    from tvm.ir.utils import derived_object
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.runner.local_runner import LocalRunnerFuture

    @derived_object
    class InProcess(ms.runner.PyRunner):
        def run(self, runner_inputs: list[Any]) -> list[Any]:
            futures = []
            for one in runner_inputs:
                args = tuple(info.as_json() for info in one.args_info)
                try:
                    costs = _measure(str(one.artifact_path), str(one.device_type), args)
                    futures.append(LocalRunnerFuture(res=costs, error_message=None))
                except Exception as e:  # a candidate that fails to run is a result
                    futures.append(LocalRunnerFuture(res=None, error_message=first_line(e)))
            return futures

    return InProcess()


def _cost_model(n: int) -> Any:
    """MetaSchedule's XGBoost cost model when xgboost is installed, else random (candidates
    chosen by the evolutionary search alone, which needs more trials for the same result)."""
    from tvm.s_tir import meta_schedule as ms

    try:
        import xgboost  # noqa: F401
    except ImportError:
        return ms.cost_model.RandomModel()
    return ms.cost_model.XGBModel(num_tuning_cores=n)


def _progress_callback(progress: Progress, trials: int) -> Any:
    """A MetaSchedule measure callback calling `progress` after each batch of candidates."""
    from tvm.ir.utils import derived_object
    from tvm.s_tir import meta_schedule as ms

    start = time.perf_counter()
    done = [0]

    @derived_object
    class Report(ms.measure_callback.PyMeasureCallback):
        def apply(self, *args: Any) -> None:
            done[0] += len(args[2])  # (scheduler, task id, candidates, builds, runs)
            progress(min(done[0], trials), trials, time.perf_counter() - start)

    return Report()


@contextmanager
def _host_search(quiet: bool, cores: int) -> Iterator[None]:
    """What MetaSchedule's search needs of the host: its CPU count, which it asks psutil for
    (not a dependency of apache-tvm, nor of netc), given as `cores` (the physical cores the
    candidates are measured on); and its Python logging, silenced when `quiet`."""
    import tvm_ffi
    from tvm.s_tir.meta_schedule import utils

    def count(logical: bool = True) -> int:
        return cores

    saved = utils._cpu_count_impl
    tvm_ffi.register_global_func("s_tir.meta_schedule.cpu_count", count, override=True)
    utils._cpu_count_impl = count
    logger = logging.getLogger("tvm.s_tir.meta_schedule")
    level = logger.level
    if quiet:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        utils._cpu_count_impl = saved
        tvm_ffi.register_global_func("s_tir.meta_schedule.cpu_count", saved, override=True)
        logger.setLevel(level)
