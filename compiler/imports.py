"""Imports: where `import "PATH"` may read, and bringing a module's constants and blocks into
the global scope.

An import names a `.net` file relative to the importing file; when there is none there, each
include folder (`--include DIR`, then the folders of NETC_PATH) is tried in order. Whatever is
found must lie, once every symlink is resolved, inside the folder of the file being compiled
or an include folder, and be a regular file. An absolute path, or one that leaves those
folders, is an error at the import that never opens the target, nor says whether it exists.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING, Any

from . import syntax as ast
from .source import NetcError, Span, format_value, read_source

if TYPE_CHECKING:
    from .tensors import Builder

    _Base = Builder
else:
    _Base = object

ENV = "NETC_PATH"  # include folders, separated by os.pathsep


class Refused(Exception):
    """An import that may not or cannot be read: the message, with a hint and notes."""

    def __init__(self, message: str, hint: str | None = None, notes: tuple[str, ...] = ()):
        super().__init__(message)
        self.message, self.hint, self.notes = message, hint, notes


@dataclass(frozen=True)
class Found:
    """A file an import reaches: as shown in diagnostics, and its real path."""

    shown: str
    real: str


@dataclass(frozen=True)
class ImportPaths:
    """The folders imports may read inside (`roots`, real paths) and the include folders
    searched after the importing file's own (`include`, as given and real)."""

    roots: tuple[str, ...]
    include: tuple[tuple[str, str], ...] = ()

    @classmethod
    def for_file(
        cls,
        path: str | None,
        include: Iterable[str | Path] = (),
        environ: Mapping[str, str] | None = None,
    ) -> ImportPaths:
        """The paths for compiling `path`: its folder, then `include`, then NETC_PATH. A path
        in angle brackets (`<string>`) or None is source text: the current folder is its."""
        if path is None or path.startswith("<"):
            main = os.getcwd()
        else:
            main = os.path.dirname(path) or "."
        env = (os.environ if environ is None else environ).get(ENV, "")
        folders = [str(f) for f in include] + [f for f in env.split(os.pathsep) if f]
        extra = tuple((f, os.path.realpath(f)) for f in folders)
        roots = tuple(dict.fromkeys([os.path.realpath(main), *(real for _, real in extra)]))
        return cls(roots, extra)

    @classmethod
    def for_text(cls, include: Iterable[str | Path] = ()) -> ImportPaths:
        """The paths for source text without a file: the current folder, `include`, NETC_PATH."""
        return cls.for_file(None, include)

    def inside(self, real: str) -> bool:
        return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in self.roots)

    def resolve(self, name: str, importing: str) -> Found:
        """The file `import "name"` in file `importing` reaches; Refused says why none."""
        if "\0" in name:
            raise Refused("an import path cannot hold a NUL character")
        surrogate = next((c for c in name if "\ud800" <= c <= "\udfff"), None)
        if surrogate is not None:  # `"\ud800"`: half of a UTF-16 pair, no file name holds it
            raise Refused(f"an import path cannot hold the lone surrogate U+{ord(surrogate):04X}")
        if os.path.isabs(name) or PureWindowsPath(name).drive or name.startswith("~"):
            raise Refused(
                "an import path must be relative",
                hint="write it relative to the importing file",
            )
        base = Path(importing).parent if not importing.startswith("<") else Path(".")
        shown = str(base / name)
        real = os.path.realpath(shown)
        if not self.inside(real):
            raise Refused(
                "it is outside the folders imports may read",
                hint="keep imported files in the folder of the file being compiled (or below "
                "it), or add a folder with `--include DIR` or NETC_PATH",
                notes=tuple(f"imports may read inside {r}" for r in self.roots),
            )
        if not os.path.lexists(real):
            for given, _ in self.include:
                candidate = os.path.realpath(os.path.join(given, name))
                if self.inside(candidate) and os.path.lexists(candidate):
                    shown, real = str(Path(given) / name), candidate
                    break
            else:
                searched = tuple(f"not in the include folder {g}" for g, _ in self.include)
                raise Refused(
                    f"no such file {shown}",
                    hint="import paths are relative to the importing file",
                    notes=searched,
                )
        try:
            mode = os.stat(real).st_mode
        except OSError as e:
            raise Refused(f"cannot read {shown}: {e.strerror}") from None
        if stat.S_ISDIR(mode):
            raise Refused("it is a directory, not a .net file")
        if not stat.S_ISREG(mode):
            raise Refused("it is not a regular file")
        if not name.endswith(".net"):
            raise Refused(
                "only .net files can be imported", hint="name the file with the .net suffix"
            )
        return Found(shown, real)


