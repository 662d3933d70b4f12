"""The `train { ... }` section checked: each setting against what netc.train_spec says it
may be (Keras' losses, optimizers, learning-rate schedules, metrics and callbacks, each
argument's kind and range), with errors at the place, into a `TrainSpec` that the Keras
backend compiles and fits (docs/training.md)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import syntax as ast
from .source import Reporter, Span, did_you_mean, format_value
from .train_spec import (
    CALLBACKS,
    CLASSIFICATION,
    CLIPPING,
    LOSS_ALIASES,
    LOSSES,
    METRICS,
    OPTIMIZERS,
    PER_OUTPUT,
    SCHEDULES,
    SETTINGS,
    SPARSE_METRICS,
    WEIGHT_SUFFIXES,
    Arg,
    Choice,
    TrainSpec,
)
from .values import describe

# --- checking ------------------------------------------------------------------------------------


class _Bad(Exception):
    """The current setting has an error (already reported)."""


@dataclass
class _Context:
    """What checking one section needs: the reporter, the constants in scope, the model's
    outputs (name -> type, in order; None when the model did not elaborate)."""

    r: Reporter
    globals_: Any
    outputs: dict[str, Any]
    model: str


def _value(expr: ast.Expr, ctx: _Context) -> Any:
    """A literal, a constant's value, a negated number, or a list or tuple of those."""
    if isinstance(expr, ast.Literal):
        return expr.value
    if isinstance(expr, ast.UnaryOp) and expr.op == "-":
        v = _value(expr.operand, ctx)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            ctx.r.error(f"cannot negate {format_value(v)}", expr.span)
            raise _Bad
        return -v
    if isinstance(expr, ast.Name):
        b = ctx.globals_.lookup(expr.id)
        if b is not None:
            b.used = True
            if repr(b.value) == "POISON":  # the constant's own error is reported
                raise _Bad
            return b.value
        ctx.r.error(
            f"unknown name `{expr.id}`",
            expr.span,
            hint=did_you_mean(expr.id, ctx.globals_.visible()),
        )
        raise _Bad
    if isinstance(expr, (ast.ListExpr, ast.TupleExpr)):
        return tuple(_value(i, ctx) for i in expr.items)
    ctx.r.error("train settings are literals, constants or lists of them", expr.span)
    raise _Bad


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _in_range(v: float, arg: Arg) -> bool:
    if arg.low is not None and (v <= arg.low if arg.low_open else v < arg.low):
        return False
    return not (arg.high is not None and (v >= arg.high if arg.high_open else v > arg.high))


def _fits(v: Any, arg: Arg) -> Any:
    """`v` as argument `arg` takes it (ints made floats for numbers), or raise ValueError."""
    if v is None and arg.none:
        return None
    if arg.kind in ("number", "rate"):
        if _is_number(v) and _in_range(v, arg):
            return float(v)
    elif arg.kind == "int":
        if isinstance(v, int) and not isinstance(v, bool) and _in_range(v, arg):
            return v
    elif arg.kind == "bool":
        if isinstance(v, bool):
            return v
    elif arg.kind in ("str", "monitor"):
        if isinstance(v, str):
            return v
    elif arg.kind == "mode":
        if v in ("auto", "min", "max"):
            return v
    elif arg.kind in ("ints", "numbers"):
        item = Arg("int" if arg.kind == "ints" else "number", arg.low, arg.high, arg.low_open)
        if isinstance(v, tuple) and v:
            return tuple(_fits(i, item) for i in v)
    raise ValueError


def _argument(what: str | None, name: str, arg: Arg, expr: ast.Expr, ctx: _Context) -> Any:
    """The checked value of argument `name` of `what` (e.g. "optimizer `adam`"; None: `name`
    is a train setting)."""
    if arg.kind == "rate" and isinstance(expr, ast.Call):
        return _choice(expr, SCHEDULES, "learning-rate schedule", {}, ctx, positional=True)
    value = _value(expr, ctx)
    try:
        return _fits(value, arg)
    except ValueError:
        subject = f"{what}: `{name}`" if what else f"train setting `{name}`"
        ctx.r.error(f"{subject} must be {arg.describe()}, got {format_value(value)}", expr.span)
        raise _Bad from None


