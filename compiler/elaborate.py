"""Syntax tree -> IR: scopes, imports, blocks, loops, conditionals and compile-time values.

Elaboration runs the model's body once, at compile time: compile-time values are computed,
block calls are inlined under a naming scope, and every op becomes an IR node whose type is
inferred on the spot (so `channels(x)` works and shape errors point at the line). Errors are
collected; a statement that fails binds `POISON`, which later statements pass on silently, so
independent errors are all reported in one run.

The work is shared out by responsibility: values.py (compile-time values and builtins),
imports.py (modules, imports and where they may read), tensors.py (nodes, weights and the
guards on their size), calls.py (ops, blocks, weights); this module runs statements and
expressions. Chains (`a |> f |> g`, `a + b + c`) are evaluated in loops, not by recursion.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from . import syntax as ast
from .calls import Calls
from .imports import ImportPaths, Modules
from .ir import DTYPES, Graph, Node, TensorType
from .limits import Limits
from .source import Reporter, Span, did_you_mean
from .train import elaborate_train
from .train_spec import TrainSpec
from .values import (
    BUILTIN_NEEDS,
    BUILTINS,
    INITIALIZER_BUILTINS,
    LANGUAGE_OPS,
    POISON,
    SCALAR_TYPES,
    TENSOR_OPS,
    Abort,
    Binding,
    Frame,
    Scope,
    Stop,
    Tensor,
    TooLong,
    assigned_names,
    compile_time_op,
    describe,
    dim_names,
    to_str,
)

__all__ = [
    "BUILTIN_NEEDS",
    "BUILTINS",
    "LANGUAGE_OPS",
    "POISON",
    "SCALAR_TYPES",
    "TENSOR_OPS",
    "Elaboration",
    "Elaborator",
    "Frame",
    "Scope",
    "Tensor",
    "describe",
    "elaborate",
]
_TENSOR_OPS = TENSOR_OPS  # the name tests and docs use
# Python's spelling of the language's words, and what to write instead.
_PYTHON_WORDS = {
    "None": "write `none`",
    "True": "write `true`",
    "False": "write `false`",
    "self": "blocks take their inputs as parameters; there is no `self`",
}


@dataclass
class Elaboration:
    """What elaborating one model produced."""

    graph: Graph
    train: TrainSpec | None
    diagnostics: list


class Elaborator(Modules, Calls):
    """Runs one model's body (and the modules it imports) into IR nodes."""

    def __init__(
        self,
        reporter: Reporter,
        limits: Limits | None = None,
        paths: ImportPaths | None = None,
    ):
        super().__init__(reporter, limits, paths)
        self._ready: dict[int, Any] = {}  # values of a chain's links, computed in a loop
        self._methods: dict[type, Callable[..., Any]] = {}  # eval_X by syntax node type

    # -- statements --

    def exec_body(self, stmts: Sequence[ast.Stmt], scope: Scope, where: str = "block") -> Any:
        """Run statements; returns the value of a `return`, or None. `where` is "block", "model"
        or "nested" (the body of an `if` or `for`, where `return` is not allowed)."""
        for i, stmt in enumerate(stmts):
            if isinstance(stmt, ast.Return) and where != "block":
                if where == "model":
                    self.r.error(
                        "a model does not `return`: assign each output by name",
                        stmt.span,
                        hint="write `output_name = value`",
                    )
                else:
                    self.r.error(
                        "`return` must be the last statement of a block, not inside `if` or `for`",
                        stmt.span,
                        hint="assign a value in each branch and return it after",
                    )
                continue
            if isinstance(stmt, ast.Return):
                if i != len(stmts) - 1:
                    self.r.error(
                        "`return` must be the last statement of a block", stmts[i + 1].span
                    )
                try:
                    values = tuple(self.eval(v, scope) for v in stmt.values)
                except (Stop, RecursionError) as exc:
                    if isinstance(exc, RecursionError):
                        self._too_deep(stmt)
                    return POISON
                return values[0] if len(values) == 1 else values
            try:
                self.exec_stmt(stmt, scope)
            except (Stop, RecursionError) as exc:
                if isinstance(exc, RecursionError):
                    self._too_deep(stmt)
                names = (
                    stmt.targets
                    if isinstance(stmt, ast.Assign)
                    else ((stmt.name,) if isinstance(stmt, ast.ConstDef) else ())
                )
                for name in names:  # later readers stay silent; a constant keeps its value
                    old = scope.names.get(name)
                    if old is None or old.kind != "const":
                        scope.names[name] = Binding(POISON, stmt.span, "var", used=True)
        return None

    def _too_deep(self, stmt: ast.Stmt) -> None:
        """Past Python's stack (not one of the limits): still the source's nesting."""
        self.r.error(
            "block calls and expressions nest too deeply here to check",
            stmt.span,
            calls=self.frame.calls,
            hint="nest fewer brackets and block calls",
        )

    def exec_stmt(self, stmt: ast.Stmt, scope: Scope) -> None:
        if isinstance(stmt, ast.Assign):
            if len(stmt.targets) == 1:  # `gamma = weight(...)` names the weight `gamma`
                self.assign_target = (stmt.value, stmt.targets[0])
            try:
                value = self.eval(stmt.value, scope)
            finally:
                self.assign_target = None
            spans = stmt.target_spans or (stmt.span,) * len(stmt.targets)
            self.assign(scope, stmt.targets, spans, value, stmt.value.span, "var")
        elif isinstance(stmt, ast.ConstDef):
            value = self.eval(stmt.value, scope)
            if isinstance(value, Tensor):
                self.r.error(
                    f"const `{stmt.name}` must be a compile-time value, not a tensor",
                    stmt.value.span,
                )
                raise Stop
            self.bind(scope, stmt.name, value, stmt.span, "const")
        elif isinstance(stmt, ast.For):
            iterable = self.eval(stmt.iterable, scope)
            if iterable is POISON:
                raise Stop
            if not isinstance(iterable, tuple):
                self.r.error(
                    f"`for` needs a compile-time list, got {describe(iterable)}",
                    stmt.iterable.span,
                    hint="loop over a list or `range(n)`",
                )
                raise Stop
            if len(iterable) > self.limits.iterations - self.iterations:
                self.r.error(
                    f"`for` over {len(iterable):,} items brings the loops past the limit of "
                    f"{self.limits.iterations:,} iterations in all",
                    stmt.iterable.span,
                    calls=self.frame.calls,
                    hint="raise it with `--limit iterations=N` if the model is meant to be "
                    "this large",
                )
                raise Abort
            self.iterations += len(iterable)
            target_spans = (stmt.span,) * len(stmt.targets)
            for item in iterable:
                self.assign(scope, stmt.targets, target_spans, item, stmt.iterable.span, "loop")
                self.exec_body(stmt.body, scope, "nested")
        elif isinstance(stmt, ast.If):
            while True:  # `else if` chains in a loop, not by recursion
                cond = self.eval(stmt.cond, scope)
                if self.truth(cond, stmt.cond.span):
                    self.exec_body(stmt.then, scope, "nested")
                elif len(stmt.else_) == 1 and isinstance(stmt.else_[0], ast.If):
                    stmt = stmt.else_[0]
                    continue
                else:
                    self.exec_body(stmt.else_, scope, "nested")
                break
        elif isinstance(stmt, ast.Return):  # handled by exec_body
            raise AssertionError("return outside exec_body")
        else:
            self.r.error("this statement is not allowed here", stmt.span)

    def truth(self, cond: Any, span: Span) -> bool:
        if cond is POISON:
            raise Stop
        if isinstance(cond, Tensor):
            self.r.error(
                "a condition must be a compile-time value, not a tensor",
                span,
                hint="`if` chooses between graphs at compile time; use `maximum`/`minimum`"
                " or arithmetic for data-dependent choices",
            )
            raise Stop
        if not isinstance(cond, bool):
            self.r.error(f"a condition must be a bool, got {describe(cond)}", span)
            raise Stop
        return cond

    def assign(
        self,
        scope: Scope,
        targets: Sequence[str],
        spans: Sequence[Span],
        value: Any,
        value_span: Span,
        kind: str,
    ) -> None:
        if len(targets) == 1:
            self.bind(scope, targets[0], value, spans[0], kind)
            return
        if value is POISON:
            for t, s in zip(targets, spans):
                self.bind(scope, t, POISON, s, kind, quiet=True)
            return
        if not isinstance(value, tuple):
            self.r.error(f"cannot unpack {describe(value)} into {len(targets)} names", value_span)
            raise Stop
        if len(value) != len(targets):
            self.r.error(f"cannot unpack {len(value)} values into {len(targets)} names", value_span)
            raise Stop
        for t, s, v in zip(targets, spans, value):
            self.bind(scope, t, v, s, kind)

    def bind(
        self, scope: Scope, name: str, value: Any, span: Span | None, kind: str, quiet: bool = False
    ) -> None:
        old = scope.names.get(name)
        if old is not None and old.kind == "const":
            self.r.error(
                f"`{name}` is a constant and cannot be reassigned",
                span,
                notes=(f"defined at {old.span}",) if old.span else (),
            )
            raise Stop
        if old is None and not quiet:
            what = (
                "the built-in op"
                if name in LANGUAGE_OPS
                else "the block"
                if name in self.blocks
                else "the built-in function"
                if name in BUILTINS
                else "the constant"
                if self.globals.lookup(name)
                else None
            )
            if what and kind != "loop":
                self.r.warning(f"`{name}` shadows {what} `{name}`", span, calls=self.frame.calls)
        if (
            old is not None
            and not old.used
            and old.kind == "var"
            and isinstance(old.value, Tensor)
            and not quiet
            and kind == "var"
        ):
            self.r.warning(
                f"the value of `{name}` assigned here is never used",
                old.span,
                calls=self.frame.calls,
            )
        scope.names[name] = Binding(value, span, kind, used=kind == "loop" and old is not None)

    def warn_unused(self, scope: Scope, keep: Sequence[str] = ()) -> None:
        for name, b in scope.names.items():
            if b.used or name in keep or name.startswith("_") or b.value is POISON:
                continue
            if b.kind in ("var", "param", "input") and (
                isinstance(b.value, Tensor) or b.kind == "var"
            ):
                what = {"param": "parameter", "input": "input"}.get(b.kind, "value")
                self.r.warning(f"{what} `{name}` is never used", b.span, calls=self.frame.calls)

    # -- expressions --

    def eval(self, e: ast.Expr, scope: Scope) -> Any:
        ready = self._ready
        if ready and id(e) in ready:  # a link of a chain, computed by the loop below
            return ready.pop(id(e))
        link = _chained(e)
        if link is not None and _chained(link) is not None and not self._refuses(e):
            # `x |> f |> g |> ...`, `a + b + c + ...`: a chain can be thousands of links long.
            # Each link is computed from the innermost out and put in `_ready`, where its
            # parent's own `self.eval` of it finds it: the recursion stays one link deep.
            links = []
            while link is not None and id(link) not in ready:
                links.append(link)
                # a call that fails before reading its arguments ends the chain, as it would
                # end the recursion: what it would have read is never evaluated
                link = _chained(link) if not self._refuses(link) else None
            try:
                for link in reversed(links):
                    ready[id(link)] = self._eval_node(link, scope)
                return self._eval_node(e, scope)
            finally:  # each link is read by its parent; after an error some are left
                for link in links:
                    ready.pop(id(link), None)
        return self._eval_node(e, scope)

    def _refuses(self, e: ast.Expr) -> bool:
        """Whether `e` is a call of nothing callable (reported before its arguments)."""
        if not isinstance(e, ast.Call):
            return False
        f = e.func
        return not (
            f in self.blocks
            or f in LANGUAGE_OPS
            or f in BUILTINS
            or f == "weight"
            or f in INITIALIZER_BUILTINS
        )

    def _eval_node(self, e: ast.Expr, scope: Scope) -> Any:
        kind = type(e)
        method = self._methods.get(kind)
        if method is None:
            method = self._methods[kind] = getattr(type(self), "eval_" + kind.__name__)
        return method(self, e, scope)

    def eval_Literal(self, e: ast.Literal, scope: Scope) -> Any:
        return e.value

    def eval_Name(self, e: ast.Name, scope: Scope) -> Any:
        b = scope.lookup(e.id)
        if b is not None:
            b.used = True
            if b.value is POISON:
                raise Stop
            return b.value
        if e.id in LANGUAGE_OPS or e.id in self.blocks:
            kind = "an op" if e.id in LANGUAGE_OPS else "a block"
            self.r.error(
                f"`{e.id}` is {kind}, not a value",
                e.span,
                hint=f"call it: `x |> {e.id}` or `{e.id}(x)`",
                calls=self.frame.calls,
            )
        elif e.id in BUILTINS:
            self.r.error(
                f"`{e.id}` is a function, not a value",
                e.span,
                hint=f"call it: `{e.id}(...)`",
                calls=self.frame.calls,
            )
        else:
            if e.id in self.frame.assigned:
                self.r.error(
                    f"`{e.id}` is used before it is assigned",
                    e.span,
                    calls=self.frame.calls,
                    notes=(f"assigned at {self.frame.assigned[e.id]}",),
                )
                raise Stop
            if self.import_failed:
                raise Stop
            if e.id in self.frame.dims:
                self.r.error(
                    f"`{e.id}` names a dim of a tensor type, not a value",
                    e.span,
                    calls=self.frame.calls,
                    hint="a tensor's sizes are `shape(x)`, its last one `channels(x)`",
                )
                raise Stop
            later = self.later_consts.get(e.id)
            if later is not None:
                self.r.error(
                    f"`{e.id}` is used before it is defined",
                    e.span,
                    calls=self.frame.calls,
                    notes=(f"defined at {later}",),
                    hint=f"constants can use only those above them: define `{e.id}` first",
                )
                raise Stop
            self.r.error(
                f"unknown name `{e.id}`",
                e.span,
                calls=self.frame.calls,
                hint=_PYTHON_WORDS.get(e.id) or did_you_mean(e.id, scope.visible()),
            )
        raise Stop

    def eval_FString(self, e: ast.FString, scope: Scope) -> str:
        """`f"conv{i}_block{j}"`: each value as `str(v)` writes it, in the text."""
        out = []
        for part in e.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = self.eval(part, scope)
            if isinstance(value, Tensor):
                self.r.error(
                    f"an f-string takes compile-time values, not {value}",
                    part.span,
                    calls=self.frame.calls,
                    hint="to put a tensor's size in a string, use `channels(x)` or `shape(x)`",
                )
                raise Stop
            try:
                out.append(to_str(value))
            except (TypeError, OverflowError) as exc:
                self.r.error(
                    f"`str`: {exc}" if str(exc) else f"cannot write {describe(value)}",
                    part.span,
                    calls=self.frame.calls,
                )
                raise Stop from None
        return "".join(out)

    def eval_TupleExpr(self, e: ast.TupleExpr, scope: Scope) -> Any:
        return tuple(self.eval(i, scope) for i in e.items)

    eval_ListExpr = eval_TupleExpr

    def eval_IfExpr(self, e: ast.IfExpr, scope: Scope) -> Any:
        while True:  # `else if` chains in a loop
            cond = self.eval(e.cond, scope)
            if self.truth(cond, e.cond.span):
                return self.eval(e.then, scope)
            if not isinstance(e.else_, ast.IfExpr):
                return self.eval(e.else_, scope)
            e = e.else_

    def eval_UnaryOp(self, e: ast.UnaryOp, scope: Scope) -> Any:
        v = self.eval(e.operand, scope)
        if e.op == "not":
            return not self.truth(v, e.operand.span)
        if isinstance(v, Tensor):
            return self.apply_op("neg", [v], {}, e.span)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return -v
        self.r.error(f"cannot negate {describe(v)}", e.span, calls=self.frame.calls)
        raise Stop

    def eval_BinOp(self, e: ast.BinOp, scope: Scope) -> Any:
        if e.op in ("and", "or"):
            left = self.truth(self.eval(e.left, scope), e.left.span)
            if (e.op == "and") != left:
                return left
            return self.truth(self.eval(e.right, scope), e.right.span)
        a, b = self.eval(e.left, scope), self.eval(e.right, scope)
        if isinstance(a, Tensor) or isinstance(b, Tensor):
            if e.op not in TENSOR_OPS:
                self.r.error(
                    f"`{e.op}` works on compile-time values only, not tensors",
                    e.span,
                    calls=self.frame.calls,
                )
                raise Stop
            return self.apply_op(
                TENSOR_OPS[e.op],
                [self.as_tensor(a, b, e.left.span), self.as_tensor(b, a, e.right.span)],
                {},
                e.span,
            )
        if e.op == "@":
            self.r.error("`@` multiplies tensors, not compile-time values", e.span)
            raise Stop
        try:
            if e.op == "**" and isinstance(b, (int, float)) and abs(b) > 64 and a not in (0, 1, -1):
                self.r.error(
                    f"`**`: {a} ** {b} is too large for a compile-time value",
                    e.span,
                    calls=self.frame.calls,
                )
                raise Stop
            return compile_time_op(e.op, a, b, self.limits.iterations)
        except ZeroDivisionError:
            self.r.error("division by zero", e.span, calls=self.frame.calls)
        except TooLong as too_long:
            self.r.error(
                f"`{e.op}`: {too_long}",
                e.span,
                calls=self.frame.calls,
                hint="raise it with `--limit iterations=N` if the model is meant to be this large",
            )
        except (TypeError, ValueError, OverflowError):
            self.r.error(
                f"cannot apply `{e.op}` to {describe(a)} and {describe(b)}",
                e.span,
                calls=self.frame.calls,
            )
        raise Stop

    def eval_Index(self, e: ast.Index, scope: Scope) -> Any:
        value = self.eval(e.value, scope)
        subs = [
            s if isinstance(s, (ast.Slice, ast.EllipsisExpr)) else self.eval(s, scope)
            for s in e.subscripts
        ]
        if isinstance(value, Tensor):
            return self.index_tensor(value, e, subs, scope)
        if isinstance(value, tuple) and len(subs) == 1:
            s = subs[0]
            if isinstance(s, ast.Slice):
                bounds = [self.eval(x, scope) if x else None for x in (s.start, s.stop, s.step)]
                return value[slice(*bounds)]
            if isinstance(s, int) and not isinstance(s, bool):
                if -len(value) <= s < len(value):
                    return value[s]
                self.r.error(
                    f"index {s} is out of range for a list of {len(value)}",
                    e.span,
                    calls=self.frame.calls,
                )
                raise Stop
        self.r.error(
            f"cannot index {describe(value)} with these subscripts", e.span, calls=self.frame.calls
        )
        raise Stop

    def eval_Slice(self, e: ast.Slice, scope: Scope) -> Any:
        self.r.error("a slice is only allowed inside `[...]`", e.span)
        raise Stop

    eval_EllipsisExpr = eval_Slice

    # -- the model --

    def model(self, m: ast.ModelDef) -> Graph:
        self.frames.append(
            Frame(
                "", (), assigned=assigned_names(m.body, {}), dims=dim_names((*m.inputs, *m.outputs))
            )
        )
        scope = Scope(parent=self.globals)
        inputs = []
        for decl in m.inputs:
            t = self.decl_type(decl)
            if decl.name in scope.names:
                self.r.error(f"input `{decl.name}` is declared twice", decl.span)
                continue
            self.node_names.add(decl.name)
            self.add_node(Node(decl.name, "input", (), {}, t, decl.span))
            inputs.append(decl.name)
            scope.names[decl.name] = Binding(
                Tensor(decl.name, t) if t else POISON, decl.span, "input"
            )
        out_names = [o.name for o in m.outputs]
        for o in m.outputs:
            if out_names.count(o.name) > 1:
                self.r.error(f"output `{o.name}` is declared twice", o.span)
        self.exec_body(m.body, scope, "model")
        outputs = []
        # An output's symbolic dims name the model's symbols: `f32[N, 10]` must be `N` itself.
        symbols: dict[str, Any] = {
            d: d for o in m.outputs if o.type for d in (o.type.dims or ()) if isinstance(d, str)
        }
        # a `return` in the model is already an error: its outputs unassigned are its knock-on
        returned = any(isinstance(s, ast.Return) for s in m.body)
        for o in m.outputs:
            b = scope.names.get(o.name)
            if b is None:
                if not returned:
                    self.r.error(
                        f"output `{o.name}` is never assigned",
                        o.span,
                        hint=f"assign it in the model's body: `{o.name} = ...`",
                    )
                continue
            b.used = True
            if b.value is POISON:
                continue
            if not isinstance(b.value, Tensor):
                self.r.error(f"output `{o.name}` must be a tensor, got {describe(b.value)}", b.span)
                continue
            want = o.type
            if want is not None and want.name in DTYPES:
                try:
                    self.check_tensor_type(
                        b.value.type,
                        want,
                        symbols,
                        f"output `{o.name}` is declared",
                        b.span or o.span,
                    )
                except Stop:
                    continue
            outputs.append((o.name, b.value.name))
        if self.r.has_errors:  # a failed statement reads nothing: its names look unused
            self.frames.pop()
            return Graph(m.name, tuple(self.nodes), tuple(inputs), tuple(outputs))
        for name in inputs:
            b = scope.names[name]
            if not b.used:
                self.r.warning(f"input `{name}` is never used", b.span)
                b.used = True
        self.warn_unused(scope, keep=out_names)
        self.frames.pop()
        return Graph(m.name, tuple(self.nodes), tuple(inputs), tuple(outputs))

    def decl_type(self, decl: ast.ParamDecl) -> TensorType | None:
        t = decl.type
        assert t is not None
        if t.name not in DTYPES:
            self.r.error(
                f"unknown dtype `{t.name}`",
                t.span,
                hint=did_you_mean(t.name, DTYPES) or f"use one of {', '.join(DTYPES)}",
            )
            return None
        if t.dims is None:
            self.r.error(f"`{decl.name}` needs a shape, e.g. `{t.name}[N, 10]`", t.span)
            return None
        dims = self.type_dims(t)
        if any(isinstance(d, int) and d < 1 for d in dims):
            return None  # said by type_dims
        out = TensorType(t.name, dims)
        try:
            self.check_type(out, f"input `{decl.name}`", t.span)
        except Stop:
            return None
        return out