class Modules(_Base):
    """The elaborator's part that reads modules: imports, global constants, block headers."""

    def load_module(self, module: ast.Module, importing: tuple[tuple[str, str], ...] = ()) -> None:
        """Bring a module's imports, constants and blocks into the global scope; `importing`
        is the chain of files (shown, real) that imported it."""
        real = os.path.realpath(module.path) if not module.path.startswith("<") else module.path
        chain = (*importing, (module.path, real))
        for item in module.items:
            if isinstance(item, ast.ConstDef):
                self.later_consts.setdefault(item.name, item.span)
        for item in module.items:
            if isinstance(item, ast.Import):
                self._import(item, module.path, chain)
            elif isinstance(item, ast.BlockDef):
                if self._define(item.name, item.span, "block"):
                    self.blocks[item.name] = item
                    self._check_block_params(item)
            elif isinstance(item, ast.ConstDef):
                self._global_const(item)

    def _import(self, item: ast.Import, importing: str, chain: tuple[tuple[str, str], ...]) -> None:
        from .parse import parse

        try:
            found = self.paths.resolve(item.path, importing)
        except Refused as e:
            self.r.error(
                f"cannot import {format_value(item.path)}: {e.message}",
                item.span,
                hint=e.hint,
                notes=e.notes,
            )
            self.import_failed = True
            return
        if any(real == found.real for _, real in chain):
            shown = " -> ".join([*(s for s, _ in chain), found.shown])
            self.r.error(f"import cycle: {shown}", item.span)
            return
        if found.real in self.loaded:
            return
        self.loaded[found.real] = item.span
        try:
            text = read_source(found.real, self.limits, shown=found.shown, follow_symlinks=False)
        except NetcError as e:  # unreadable: said at the import
            self.r.error(
                f"cannot import {format_value(item.path)}: {e.diagnostics[0].message}", item.span
            )
            self.import_failed = True
            return
        self.r.sources.add(found.shown, text)
        try:
            module = parse(text, found.shown, self.limits)
        except NetcError as e:
            self.r.extend(e)
            self.import_failed = True
            return
        self.load_module(module, chain)

    def _define(self, name: str, span: Span, what: str) -> bool:
        from .values import BUILTINS, LANGUAGE_OPS

        if name in self.definitions:
            self.r.error(
                f"`{name}` is defined twice",
                span,
                notes=(f"first defined at {self.definitions[name]}",),
            )
            return False
        if name in LANGUAGE_OPS or name in BUILTINS:
            kind = "op" if name in LANGUAGE_OPS else "function"
            self.r.error(
                f"{what} `{name}` has the name of the built-in {kind} `{name}`",
                span,
                hint="choose another name",
            )
            return False
        self.definitions[name] = span
        return True

    def _global_const(self, item: ast.ConstDef) -> None:
        from .values import POISON, Binding, Stop, Tensor

        self.later_consts.pop(item.name, None)
        value: Any
        try:
            value = self.eval(item.value, self.globals)
        except Stop:
            value = POISON
        if isinstance(value, Tensor):
            self.r.error(
                f"const `{item.name}` must be a compile-time value, not a tensor", item.value.span
            )
            value = POISON
        if self._define(item.name, item.span, "const"):
            self.globals.names[item.name] = Binding(value, item.span, "const", used=True)

    def _check_block_params(self, block: ast.BlockDef) -> None:
        from .ir import DTYPES
        from .source import did_you_mean
        from .values import SCALAR_TYPES

        seen: set[str] = set()
        has_default = False
        errors = len(self.r.diagnostics)
        for p in block.params:
            if p.name in seen:
                self.r.error(f"block `{block.name}` has two parameters named `{p.name}`", p.span)
            seen.add(p.name)
            if (
                p.type is not None
                and p.type.name not in SCALAR_TYPES
                and p.type.name != "tensor"
                and p.type.name not in DTYPES
            ):
                self.r.error(
                    f"unknown parameter type `{p.type.name}`",
                    p.type.span,
                    hint=did_you_mean(p.type.name, [*SCALAR_TYPES, "tensor", *DTYPES])
                    or "use int, float, bool, str, list, tensor or a tensor type",
                )
            if p.default is not None:
                has_default = True
            elif has_default:
                self.r.error(
                    f"parameter `{p.name}` without a default follows one with a default", p.span
                )
        if len(self.r.diagnostics) > errors:
            self.broken_blocks.add(block.name)
