"""Block calls during elaboration: arguments bound to the block's parameters and checked
against their declared types, the body inlined under a naming scope, and the tensor types of
block parameters and model inputs. Part of the elaborator (calls.py, elaborate.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import syntax as ast
from .ir import DTYPES, TensorType
from .op_calls import OpCalls
from .source import CallSite, Span, did_you_mean
from .values import (
    POISON,
    SCALAR_TYPES,
    Abort,
    Binding,
    Frame,
    Scope,
    Stop,
    Tensor,
    assigned_names,
    describe,
    dim_names,
)


class BlockCalls(OpCalls):
    """The elaborator's part that calls blocks and checks values against declared types."""

    # the elaborator's, used here
    def exec_body(self, stmts: Sequence[ast.Stmt], scope: Scope, where: str = "block") -> Any:
        raise NotImplementedError

    def warn_unused(self, scope: Scope, keep: Sequence[str] = ()) -> None:
        raise NotImplementedError

    def _assigned(self, block: ast.BlockDef) -> dict[str, Span]:
        """The names a block's body assigns (a frame reads them; computed once a block)."""
        found = self._assigned_in.get(block.name)
        if found is None or found[0] is not block:
            found = self._assigned_in[block.name] = (block, assigned_names(block.body, {}))
        return found[1]

    def call_block(self, e: ast.Call, scope: Scope) -> Any:
        block = self.blocks[e.func]
        args, kwargs, layer_name = self._eval_args(e, scope)
        if block.name in self.broken_blocks:
            raise Stop  # its parameter list's error says it all
        if len(self.frames) > self.limits.depth:
            self.r.error(
                f"block `{block.name}` calls itself {self.limits.depth} levels deep",
                e.span,
                calls=self.frame.calls,
                hint="block recursion must end through an `if` on a compile-time value",
            )
            # the whole model: each level would go on to its next call, which recurses again
            # (2 ** depth errors for a block that calls itself twice)
            raise Abort
        self.calls += 1
        if self.calls > self.limits.calls:
            self.r.error(
                f"the model makes more than {self.limits.calls:,} block calls, the limit",
                e.span,
                calls=self.frame.calls,
                hint="raise it with `--limit calls=N` if the model is meant to be this large",
            )
            raise Abort
        params = block.params
        if len(args) > len(params):
            self.r.error(
                f"block `{block.name}` takes {len(params)} argument"
                f"{'s' if len(params) != 1 else ''}, got {len(args)}",
                e.args[len(params)].span,
                calls=self.frame.calls,
            )
            raise Stop
        local = Scope(parent=self.globals)
        given: dict[str, tuple[Any, Span]] = {}
        for p, v, a in zip(params, args, e.args):
            given[p.name] = (v, a.span)
        names = [p.name for p in params]
        unknown = [k for k in kwargs if k not in names]
        for k in unknown:  # every misspelled keyword of the call at once
            self.r.error(
                f"block `{block.name}` has no parameter `{k}`",
                self._keyword_span(e, k),
                calls=self.frame.calls,
                hint=did_you_mean(k, names),
            )
        if unknown:
            raise Stop
        for k, v in kwargs.items():
            if k in given:
                self.r.error(
                    f"block `{block.name}`: `{k}` is given twice",
                    self._keyword_span(e, k),
                    calls=self.frame.calls,
                )
                raise Stop
            given[k] = (v, self._kwarg_span(e, k))
        symbols: dict[str, Any] = {}
        for p in params:
            if p.name in given:
                value, span = given[p.name]
            elif p.default is not None:
                value, span = self.eval(p.default, local), p.default.span
            else:
                self.r.error(
                    f"block `{block.name}` needs `{p.name}`", e.span, calls=self.frame.calls
                )
                raise Stop
            self.check_param(block, p, value, span, symbols)
            local.names[p.name] = Binding(value, p.span, "param")
        if layer_name is None:  # explicit names do not use up a number, as for ops
            # the next number whose name no call has taken (an explicit `name="b_2"` may have)
            while True:
                number = self.frame.counters.get("block:" + block.name, 0)
                self.frame.counters["block:" + block.name] = number + 1
                segment = f"{block.name}_{number}"
                if self.frame.prefix + segment + "." not in self.name_prefixes:
                    break
        else:
            segment = layer_name
        prefix = self.frame.prefix + segment + "."
        if layer_name is not None and prefix in self.name_prefixes:
            self.r.error(
                f'the name "{layer_name}" is already used by another block call',
                e.span,
                calls=self.frame.calls,
            )
            raise Stop
        self.frames.append(
            Frame(
                prefix,
                (CallSite(block.name, e.span), *self.frame.calls),
                assigned=self._assigned(block),
                dims=dim_names(block.params),
            )
        )
        self.name_prefixes.add(prefix)
        try:
            result = self.exec_body(block.body, local)
            if result is not POISON:
                self.warn_unused(local)
        finally:
            self.frames.pop()
        if result is None:
            self.r.error(
                f"block `{block.name}` returns nothing",
                block.span,
                hint="end it with `return <value>`",
            )
            raise Stop
        if result is POISON:
            raise Stop
        return result

    def check_param(
        self, block: ast.BlockDef, p: ast.ParamDecl, value: Any, span: Span, symbols: dict[str, Any]
    ) -> None:
        """An argument against its parameter's declared type (tensor types bind symbols)."""
        if value is POISON:
            raise Stop
        t = p.type
        where = f"block `{block.name}`: `{p.name}`"
        if t is None and p.default is not None:  # `k = 3`: compile-time, typed by its use
            if isinstance(value, Tensor):
                self.r.error(
                    f"{where} must be a compile-time value, not a tensor",
                    span,
                    calls=self.frame.calls,
                )
                raise Stop
            return
        if _is_tensor_param(t):
            if not isinstance(value, Tensor):
                self.r.error(
                    f"{where} must be a tensor, got {describe(value)}",
                    span,
                    calls=self.frame.calls,
                    hint="give compile-time parameters a type, e.g. `units: int`"
                    if t is None and p is not block.params[0]
                    else None,
                )
                raise Stop
            if t is not None and t.dims is not None:
                self.check_tensor_type(value.type, t, symbols, f"{where} must be", span)
            elif t is not None and t.name != "tensor" and value.type.dtype != t.name:
                self.r.error(
                    f"{where} must be a {t.name} tensor, got {value}", span, calls=self.frame.calls
                )
                raise Stop
            return
        if t is None or t.name not in SCALAR_TYPES:  # reported where the block is defined
            raise Stop
        ok = SCALAR_TYPES[t.name]
        if (
            isinstance(value, Tensor)
            or not isinstance(value, ok)
            or (t.name in ("int", "float") and isinstance(value, bool))
        ):
            self.r.error(
                f"{where} must be {'a' if t.name != 'int' else 'an'} {t.name}, got "
                f"{describe(value)}",
                span,
                calls=self.frame.calls,
            )
            raise Stop

    def check_tensor_type(
        self, actual: TensorType, want: ast.TypeExpr, symbols: dict[str, Any], what: str, span: Span
    ) -> None:
        dims = self.type_dims(want)
        if any(isinstance(d, int) and d < 1 for d in dims):
            raise Stop  # said by type_dims
        ok = actual.dtype == want.name and len(dims) == actual.rank
        if ok:
            for d, a in zip(dims, actual.shape):
                if isinstance(d, int):
                    ok = ok and d == a
                elif d in symbols:
                    ok = ok and symbols[d] == a
                else:
                    symbols[d] = a
        if not ok:
            shown = f"{want.name}[{', '.join(str(d) for d in dims)}]"
            self.r.error(f"{what} {shown}, got {actual}", span, calls=self.frame.calls)
            raise Stop

    def type_dims(self, t: ast.TypeExpr) -> tuple:
        """Dims of a tensor type; a name bound to an int constant is that int."""
        out = []
        for d, span in zip(t.dims or (), t.dim_spans):
            notes: tuple[str, ...] = ()
            if isinstance(d, str):
                b = self.globals.lookup(d)
                if b is not None and isinstance(b.value, int) and not isinstance(b.value, bool):
                    b.used = True
                    notes = (f"`{d}` is {b.value}, defined at {b.span}",)
                    d = b.value
            if isinstance(d, int) and d < 1:
                self.r.error(f"a dim must be >= 1, got {d}", span, notes=notes)
            out.append(d)
        return tuple(out)


def _is_tensor_param(t: ast.TypeExpr | None) -> bool:
    """Untyped, `tensor`, a dtype (`f32`) or a tensor type (`f32[N, C]`); `bool` alone is the
    compile-time bool, `bool[N]` a tensor."""
    if t is None or t.name == "tensor" or t.dims is not None:
        return True
    return t.name in DTYPES and t.name not in SCALAR_TYPES
