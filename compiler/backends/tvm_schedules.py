"""Default CPU schedules for the TVM backend: how the fused PrimFuncs of netc's Relax pipeline
run without tuning. `apply` schedules every PrimFunc a tuning database left alone, by pattern:

1. `tile` — one reduction block (convolutions 1-D/2-D/3-D with their groups and depthwise,
   dense, matmul and attention's batched matmuls, pools, global means) whose output's last axis
   (channels, columns) is contiguous in an input: a register tile of `rows` output cells (one
   over a symbolic axis, such as a dense layer's batch) by `m` vectors of that axis,
   accumulated over the whole reduction, with the bias, activation and residual (the
   elementwise blocks after it) computed in the tile as it completes; constant weights packed
   at compile time so that the tile reads them contiguously ([O/vf, ..., vf]); the tiles run
   in parallel;
2. `reduction` — TVM's own CPU rule (`dlight.cpu.Reduction`): softmax, layernorm, means over
   the last axis;
3. `injective` — elementwise, broadcast, gathers, transposes: one parallel loop, the last axis
   vectorized.

A PrimFunc none fits keeps TVM's loop nest. docs/tvm.md ("Default schedules") says why each
choice is what it is and what was measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import tvm

# A kernel below this many multiply-adds (or elements, for an injective one) runs on one
# thread: waking TVM's pool costs microseconds, more than it saves on a small layer.
PARALLEL_WORK = 1 << 15
# Packed weights up to this size stay in a core's L2 cache while the tile sweeps every output
# cell for them; larger ones are swept by output-channel block first (each block's weights
# are read once while its cells are computed).
L2_BYTES = 256 * 1024
SCHEDULE_ATTR = "netc.schedule"  # the rule that scheduled a PrimFunc, for tests and reports


@dataclass(frozen=True)
class Cpu:
    """What a schedule needs to know about a CPU target: its vector width and registers (and
    the target itself, for TVM's rules)."""

    vector_bits: int
    registers: int
    target: Any = None

    def lanes(self, bits: int) -> int:
        """Values of `bits` bits in one vector register."""
        return max(1, self.vector_bits // bits)


def cpu(target: Any) -> Cpu | None:
    """The CPU an LLVM `target` compiles for (None for a GPU target). LLVM's own answer
    (`llvm_get_vector_width`) is 512 for every x86 CPU in TVM 0.27, so it is read from the
    target's features: AVX-512 (32 registers of 512 bits), AVX (16 of 256), else 128 bits."""
    if str(target.kind.name) != "llvm":
        return None
    from tvm.target.codegen import target_has_features

    if target_has_features("avx512f", target):
        return Cpu(512, 32, target)
    if target_has_features("avx", target):
        return Cpu(256, 16, target)
    return Cpu(128, 32 if target_has_features("neon", target) else 16, target)


def mark_weights(module: Any) -> Any:
    """`module` with each PrimFunc's constant parameters (the weights every call passes as a
    Relax constant) listed in its attribute `layout_free_buffers`: those a schedule may repack
    at compile time. (TVM's AttachAttrLayoutFreeBuffers does the same but renames every
    PrimFunc it marks.)"""
    t = tvm()
    call_tir = t.ir.Op.get("relax.call_tir")
    constant: dict[Any, set[int]] = {}
    for func in module.functions.values():
        if not isinstance(func, t.relax.Function) or not hasattr(func.body, "blocks"):
            continue
        for block in func.body.blocks:
            for binding in block.bindings:
                call = binding.value
                if not isinstance(call, t.relax.Call) or not call.op.same_as(call_tir):
                    continue
                args = list(call.args[1].fields)
                mine = {i for i, a in enumerate(args) if isinstance(a, t.ir.expr.Constant)}
                gv = call.args[0]
                constant[gv] = constant[gv] & mine if gv in constant else mine
    for gv, indices in constant.items():
        if indices:
            module[gv] = module[gv].with_attr("layout_free_buffers", sorted(indices))
    return module


def drop_schedule_rules(module: Any) -> Any:
    """`module` without the `schedule_rule` annotation TOPI puts on some blocks (the pools:
    "meta_schedule.pool_avg", "meta_schedule.pool_max"). MetaSchedule looks each one up as a
    custom rule, which no CPU target registers: it logged a warning on stderr for every pool
    kernel of `netc tune`, then dropped the annotation and went on. Dropped here, for the build
    and the tuning alike, so that both see the same kernels (a tuning record is found by its
    kernel's structural hash)."""
    t = tvm()
    for gv, func in list(module.functions_items()):
        if not isinstance(func, t.tirx.PrimFunc):
            continue
        try:
            sch = t.s_tir.Schedule(func)
            marked = [b for b in _blocks(sch) if "schedule_rule" in sch.get(b).annotations]
        except Exception:  # noqa: BLE001 - a PrimFunc without blocks (a scan) has none
            continue
        for block in marked:
            sch.unannotate(block, "schedule_rule")
        if marked:
            module[gv] = sch.mod["main"]
    return module


def apply(module: Any, target: Any) -> Any:
    """`module` with a default schedule on every PrimFunc not yet scheduled (a tuning
    database's are), for a CPU `target`; structurally equal PrimFuncs are scheduled once."""
    t = tvm()
    import tvm_ffi

    info = cpu(target)
    if info is None:
        return module
    done: dict[int, Any] = {}
    updates = {}
    for gv, func in module.functions_items():
        if not isinstance(func, t.tirx.PrimFunc) or _scheduled(func):
            continue
        key = tvm_ffi.structural_hash(func)
        if key not in done:
            done[key] = schedule_function(func, info)
        if done[key] is not None:
            updates[gv] = done[key]
    for gv, func in updates.items():
        module[gv] = func
    return module


def split_repacking(module: Any) -> Any:
    """`module` with each weight repacking a schedule made (a block marked
    `meta_schedule.layout_rewrite_preproc`) moved into a PrimFunc of its own, which constant
    folding then runs at compile time (TVM's SplitLayoutRewritePreproc). That pass refuses a
    PrimFunc without a root block (the recurrent scans, written as plain loops): those stand
    aside as a stub of the same signature while it runs."""
    t = tvm()
    s_tir, tirx = t.s_tir, t.tirx
    aside = {
        gv: func
        for gv, func in module.functions_items()
        if isinstance(func, tirx.PrimFunc) and not isinstance(func.body, s_tir.SBlockRealize)
    }
    for gv, func in aside.items():
        stub = s_tir.SBlockRealize([], True, s_tir.SBlock([], [], [], "stub", tirx.Evaluate(0)))
        root = s_tir.SBlock([], [], [], "root", stub)
        module[gv] = func.with_body(s_tir.SBlockRealize([], True, root))
    module = t.relax.transform.SplitLayoutRewritePreproc()(module)
    for gv, func in aside.items():
        module[gv] = func
    return module


def schedule_function(func: Any, info: Cpu) -> Any:
    """`func` scheduled by the first rule that fits it (None when none does), marked with the
    rule's name (`SCHEDULE_ATTR`) and as scheduled."""
    for name, rule in RULES:
        try:
            sch = rule(func, info)
        except Exception:  # noqa: BLE001 - a rule that does not fit raises TVM's ScheduleError
            sch = None
        if sch is not None:
            out = sch.mod["main"]
            return out.with_attrs({"tirx.is_scheduled": True, SCHEDULE_ATTR: name})
    return None


def _scheduled(func: Any) -> bool:
    attrs = func.attrs
    return attrs is not None and "tirx.is_scheduled" in attrs and bool(attrs["tirx.is_scheduled"])


# --- helpers ---------------------------------------------------------------------------------

SPATIAL, REDUCE = 0, 2  # TIR iteration kinds (IterVar.DataPar, IterVar.CommReduce)


def _blocks(sch: Any) -> list[Any]:
    return list(sch.get_child_blocks(sch.get_sblock("root")))


def _kinds(stmt: Any) -> list[int]:
    return [int(iv.iter_type) for iv in stmt.iter_vars]


def _extent(sch: Any, loop: Any) -> int | None:
    """A loop's extent when it is a constant (a symbolic dim's is not)."""
    e = sch.get(loop).extent
    return int(e) if isinstance(e, tvm().tirx.IntImm) else None


def _same(a: Any, b: Any) -> bool:
    return isinstance(a, tvm().tirx.Var) and a.same_as(b)


def _work(sch: Any, loops: Sequence[Any]) -> int:
    """The iterations of a loop nest, a symbolic extent counted as 1 (batch 1)."""
    return math.prod(_extent(sch, lp) or 1 for lp in loops)


def _bindings_are_loops(sch: Any, block: Any) -> bool:
    """Whether each of the block's iteration variables is bound to its own loop, in order (the
    loop nest TVM's legalization makes, before any schedule)."""
    realize = tvm().get_global_func("s_tir.schedule.GetSBlockRealize")(sch, block)
    loops = sch.get_loops(block)
    values = list(realize.iter_values)
    return len(loops) == len(values) and all(
        _same(v, sch.get(lp).loop_var) for v, lp in zip(values, loops, strict=True)
    )


def _is_copy(stmt: Any) -> bool:
    """A block that only copies a value (a pad without padding): inlined where it is read."""
    t = tvm()
    body = stmt.body
    return isinstance(body, t.tirx.BufferStore) and isinstance(body.value, t.ir.expr.TensorLoad)


def _vectorize_last(sch: Any, block: Any, lanes: int, skip: int = 0) -> None:
    """Vectorize the innermost loop of `block` (beyond its first `skip` loops) when its extent
    is constant: whole when it is at most 4 vectors, else in vectors that divide it."""
    loops = sch.get_loops(block)[skip:]
    if not loops:
        return
    e = _extent(sch, loops[-1])
    if e is None or e < 2:
        return
    if e <= 4 * lanes:
        _vectorize(sch, loops[-1], lanes)
        return
    for f in (4 * lanes, 2 * lanes, lanes):
        if e % f == 0:
            _, inner = sch.split(loops[-1], [None, f])
            sch.vectorize(inner)
            return


def _vectorize(sch: Any, loop: Any, lanes: int) -> None:
    """Vectorize `loop`; a loop of whole vectors whose count is not a power of two (3: a
    tile over 24 channels on AVX2) as an unrolled loop of single vectors. LLVM splits a vector
    of a power of two registers into registers, but not one of 24 floats: MobileNetV2's 1x1
    convolutions to 24 channels ran at 6 GFLOP/s, a sixth of its others, until each vector
    was a loop step of its own."""
    e = _extent(sch, loop)
    count = e // lanes if e is not None and e % lanes == 0 else 1
    if count & (count - 1) == 0:  # a power of two (1, 2, 4, 8) or not a multiple: whole
        sch.vectorize(loop)
        return
    outer, inner = sch.split(loop, [None, lanes])
    sch.vectorize(inner)
    sch.unroll(outer)


def _parallel_outer(sch: Any, block: Any, lanes: int) -> None:
    """An injective block: its last axis vectorized, every other loop fused into one parallel
    loop (when the block is big enough to share)."""
    loops = sch.get_loops(block)
    if not loops:
        return
    _vectorize_last(sch, block, lanes)
    loops = sch.get_loops(block)
    outer = [lp for lp in loops[:-1] if sch.get(lp).kind == 0] if len(loops) > 1 else []
    if outer and _work(sch, loops) >= PARALLEL_WORK:
        sch.parallel(sch.fuse(*outer) if len(outer) > 1 else outer[0])


def _packer(vf: int) -> Callable[..., list[Any]]:
    """The layout of a packed weight: its last axis split into blocks of `vf`, the block
    index first ([..., O] -> [O / vf, ..., vf])."""

    def index_map(*ix: Any) -> list[Any]:
        return [ix[-1] // vf, *ix[:-1], ix[-1] % vf]

    return index_map


def _fuser(positions: Sequence[int], extents: Sequence[int]) -> Callable[..., list[Any]]:
    """The index map fusing the axes at `positions` (consecutive, of `extents`) into one."""

    def index_map(*ix: Any) -> list[Any]:
        fused = ix[positions[0]]
        for p, e in zip(positions[1:], extents[1:], strict=True):
            fused = fused * e + ix[p]
        return [*ix[: positions[0]], fused, *ix[positions[-1] + 1 :]]

    return index_map


# --- rule 1: a register tile over a reduction ------------------------------------------------


def _tile(func: Any, info: Cpu) -> Any:
    """Convolutions, matmuls, pools, means: see the module docstring. None when `func` is not
    one reduction block with injective blocks around it and a contiguous output axis."""
    t = tvm()
    sch = t.s_tir.Schedule(func)
    blocks = _blocks(sch)
    stmts = [sch.get(b) for b in blocks]
    reductions = [i for i, s in enumerate(stmts) if REDUCE in _kinds(s)]
    if len(reductions) != 1:
        return None
    (k,) = reductions
    block, stmt = blocks[k], stmts[k]
    kinds = _kinds(stmt)
    n_spatial = kinds.count(SPATIAL)
    if (
        kinds != [SPATIAL] * n_spatial + [REDUCE] * (len(kinds) - n_spatial)
        or stmt.init is None
        or not isinstance(stmt.body, t.tirx.BufferStore)
        or any(REDUCE in _kinds(s) for s in stmts[:k] + stmts[k + 1 :])
        or not _bindings_are_loops(sch, block)
    ):
        return None
    spatial = [iv.var for iv in stmt.iter_vars if iv.iter_type == SPATIAL]
    indices = list(stmt.body.indices)
    if len(indices) != len(spatial) or not all(map(_same, indices, spatial)):
        return None  # the output is not indexed by the spatial axes in order
    vec_var = spatial[-1]
    if not any(len(r.region) and _same(r.region[-1].min, vec_var) for r in stmt.reads):
        return None  # the output's last axis is contiguous in no input: not this pattern
    extents = [_extent(sch, lp) for lp in sch.get_loops(block)]
    vec_extent = extents[n_spatial - 1]
    if vec_extent is None or vec_extent < 2:
        return None
    out_buffer = stmt.writes[0].source
    params = list(func.params)
    free = [params[int(i)] for i in (func.attrs.get("layout_free_buffers") or [])]

    # the producers: a copy (a pad of nothing) is read in place, a real pad is made first
    for b, s in zip(blocks[:k], stmts[:k], strict=True):
        if not (_is_copy(s) and _try(sch.compute_inline, b)):
            _parallel_outer(sch, b, info.lanes(32))
    # the consumers: elementwise blocks inlined into the last ones (those writing outputs)
    tails = [b for b in blocks[k + 1 :] if not _try(sch.compute_inline, b)]
    if any(out_buffer.same_as(p) for p in params):
        # the reduction writes the function's output: accumulate in a buffer of its own
        tails.append(sch.cache_write(block, 0, "global"))
        out_buffer = sch.get(block).writes[0].source

    # rows: the constant-size spatial axes before the last one, fused into one axis so that a
    # tile of 6 cells of a 7 x 7 image wastes little (the accumulator and the blocks after it
    # take the fused layout too, so the tile's region is exact)
    run: list[int] = []
    for i in range(n_spatial - 2, -1, -1):
        if extents[i] is None:
            break
        run.insert(0, i)
    if len(run) > 1 and not _fuse_rows(sch, block, tails, out_buffer, run, extents):
        run = run[-1:]
    if not run and n_spatial >= 2:
        run = [n_spatial - 2]  # a symbolic axis (the batch of a dense layer)
    symbolic = bool(run) and extents[run[0]] is None

    # the register tile: m vectors of the output's last axis by `rows` cells. Over a symbolic
    # row axis, one row of up to 8 vectors (8 accumulators hide the FMAs' latency): a tile of
    # several rows of a symbolic axis is predicated row by row, which LLVM compiles badly
    # (the MLP 2.3x slower at batch 1, where 1 of 6 rows computes, and 1.6x at batch 8 and
    # 32, where all do; docs/tvm.md)
    lanes = info.lanes(out_buffer.dtype.bits)
    order = (8, 4, 2, 3, 1) if symbolic else (2, 3, 1, 4)
    m = next((c for c in order if vec_extent % (c * lanes) == 0), 0)
    vf = m * lanes
    if not m:  # an axis that is not a multiple of the vector: all of it, or vectors of it
        vf = vec_extent if vec_extent <= 2 * lanes else lanes
        m = -(-vf // lanes)
    most_rows = max(1, (info.registers - 1 - m) // m)  # accumulators, the weights, a broadcast

    fused = len(run) > 1
    loops = sch.get_loops(block)
    n_spatial -= len(run) - 1 if fused else 0
    s_loops, r_loops = loops[:n_spatial], loops[n_spatial:]

    # weights packed at compile time: the tile reads [O/vf, ..., vf] contiguously (the
    # block's iteration variables are new ones when its rows were fused)
    # (and TVM marks unit-extent reduction ones spatial then: count them by position)
    vec_var = sch.get(block).iter_vars[n_spatial - 1].var
    packed_bytes = 0
    for i, region in enumerate(sch.get(block).reads):
        buf = region.source
        if (
            any(buf.same_as(p) for p in free)
            and len(region.region)
            and _same(region.region[-1].min, vec_var)
            and int(buf.shape[-1]) % vf == 0
        ):
            cache = sch.cache_read(block, i, "global")
            sch.annotate(cache, "meta_schedule.layout_rewrite_preproc", True)
            sch.transform_layout(block, ("read", i), _packer(vf))
            packed_bytes += math.prod(int(d) for d in buf.shape) * buf.dtype.bits // 8

    vo, vi = sch.split(s_loops[-1], [None, vf])
    lead = s_loops[: len(s_loops) - 1 - (1 if run else 0)]
    if run:
        row = s_loops[len(lead)]
        row_extent = _extent(sch, row)
        rows = _rows(row_extent, most_rows, m)
        ro, ri = sch.split(row, [None, rows])
        # weights that fit in L2 stay there while every row is computed; larger ones are
        # swept one block of output channels at a time
        middle = [ro, vo] if packed_bytes <= L2_BYTES else [vo, ro]
        outer, inner = lead + middle, [ri, vi]
    else:
        outer, inner = lead + [vo], [vi]
    sch.reorder(*outer, *r_loops, *inner)
    for b in tails:
        sch.reverse_compute_at(b, outer[-1], preserve_unit_loops=True)
    work = _work(sch, sch.get_loops(block))
    p = sch.fuse(*outer) if len(outer) > 1 else outer[0]
    if work >= PARALLEL_WORK:
        sch.parallel(p)
    _vectorize(sch, inner[-1], lanes)
    if len(inner) == 2:
        sch.unroll(inner[0])
    for b in tails:
        _vectorize_last(sch, b, lanes, skip=1)
    if r_loops:
        init = sch.decompose_reduction(block, r_loops[0])
        init_loops = sch.get_loops(init)
        _vectorize(sch, init_loops[-1], lanes)
        if len(inner) == 2:
            sch.unroll(init_loops[-2])
    return sch


def _try(primitive: Callable[..., Any], *args: Any) -> bool:
    """Apply a schedule primitive; False when TVM refuses it (its ScheduleError)."""
    try:
        primitive(*args)
    except Exception:  # noqa: BLE001 - TVM's ScheduleError and friends
        return False
    return True


def _rows(extent: int | None, most: int, m: int) -> int:
    """Output cells per tile: the most that fit in the registers, or fewer where that wastes
    less. A number of rows that divides the axis comes first, if it is at least half the
    most (128 tokens: 4 rows, not 6): a last, partial tile puts a bound check on every row of
    every tile, which LLVM compiled into slower code (the Transformer 16 % faster with 4, and
    MobileNetV2 6 %; ResNet-18's 56 x 56 with 4 the same as with 6). Else the cost model: a
    tile costs its FMAs, at least 8 (fewer accumulators leave the FMA units waiting on their
    latency), plus a little for its loads and loop (7 x 7 = 49 cells: 5 per tile, not 6).
    Over a symbolic axis (`extent` None), one row: see `_tile`."""
    if extent is None:
        return 1
    even = max(r for r in range(1, min(most, extent) + 1) if extent % r == 0)
    if 2 * even >= min(most, extent):
        return even
    return min(range(1, min(most, extent) + 1), key=lambda r: -(-extent // r) * (max(r * m, 8) + 2))


def _fuse_rows(
    sch: Any,
    block: Any,
    tails: Sequence[Any],
    out_buffer: Any,
    run: Sequence[int],
    extents: Sequence[int | None],
) -> bool:
    """Fuse the spatial axes at `run` of the reduction block, of its accumulator and of the
    blocks after it into one axis. False (nothing changed) when a block after it does not
    iterate over the same cells in the same order."""
    sizes = [int(extents[i]) for i in run]  # type: ignore[arg-type]
    n_out = len(out_buffer.shape)
    for b in tails:
        s = sch.get(b)
        dom = [iv.dom.extent for iv in s.iter_vars]
        if (
            len(dom) != n_out
            or any(kd != SPATIAL for kd in _kinds(s))
            or [int(d) if hasattr(d, "value") else None for d in dom][run[0] : run[-1] + 1] != sizes
            or not _bindings_are_loops(sch, b)
        ):
            return False
    index_map = tvm().tirx.IndexMap.from_func

    sch.transform_layout(block, ("write", 0), _fuser(run, sizes))
    for b in (block, *tails):
        sch.transform_block_layout(b, index_map(_fuser(run, sizes), ndim=len(sch.get(b).iter_vars)))
    return True


# --- rule 2: TVM's CPU reduction rule --------------------------------------------------------


def _reduction(func: Any, info: Cpu) -> Any:
    """Softmax, layernorm and means over the last axis: dlight's CPU `Reduction` rule. Not
    for one row (every reduction block computing a single value: a softmax at batch 1), which
    keeps TVM's loop nest: there the rule nests every block under a parallel loop over the
    last block's elements, computing the whole softmax once per element (MobileNetV2's
    1000-class softmax built with --dim N=1: 1.4 ms a call, against microseconds)."""
    from tvm.s_tir import dlight

    sch = tvm().s_tir.Schedule(func)
    reductions = [s for s in map(sch.get, _blocks(sch)) if REDUCE in _kinds(s)]
    if reductions and all(
        _is_one(iv.dom.extent) for s in reductions for iv in s.iter_vars if iv.iter_type == SPATIAL
    ):
        return None
    return dlight.cpu.Reduction().apply(func, info.target, False)


def _is_one(extent: Any) -> bool:
    return isinstance(extent, tvm().tirx.IntImm) and int(extent) == 1


# --- rule 3: injective -----------------------------------------------------------------------


def _injective(func: Any, info: Cpu) -> Any:
    """A PrimFunc of spatial blocks only: each producer inlined into its readers where TVM
    can, the rest as one parallel loop with the last axis vectorized."""
    sch = tvm().s_tir.Schedule(func)
    blocks = _blocks(sch)
    if not blocks or any(REDUCE in _kinds(sch.get(b)) for b in blocks):
        return None
    for b in blocks[:-1]:
        _try(sch.compute_inline, b)
    for b in _blocks(sch):
        lanes = info.lanes(sch.get(b).writes[0].source.dtype.bits)
        _parallel_outer(sch, b, lanes)
    return sch


RULES: tuple[tuple[str, Callable[[Any, Cpu], Any]], ...] = (
    ("tile", _tile),
    ("reduction", _reduction),
    ("injective", _injective),
)