def _choice(
    expr: ast.Expr,
    table: Mapping[str, Mapping[str, Arg]],
    what: str,
    aliases: Mapping[str, str],
    ctx: _Context,
    *,
    positional: bool = False,
) -> Choice:
    """A name or a call from `table` with its checked arguments. An optimizer's one positional
    argument is its learning rate; a schedule's positional arguments are its required ones."""
    kwargs_exprs: tuple[tuple[str, ast.Expr], ...]
    if isinstance(expr, ast.Name):
        name, kwargs_exprs = expr.id, ()
    elif isinstance(expr, ast.Call) and not expr.piped:
        name, kwargs_exprs = expr.func, expr.kwargs
    else:
        quoted = expr.value if isinstance(expr, ast.Literal) else None
        ctx.r.error(
            f"{what} must be a name such as `{next(iter(table))}` or a call with keyword arguments",
            expr.span,
            # Keras takes names as strings (`loss="mse"`); netc's are names
            hint=f"write the name without quotes: `{quoted}`" if isinstance(quoted, str) else None,
        )
        raise _Bad
    canonical = aliases.get(name, name)
    if canonical not in table:
        ctx.r.error(
            f"unknown {what} `{name}`",
            expr.span,
            hint=did_you_mean(name, [*table, *aliases]) or f"known: {', '.join(sorted(table))}",
        )
        raise _Bad
    args = table[canonical]
    if isinstance(expr, ast.Call) and expr.args:
        required = [k for k, a in args.items() if a.required]
        if what == "optimizer" and len(expr.args) == 1:  # adam(1e-3): the learning rate
            kwargs_exprs = (("learning_rate", expr.args[0]), *kwargs_exprs)
        elif positional and len(expr.args) <= len(required):
            kwargs_exprs = (*zip(required, expr.args), *kwargs_exprs)
        else:
            takes = (
                f"at most {len(required)} arguments by position ({', '.join(required)})"
                if positional
                else "keyword arguments only"
            )
            extra = expr.args[len(required) if positional else 0]
            ctx.r.error(f"{what} `{expr.func}` takes {takes}", extra.span)
            raise _Bad
    names = (
        dict(zip((k for k, _ in expr.kwargs), expr.kwarg_spans))
        if isinstance(expr, ast.Call)
        else {}
    )
    kwargs: dict[str, Any] = {}
    for k, v in kwargs_exprs:
        if k not in args:
            ctx.r.error(
                f"{what} `{canonical}` has no argument `{k}`",
                names.get(k, v.span),
                hint=did_you_mean(k, args) or _takes(args),
            )
            raise _Bad
        if k in kwargs:
            ctx.r.error(f"{what} `{canonical}`: `{k}` is given twice", names.get(k, v.span))
            raise _Bad
        kwargs[k] = _argument(f"{what} `{canonical}`", k, args[k], v, ctx)
    missing = [k for k, a in args.items() if a.required and k not in kwargs]
    if missing:
        ctx.r.error(
            f"{what} `{canonical}` needs {', '.join(f'`{k}`' for k in missing)}",
            expr.span,
            hint=f"{canonical}({', '.join(f'{k}=...' for k, a in args.items() if a.required)})",
        )
        raise _Bad
    _check_choice(canonical, kwargs, what, expr, names, ctx)
    return Choice(canonical, kwargs)


def _takes(args: Mapping[str, Arg]) -> str:
    return f"it takes {', '.join(f'`{a}`' for a in args)}" if args else "it takes no arguments"


def _check_choice(
    name: str,
    kwargs: Mapping[str, Any],
    what: str,
    expr: ast.Expr,
    names: Mapping[str, Span],
    ctx: _Context,
) -> None:
    """What one argument alone cannot say: one kind of clipping, a piecewise schedule's
    lengths and order, a checkpoint file's format."""
    clips = [k for k in CLIPPING if k in kwargs]
    if what == "optimizer" and len(clips) > 1:
        ctx.r.error(
            f"optimizer `{name}` takes one of `clipnorm`, `clipvalue` and `global_clipnorm`, "
            f"got {' and '.join(f'`{k}`' for k in clips)}",
            names.get(clips[1], expr.span),
        )
        raise _Bad
    if name == "piecewise_constant_decay":
        boundaries, values = kwargs["boundaries"], kwargs["values"]
        if list(boundaries) != sorted(set(boundaries)):
            ctx.r.error(
                f"{what} `{name}`: `boundaries` must increase, got {format_value(boundaries)}",
                names.get("boundaries", expr.span),
            )
            raise _Bad
        if len(values) != len(boundaries) + 1:
            ctx.r.error(
                f"{what} `{name}` needs one more value than boundaries: "
                f"{len(boundaries)} boundaries, {len(values)} values",
                names.get("values", expr.span),
            )
            raise _Bad
    path = kwargs.get("path")
    if name == "model_checkpoint" and path is not None and not path.endswith(WEIGHT_SUFFIXES):
        ctx.r.error(
            f"callback `model_checkpoint`: `path` must end in .safetensors or .npz, "
            f"got {format_value(path)}",
            names.get("path", expr.span),
        )
        raise _Bad


