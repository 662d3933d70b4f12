"""`netc tune`: MetaSchedule tuning of a model's kernels for the TVM target (netc.backends.
tvm_tune). The database it writes is found by every later `-t tvm` build of the same model,
weights and target; kernels it has no record for keep netc's default schedules."""

from __future__ import annotations

import click

from .common import (
    _level_option,
    _load,
    _model_options,
    _parse_dims,
    _seed_option,
    _sized,
    _start,
    _weights_option,
)


@click.command()
@_model_options
@click.option(
    "--trials",
    type=click.IntRange(1),
    default=64,
    show_default=True,
    help="Candidate schedules measured in all, shared among the kernels by TVM's task "
    "scheduler (a few hundred per heavy kernel to approach a tuned library).",
)
@click.option(
    "--tvm-target",
    metavar="TARGET",
    default=None,
    help="The TVM target, as for -t tvm (a CPU target: candidates run on this machine); "
    "default this machine's CPU.",
)
@click.option(
    "--dim",
    "dims",
    multiple=True,
    metavar="SYMBOL=SIZE",
    callback=_parse_dims,
    help="Tune for a symbolic dim fixed at this size, as -t tvm --dim builds it (repeatable).",
)
@_level_option("Optimization level, as the -t tvm build that is to use the database.")
@_weights_option
@_seed_option
def tune(
    file: str,
    model: str | None,
    json_: bool,
    quiet: bool,
    trials: int,
    tvm_target: str | None,
    dims: dict[str, int] | None,
    level: int,
    weights: str | None,
    seed: int,
) -> None:
    """Tune a model's kernels for -t tvm with MetaSchedule, measured on this machine.

    Writes a tuning database into netc's build cache, keyed like the build itself (the IR,
    the weights, the target, TVM's and netc's versions): `netc MODEL.net -t tvm` with the
    same model, weights, -O, --dim and --tvm-target then builds with it.
    """
    from .. import driver
    from ..backends import tvm_tune

    out = _start(json_, quiet)
    m = _sized(_load(file, model, out), dims)
    tvm_tune.check_serialization()  # before any work: MetaSchedule cannot run without it
    artifact = driver.emit(
        m, "tvm", weights=weights, seed=seed, level=level, tvm_target=tvm_target, dims=dims
    )

    def progress(done: int, total: int, seconds: float) -> None:
        if json_ or quiet:
            return
        left = seconds / done * (total - done) if done else 0.0
        click.echo(
            f"netc tune: {done}/{total} trials, {_duration(seconds)}, about {_duration(left)} left",
            err=True,
        )

    # TVM's own log (its task tables, on stdout) never: netc's progress lines say how it goes
    tvm_tune.tune(artifact, trials, progress=progress, quiet=True, seed=seed)
    folder = tvm_tune.database_dir(artifact)
    kernels = (tvm_tune.tuning_summary(artifact) or {}).get("kernels", [])
    kept = sum(k["kept"] for k in kernels)
    if json_:
        out.print_json(
            {"model": m.graph.name, "trials": trials, "database": str(folder), "kernels": kernels}
        )
    elif not quiet:
        click.echo(f"tuned {m.graph.name} ({trials} trials): database in {folder}")
        click.echo(
            f"{kept} of {len(kernels)} kernels measured faster tuned than with netc's default "
            "schedules: the build uses those (the others keep netc's)"
        )
        for k in kernels:
            default = "none" if k["default_us"] is None else f"{k['default_us']:.3g} µs"
            mark = "tuned" if k["kept"] else "netc's"
            click.echo(f"  {k['kernel']}: tuned {k['tuned_us']:.3g} µs, netc's {default}: {mark}")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