def elaborate(
    module: ast.Module,
    reporter: Reporter,
    model: str | None = None,
    elaborator: Callable[[Reporter], Elaborator] | None = None,
    *,
    limits: Limits | None = None,
    paths: ImportPaths | None = None,
) -> Elaboration:
    """Elaborate the model named `model` (or the file's only model) into an IR graph.
    `paths` are where imports may read (default: the module's folder and NETC_PATH); `limits`
    bound the work. `elaborator` makes the Elaborator (the language server passes one that
    records values)."""
    if elaborator is None:
        paths = paths or ImportPaths.for_file(module.path)
        el = Elaborator(reporter, limits, paths)
    else:
        el = elaborator(reporter)
    with deep_stack():
        return _elaborate(el, module, reporter, model)


def _elaborate(
    el: Elaborator, module: ast.Module, reporter: Reporter, model: str | None
) -> Elaboration:
    main = module.path
    el.loaded[os.path.realpath(main) if not main.startswith("<") else main] = None
    el.frames.append(Frame("", ()))
    try:
        el.load_module(module)
    except Abort:
        return Elaboration(Graph(module.path, (), (), ()), None, reporter.diagnostics)
    finally:
        el.frames.pop()
    models = [i for i in module.items if isinstance(i, ast.ModelDef)]
    trains = [i for i in module.items if isinstance(i, ast.TrainDef)]
    for extra in trains[1:]:
        reporter.error("a file may have only one `train` section", extra.span)
    for m in models:
        if m.name in el.definitions:
            reporter.error(f"model `{m.name}` has the name of a block or constant", m.span)
    if model is None and len(models) > 1:
        reporter.error(
            f"{module.path} defines {len(models)} models "
            f"({', '.join(m.name for m in models)}); choose one",
            models[1].span,
            hint="pass `--model NAME` (or `model=` in the API)",
        )
        reporter.raise_if_errors()
    chosen = [m for m in models if model is None or m.name == model]
    if not chosen:
        if model is None:
            reporter.error(
                f"{module.path} defines no model",
                None,
                hint="add `model name(input: f32[N, ...]) -> (output: ...) { ... }`",
            )
        else:
            reporter.error(
                f"{module.path} has no model `{model}`",
                None,
                hint=did_you_mean(model, [m.name for m in models]),
            )
        reporter.raise_if_errors()
    try:
        graph = el.model(chosen[0])
    except Abort:  # reported; what was made so far is the graph
        el.frames.clear()
        graph = Graph(chosen[0].name, tuple(el.nodes), (), ())
        return Elaboration(graph, None, reporter.diagnostics)
    train = elaborate_train(trains[0], el.globals, reporter, graph) if trains else None
    return Elaboration(graph, train, reporter.diagnostics)