def _per_output(expr: ast.Expr, setting: str, ctx: _Context) -> list[tuple[str, ast.Expr]]:
    """`per_output(a=..., b=...)`: the (output, expression) pairs, names checked."""
    assert isinstance(expr, ast.Call)
    if expr.args:
        ctx.r.error(
            f"{PER_OUTPUT} takes the model's outputs by name",
            expr.args[0].span,
            hint=f"{PER_OUTPUT}({', '.join(f'{o}=...' for o in ctx.outputs) or 'NAME=...'})",
        )
        raise _Bad
    seen: set[str] = set()
    for (name, _), span in zip(expr.kwargs, expr.kwarg_spans):
        if ctx.outputs and name not in ctx.outputs:
            ctx.r.error(
                f"model `{ctx.model}` has no output `{name}`",
                span,
                hint=did_you_mean(name, ctx.outputs) or f"its outputs: {', '.join(ctx.outputs)}",
            )
            raise _Bad
        if name in seen:
            ctx.r.error(f"`{setting}` gives output `{name}` twice", span)
            raise _Bad
        seen.add(name)
    if not expr.kwargs:
        ctx.r.error(f"`{setting}` names no output", expr.span)
        raise _Bad
    return list(expr.kwargs)


def _is_per_output(expr: ast.Expr) -> bool:
    return isinstance(expr, ast.Call) and expr.func == PER_OUTPUT and not expr.piped


def _by_output(expr: ast.Expr, setting: str, ctx: _Context, one: Any) -> dict[str, Any] | None:
    """A setting given per output, by name (`per_output`) or, for `loss` and `loss_weights`,
    as a list in output order: each output's value (`one` checks each, all are checked); None
    when the setting is not given per output."""
    if _is_per_output(expr):
        pairs = _per_output(expr, setting, ctx)
    elif isinstance(expr, ast.ListExpr) and setting in ("loss", "loss_weights"):
        names = list(ctx.outputs)
        if names and len(expr.items) != len(names):
            ctx.r.error(
                f"`{setting}` lists {len(expr.items)} value{'s' if len(expr.items) != 1 else ''} "
                f"for {len(names)} output{'s' if len(names) != 1 else ''} ({', '.join(names)})",
                expr.span,
                hint=f"give one per output, or name them: {PER_OUTPUT}("
                + ", ".join(f"{o}=..." for o in names)
                + ")",
            )
            raise _Bad
        pairs = list(zip(names, expr.items))
    else:
        return None
    values = _each(ast.ListExpr(expr.span, tuple(e for _, e in pairs)), one)
    return dict(zip((name for name, _ in pairs), values))


def _each(expr: ast.Expr, check: Any) -> tuple[Any, ...]:
    """`check` applied to every item of a list (or to one value): every item's errors are
    reported; _Bad after them when any failed."""
    out, bad = [], False
    for item in _items(expr):
        try:
            out.append(check(item))
        except _Bad:
            bad = True
    if bad:
        raise _Bad
    return tuple(out)


def _metric(item: ast.Expr, ctx: _Context) -> str:
    if not isinstance(item, ast.Name) or item.id not in METRICS:
        shown = item.id if isinstance(item, ast.Name) else "this"
        ctx.r.error(
            f"unknown metric `{shown}`",
            item.span,
            hint=did_you_mean(shown, METRICS) or f"known: {', '.join(METRICS)}",
        )
        raise _Bad
    return item.id


def _loss(expr: ast.Expr, ctx: _Context) -> Choice:
    return _choice(expr, LOSSES, "loss", LOSS_ALIASES, ctx)


def _weight(expr: ast.Expr, ctx: _Context) -> float:
    value = _value(expr, ctx)
    if not _is_number(value) or value < 0:
        ctx.r.error(f"a loss weight must be a number >= 0, got {format_value(value)}", expr.span)
        raise _Bad
    return float(value)


# --- the section ---------------------------------------------------------------------------------


