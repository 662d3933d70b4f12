"""The `train { ... }` section: its settings, checked against the known losses, optimizers and
metrics (Keras' names), into a `TrainSpec` the Keras backend's `fit` uses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import syntax as ast
from .source import Reporter, did_you_mean

LOSSES: dict[str, tuple[str, ...]] = {
    # name: keyword arguments it accepts
    "categorical_crossentropy": ("from_logits", "label_smoothing"),
    "sparse_categorical_crossentropy": ("from_logits",),
    "binary_crossentropy": ("from_logits", "label_smoothing"),
    "mean_squared_error": (),
    "mean_absolute_error": (),
    "huber": ("delta",),
}
LOSS_ALIASES = {
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "cross_entropy": "categorical_crossentropy",
    "sparse_cross_entropy": "sparse_categorical_crossentropy",
}
OPTIMIZERS: dict[str, tuple[str, ...]] = {
    "sgd": ("learning_rate", "momentum", "nesterov", "weight_decay"),
    "adam": ("learning_rate", "beta_1", "beta_2", "epsilon", "weight_decay", "amsgrad"),
    "adamw": ("learning_rate", "beta_1", "beta_2", "epsilon", "weight_decay"),
    "rmsprop": ("learning_rate", "rho", "momentum", "epsilon"),
    "adagrad": ("learning_rate", "epsilon"),
}
METRICS = (
    "accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "binary_accuracy",
    "top_k_categorical_accuracy",
    "mean_squared_error",
    "mean_absolute_error",
    "auc",
    "precision",
    "recall",
)
SETTINGS: dict[str, type | tuple[type, ...]] = {
    "loss": object,
    "optimizer": object,
    "metrics": tuple,
    "epochs": int,
    "batch_size": int,
    "validation_split": (int, float),
    "shuffle": bool,
    "seed": int,
}


@dataclass(frozen=True)
class Choice:
    """A named loss or optimizer with its keyword arguments."""

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainSpec:
    loss: Choice | None = None
    optimizer: Choice = Choice("adam")
    metrics: tuple[str, ...] = ()
    epochs: int = 1
    batch_size: int = 32
    validation_split: float = 0.0
    shuffle: bool = True
    seed: int = 0


class _Bad(Exception):
    pass


def _choice(
    expr: ast.Expr,
    table: Mapping[str, tuple[str, ...]],
    what: str,
    aliases: Mapping[str, str],
    globals_: Any,
    r: Reporter,
) -> Choice:
    kwargs_exprs: tuple[tuple[str, ast.Expr], ...]
    if isinstance(expr, ast.Name):
        name, kwargs_exprs = expr.id, ()
    elif isinstance(expr, ast.Call) and not expr.piped:
        name, kwargs_exprs = expr.func, expr.kwargs
        if what == "optimizer" and len(expr.args) == 1:  # adam(1e-3): the learning rate
            kwargs_exprs = (("learning_rate", expr.args[0]), *kwargs_exprs)
        elif expr.args:
            r.error(f"{what} `{expr.func}` takes keyword arguments only", expr.args[0].span)
            raise _Bad
    else:
        r.error(
            f"{what} must be a name such as `{next(iter(table))}` or a call with keyword arguments",
            expr.span,
        )
        raise _Bad
    canonical = aliases.get(name, name)
    if canonical not in table:
        r.error(
            f"unknown {what} `{name}`",
            expr.span,
            hint=did_you_mean(name, [*table, *aliases]) or f"known: {', '.join(sorted(table))}",
        )
        raise _Bad
    kwargs: dict[str, Any] = {}
    names = (
        dict(zip((k for k, _ in expr.kwargs), expr.kwarg_spans))
        if isinstance(expr, ast.Call)
        else {}
    )
    for k, v in kwargs_exprs:
        if k not in table[canonical]:
            r.error(
                f"{what} `{canonical}` has no argument `{k}`",
                names.get(k, v.span),
                hint=did_you_mean(k, table[canonical]),
            )
            raise _Bad
        kwargs[k] = _literal(v, globals_, r)
    return Choice(canonical, kwargs)


def _literal(expr: ast.Expr, globals_: Any, r: Reporter) -> Any:
    if isinstance(expr, ast.Literal):
        return expr.value
    if isinstance(expr, ast.UnaryOp) and expr.op == "-":
        return -_literal(expr.operand, globals_, r)
    if isinstance(expr, ast.Name):
        b = globals_.lookup(expr.id)
        if b is not None:
            b.used = True
            return b.value
        r.error(
            f"unknown name `{expr.id}`", expr.span, hint=did_you_mean(expr.id, globals_.visible())
        )
        raise _Bad
    if isinstance(expr, (ast.ListExpr, ast.TupleExpr)):
        return tuple(_literal(i, globals_, r) for i in expr.items)
    r.error("train settings are literals, constants or lists of them", expr.span)
    raise _Bad


def elaborate_train(section: ast.TrainDef, globals_: Any, r: Reporter, graph: Any) -> TrainSpec:
    """Check a `train` section and build its TrainSpec (errors go to `r`)."""
    values: dict[str, Any] = {}
    for (key, expr), span in zip(section.entries, section.entry_spans):
        if key not in SETTINGS:
            r.error(
                f"unknown train setting `{key}`",
                span,
                hint=did_you_mean(key, SETTINGS) or f"known: {', '.join(SETTINGS)}",
            )
            continue
        if key in values:
            r.error(f"train setting `{key}` is given twice", span)
            continue
        try:
            if key == "loss":
                values[key] = _choice(expr, LOSSES, "loss", LOSS_ALIASES, globals_, r)
            elif key == "optimizer":
                values[key] = _choice(expr, OPTIMIZERS, "optimizer", {}, globals_, r)
            elif key == "metrics":
                items = expr.items if isinstance(expr, (ast.ListExpr, ast.TupleExpr)) else (expr,)
                names = []
                for item in items:
                    if not isinstance(item, ast.Name) or item.id not in METRICS:
                        shown = item.id if isinstance(item, ast.Name) else "this"
                        r.error(
                            f"unknown metric `{shown}`",
                            item.span,
                            hint=did_you_mean(shown, METRICS) or f"known: {', '.join(METRICS)}",
                        )
                        raise _Bad
                    names.append(item.id)
                values[key] = tuple(names)
            else:
                value = _literal(expr, globals_, r)
                want = SETTINGS[key]
                if isinstance(value, bool) and want is not bool or not isinstance(value, want):
                    kind = want.__name__ if isinstance(want, type) else "number"
                    r.error(
                        f"train setting `{key}` must be {'an' if kind == 'int' else 'a'} {kind}",
                        expr.span,
                    )
                    raise _Bad
                if key in ("epochs", "batch_size") and value < 1:  # type: ignore[operator]
                    r.error(f"train setting `{key}` must be >= 1, got {value}", expr.span)
                    raise _Bad
                if key == "validation_split" and not 0 <= value < 1:  # type: ignore[operator]
                    r.error(f"validation_split must be in [0, 1), got {value}", expr.span)
                    raise _Bad
                values[key] = value
        except _Bad:
            continue
    if "loss" not in (key for key, _ in section.entries):
        r.error(
            "the train section needs a `loss`",
            section.span,
            hint="e.g. `loss = sparse_categorical_crossentropy(from_logits=true)`",
        )
    return TrainSpec(**values)