def _chained(e: ast.Expr) -> ast.Expr | None:
    """The link a chain continues from: the left operand, the piped value, the indexed value,
    the operand of a minus or `not`; each node evaluates it before anything else. (`**` groups
    to the right: its chains nest, within the limit on Python's stack.)"""
    t = type(e)
    if t is ast.BinOp:
        return e.left if e.op != "**" else None  # type: ignore[attr-defined]
    if t is ast.Call:
        return e.args[0] if e.piped else None  # type: ignore[attr-defined]
    if t is ast.Index:
        return e.value  # type: ignore[attr-defined]
    if t is ast.UnaryOp:
        return e.operand  # type: ignore[attr-defined]
    return None


STACK_FRAMES = 12_000  # Python frames elaboration may use (the limits keep it far below)


@contextmanager
def deep_stack() -> Iterator[None]:
    """Room on Python's stack for block calls nested `Limits.depth` deep, each holding
    expressions nested `Limits.nesting` deep (Python's default, 1,000 frames, is less); and
    the cyclic garbage collector paused: reading and elaborating make millions of small
    objects and no cycles worth collecting, and the collector's passes over them would cost
    a third of the time. Both are restored after."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, STACK_FRAMES))
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        sys.setrecursionlimit(old)
        if collecting:
            gc.enable()