def elaborate_train(section: ast.TrainDef, globals_: Any, r: Reporter, graph: Any) -> TrainSpec:
    """Check a `train` section against the model `graph` and build its TrainSpec (errors go
    to `r`)."""
    outputs: dict[str, Any] = {}
    if graph is not None:
        for name, value in graph.outputs:
            node = graph.by_name.get(value)
            outputs[name] = node.type if node is not None else None
    ctx = _Context(r, globals_, outputs, graph.name if graph is not None else "")
    values: dict[str, Any] = {}
    spans: dict[str, ast.Expr] = {}
    for (key, expr), span in zip(section.entries, section.entry_spans):
        if key not in SETTINGS:
            r.error(
                f"unknown train setting `{key}`",
                span,
                hint=did_you_mean(key, SETTINGS) or f"known: {', '.join(SETTINGS)}",
            )
            continue
        if key in values or key in spans:
            r.error(f"train setting `{key}` is given twice", span)
            continue
        spans[key] = expr
        try:
            values[key] = _setting(key, expr, ctx)
        except _Bad:
            continue
    if "loss" not in spans:
        r.error(
            "the train section needs a `loss`",
            section.span,
            hint="e.g. `loss = sparse_categorical_crossentropy(from_logits=true)`",
        )
    spec = TrainSpec(**values, outputs=tuple(outputs))
    failed = set(spans) - set(values)  # checking them together would repeat their errors
    if "loss" in values and not failed & {"metrics", "callbacks"}:
        _check_together(spec, spans, ctx)
    return spec


PLAIN: dict[str, Any] = {
    "epochs": int,
    "batch_size": int,
    "validation_split": (int, float),
    "shuffle": bool,
    "seed": int,
}


def _setting(key: str, expr: ast.Expr, ctx: _Context) -> Any:
    """The checked value of one setting."""
    if key == "loss":
        per = _by_output(expr, key, ctx, lambda e: _loss(e, ctx))
        return _loss(expr, ctx) if per is None else per
    if key == "loss_weights":
        per = _by_output(expr, key, ctx, lambda e: _weight(e, ctx))
        if per is None:
            ctx.r.error(
                "`loss_weights` needs a weight per output: a list in output order or "
                f"{PER_OUTPUT}(NAME=number, ...)",
                expr.span,
            )
            raise _Bad
        return per
    if key == "optimizer":
        return _choice(expr, OPTIMIZERS, "optimizer", {}, ctx)
    if key == "metrics":

        def metrics(e: ast.Expr) -> tuple[str, ...]:
            return _each(e, lambda item: _metric(item, ctx))

        per = _by_output(expr, key, ctx, metrics)
        return metrics(expr) if per is None else per
    if key == "callbacks":
        return _each(expr, lambda item: _choice(item, CALLBACKS, "callback", {}, ctx))
    if key == "class_weight":
        return _argument(None, "class_weight", Arg("numbers", low=0), expr, ctx)
    value: Any = _value(expr, ctx)
    want = PLAIN[key]
    if isinstance(value, bool) and want is not bool or not isinstance(value, want):
        kind = want.__name__ if isinstance(want, type) else "number"
        ctx.r.error(
            f"train setting `{key}` must be {'an' if kind == 'int' else 'a'} {kind}, "
            f"got {describe(value)}",
            expr.span,
        )
        raise _Bad
    if key in ("epochs", "batch_size") and value < 1:
        ctx.r.error(f"train setting `{key}` must be >= 1, got {value}", expr.span)
        raise _Bad
    if key == "validation_split":
        if not 0 <= value < 1:
            ctx.r.error(
                f"train setting `validation_split` must be in [0, 1), got {value}", expr.span
            )
            raise _Bad
        return float(value)
    return value


def _classes(t: Any) -> int | None:
    """How many classes an output of type `t` scores: its last axis (two for one logit)."""
    if t is None or not t.shape or not isinstance(t.shape[-1], int):
        return None
    return t.shape[-1] if t.shape[-1] > 1 else 2


def _check_together(spec: TrainSpec, spans: Mapping[str, ast.Expr], ctx: _Context) -> None:
    """What settings mean together: losses fit their outputs, metrics fit the losses' targets,
    class weights fit the one trained output, monitors name logged values."""
    losses = spec.losses()
    r = ctx.r
    loss_expr = spans["loss"]
    per_loss = _by_output_exprs(loss_expr, "loss", ctx)
    for out, choice in losses.items():
        t = ctx.outputs.get(out)
        at = per_loss.get(out, loss_expr).span
        if t is None:
            continue
        if not t.is_float:
            r.error(f"output `{out}` is {t.dtype}: a loss needs a float output", at)
        elif choice.name == "sparse_categorical_crossentropy" and t.rank < 2:
            r.error(
                f"sparse_categorical_crossentropy needs output `{out}` to end in a class axis, "
                f"got {t}",
                at,
            )
    if not losses and ctx.outputs:
        r.error("the train section trains no output", loss_expr.span)
    if spec.loss_weights is not None:
        for out in spec.loss_weights:
            if out not in losses:
                r.error(
                    f"`loss_weights` weighs output `{out}`, which has no loss",
                    _by_output_exprs(spans["loss_weights"], "loss_weights", ctx)[out].span,
                )
    if "metrics" in spans:
        per_metric = _by_output_exprs(spans["metrics"], "metrics", ctx)
        for out in per_metric:
            if out not in losses:
                r.error(
                    f"`metrics` measures output `{out}`, which has no loss", per_metric[out].span
                )
        for out, choice in losses.items():
            sparse = choice.name == "sparse_categorical_crossentropy"
            for m in spec.output_metrics(out):
                if sparse and m not in SPARSE_METRICS:
                    r.error(
                        f"metric `{m}` compares targets shaped like output `{out}`, but "
                        "sparse_categorical_crossentropy's targets are class indices",
                        _metric_span(per_metric.get(out, spans["metrics"]), m),
                        hint="use `accuracy` or `sparse_categorical_accuracy`",
                    )
    if spec.class_weight is not None:
        _check_class_weight(spec, spans["class_weight"], losses, ctx)
    _check_monitors(spec, spans.get("callbacks"), ctx)
    schedule = spec.learning_rate
    if isinstance(schedule, Choice):  # Keras cannot set a rate that a schedule computes
        for callback, item in zip(
            spec.callbacks, _items(spans["callbacks"]) if spec.callbacks else ()
        ):
            if callback.name == "reduce_lr_on_plateau":
                r.error(
                    "callback `reduce_lr_on_plateau` sets the learning rate, which the "
                    f"`{schedule.name}` schedule computes",
                    item.span,
                    hint="use a number as the learning rate, or drop one of the two",
                )


def _items(expr: ast.Expr) -> tuple[ast.Expr, ...]:
    """The items of a list or tuple, or the one value."""
    return expr.items if isinstance(expr, (ast.ListExpr, ast.TupleExpr)) else (expr,)


def _by_output_exprs(expr: ast.Expr, setting: str, ctx: _Context) -> dict[str, ast.Expr]:
    """The expression given for each output by a per-output setting (checked already)."""
    if _is_per_output(expr):
        assert isinstance(expr, ast.Call)
        return dict(expr.kwargs)
    if isinstance(expr, ast.ListExpr) and setting in ("loss", "loss_weights"):
        return dict(zip(ctx.outputs, expr.items))
    return {}


def _metric_span(expr: ast.Expr, metric: str) -> Span:
    found = (i.span for i in _items(expr) if isinstance(i, ast.Name) and i.id == metric)
    return next(found, expr.span)


def _check_class_weight(
    spec: TrainSpec, expr: ast.Expr, losses: Mapping[str, Choice], ctx: _Context
) -> None:
    assert spec.class_weight is not None
    if len(losses) != 1:
        ctx.r.error(
            f"class_weight applies to a model with one trained output; model `{ctx.model}` "
            f"trains {len(losses)} ({', '.join(losses)})",
            expr.span,
        )
        return
    ((out, choice),) = losses.items()
    if choice.name not in CLASSIFICATION:
        ctx.r.error(
            f"class_weight weighs the classes of a classification loss, not `{choice.name}`",
            expr.span,
        )
        return
    classes = _classes(ctx.outputs.get(out))
    if classes is not None and len(spec.class_weight) != classes:
        ctx.r.error(
            f"class_weight gives {len(spec.class_weight)} weights, output `{out}` scores "
            f"{classes} classes",
            expr.span,
        )


def _check_monitors(spec: TrainSpec, expr: ast.Expr | None, ctx: _Context) -> None:
    if expr is None or not ctx.outputs:
        return
    logged = spec.log_names()
    known = [*logged, *(f"val_{k}" for k in logged)]
    for callback, item in zip(spec.callbacks, _items(expr)):
        monitor = callback.kwargs.get("monitor", "val_loss")
        if monitor in known:
            continue
        at = item.span
        if isinstance(item, ast.Call):
            at = dict(zip((k for k, _ in item.kwargs), (v.span for _, v in item.kwargs))).get(
                "monitor", item.span
            )
        ctx.r.error(
            f"callback `{callback.name}` monitors {format_value(monitor)}, which training "
            "does not log",
            at,
            hint=did_you_mean(monitor, known) or f"logged: {', '.join(known)}",
        )
