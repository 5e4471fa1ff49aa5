"""Explicit-SIMD steps of 2x2 stride-2 max pooling, forward
(:func:`~fastnn.kernels.pool.maxpool_2x2_image`) and backward (the routing in
:func:`~fastnn.kernels.conv.padding._pad_pooled`).

Max pooling carries an argmax, an integer beside every float, and picks between
candidates with NaN-aware compares; LLVM does not vectorise the scalar form of the
second step (pairs of neighbours, a stride-2 access), so both steps are written here
as whole-vector LLVM IR: ``lanes`` floats (512 bits) and their plane indices as
``lanes`` int32 at a time, the stride-2 pairs split by two shuffles.

The rule is that of every max pooling kernel here: the first maximum in row-major
window order wins, and a NaN beats every number (the first NaN, among NaNs).
Loads and stores are unaligned and unchecked: callers keep every index in range.
"""

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from ._simd import Vector, _element_pointer, splat

_I32 = ir.IntType(32)
_I64 = ir.IntType(64)


def _load(context, builder, array_type, array, index, index_type, vector):
    ptr = _element_pointer(context, builder, array_type, array, index, index_type)
    return builder.load(builder.bitcast(ptr, vector.as_pointer()), align=array_type.dtype.bitwidth // 8)


def _store(context, builder, array_type, array, index, index_type, value):
    ptr = _element_pointer(context, builder, array_type, array, index, index_type)
    builder.store(value, builder.bitcast(ptr, value.type.as_pointer()), align=array_type.dtype.bitwidth // 8)


def _lane_mask(builder, count, lanes, first=0):
    """<lanes x i1>: lane q is on when first + q < count (an i64 value)."""
    lane = ir.Constant(ir.VectorType(_I64, lanes), [first + q for q in range(lanes)])
    return builder.icmp_signed("<", lane, splat(builder, count, lanes))


def _masked_access(builder, operation, vector, ptr, align, mask, value=None):
    """llvm.masked.load (value None: off lanes read as zeros) or llvm.masked.store."""
    name = f"llvm.masked.{operation}.v{vector.count}{vector.element.intrinsic_name}.p0"
    align = ir.Constant(_I32, align)
    if value is None:
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vector, [ptr.type, _I32, mask.type, vector]), name
        )
        return builder.call(fn, [ptr, align, mask, ir.Constant(vector, None)])
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [vector, ptr.type, _I32, mask.type]), name
    )
    return builder.call(fn, [value, ptr, align, mask])


def _masked_load(context, builder, array_type, array, index, vector, mask):
    ptr = _element_pointer(context, builder, array_type, array, index, types.int64)
    ptr = builder.bitcast(ptr, vector.as_pointer())
    return _masked_access(builder, "load", vector, ptr, array_type.dtype.bitwidth // 8, mask)


def _masked_store(context, builder, array_type, array, index, value, mask):
    ptr = _element_pointer(context, builder, array_type, array, index, types.int64)
    ptr = builder.bitcast(ptr, value.type.as_pointer())
    _masked_access(builder, "store", value.type, ptr, array_type.dtype.bitwidth // 8, mask, value)


def _nan_beats(builder, new, old):
    """new > old, or new is NaN and old is not: the candidate takes over."""
    greater = builder.fcmp_ordered(">", new, old)
    new_nan = builder.fcmp_unordered("uno", new, new)
    old_num = builder.fcmp_ordered("ord", old, old)
    return builder.or_(greater, builder.and_(new_nan, old_num))


def _pick_rows(builder, top, bottom, index, row, lanes):
    """The vertical step on two rows of ``lanes`` columns: the bottom value where it beats
    the top one, else the top one, and the winner's plane index (index + q on top,
    index + row + q below; index and row integer scalars of the indices' type)."""
    take = _nan_beats(builder, bottom, top)
    lane = ir.Constant(ir.VectorType(index.type, lanes), list(range(lanes)))
    first = builder.add(splat(builder, index, lanes), lane)
    second = builder.add(first, splat(builder, row, lanes))
    return builder.select(take, bottom, top), builder.select(take, second, first)


def _pick(builder, new, old, new_index, old_index, ties_to_smaller):
    """(value, index) of ``new`` where it beats ``old`` (greater, or a NaN over a number), or
    with ``ties_to_smaller`` where it ties (equal, or both NaN) with a smaller index."""
    take = _nan_beats(builder, new, old)
    if ties_to_smaller:
        tie = builder.or_(
            builder.fcmp_ordered("==", new, old),
            builder.and_(builder.fcmp_unordered("uno", new, new), builder.fcmp_unordered("uno", old, old)),
        )
        take = builder.or_(take, builder.and_(tie, builder.icmp_signed("<", new_index, old_index)))
    return builder.select(take, new, old), builder.select(take, new_index, old_index)


def _pick_pairs(builder, v0, v1, p0, p1, evens, odds):
    """The horizontal step: of each pair (e, e + 1) of the lanes of v0 then v1 that the
    shuffle masks ``evens`` and ``odds`` select, the second where it beats the first (or
    ties, both equal or both NaN, with the smaller index), with its index from p0, p1."""
    first = builder.shuffle_vector(v0, v1, evens)
    second = builder.shuffle_vector(v0, v1, odds)
    pfirst = builder.shuffle_vector(p0, p1, evens)
    psecond = builder.shuffle_vector(p0, p1, odds)
    return _pick(builder, second, first, psecond, pfirst, True)


def _is_floats(a):
    return isinstance(a, types.Array) and a.ndim == 1 and isinstance(a.dtype, types.Float)


def _is_ints(a, bits):
    return (
        isinstance(a, types.Array)
        and a.ndim == 1
        and isinstance(a.dtype, types.Integer)
        and a.dtype.bitwidth == bits
    )


@intrinsic
def pool_rows_step(typingctx, x, top, bottom, top_index, row, m, am, at):
    """The vertical step of 2x2 max pooling at ``lanes`` columns, for q < lanes:

    m[at + q] = x[bottom + q] if it beats x[top + q] (greater, or a NaN over a number),
    else x[top + q]; am[at + q] = the winner's plane index, top_index + q or
    top_index + row + q (``row``: the plane's row length).
    x, m: flat float arrays of one dtype; am: flat int32.
    """
    if not (_is_floats(x) and _is_floats(m) and x.dtype == m.dtype and _is_ints(am, 32)):
        return None
    lanes = Vector(x.dtype).lanes
    sig = types.none(x, top, bottom, top_index, row, m, am, at)

    def codegen(context, builder, signature, args):
        vx, vtop, vbottom, vindex, vrow, vm, vam, vat = args
        ts = signature.args
        vec = ir.VectorType(context.get_value_type(x.dtype), lanes)
        a = _load(context, builder, ts[0], vx, vtop, ts[1], vec)
        b = _load(context, builder, ts[0], vx, vbottom, ts[2], vec)
        index = builder.trunc(context.cast(builder, vindex, ts[3], types.int64), _I32)
        row = builder.trunc(context.cast(builder, vrow, ts[4], types.int64), _I32)
        m, am = _pick_rows(builder, a, b, index, row, lanes)
        _store(context, builder, ts[5], vm, vat, ts[7], m)
        _store(context, builder, ts[6], vam, vat, ts[7], am)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def pool_pairs_step(typingctx, m, am, k, y, argmax):
    """The horizontal step of 2x2 max pooling at ``lanes`` outputs, for q < lanes:

    with e = 2(k + q), y[k + q] = m[e + 1] if it beats m[e] (greater, a NaN over a number,
    or a tie, both equal or both NaN, with the smaller plane index), else m[e];
    argmax[k + q] = the winner's am entry, widened to int64. m: flat floats, am: flat
    int32 (from :func:`pool_rows_step`), y: floats of m's dtype, argmax: int64.
    """
    if not (
        _is_floats(m) and _is_floats(y) and m.dtype == y.dtype and _is_ints(am, 32) and _is_ints(argmax, 64)
    ):
        return None
    lanes = Vector(m.dtype).lanes
    sig = types.none(m, am, k, y, argmax)

    def codegen(context, builder, signature, args):
        vm, vam, vk, vy, varg = args
        ts = signature.args
        fvec = ir.VectorType(context.get_value_type(m.dtype), lanes)
        ivec = ir.VectorType(_I32, lanes)
        k64 = context.cast(builder, vk, ts[2], types.int64)
        e = builder.mul(k64, ir.Constant(_I64, 2))
        e2 = builder.add(e, ir.Constant(_I64, lanes))
        v0 = _load(context, builder, ts[0], vm, e, types.int64, fvec)
        v1 = _load(context, builder, ts[0], vm, e2, types.int64, fvec)
        p0 = _load(context, builder, ts[1], vam, e, types.int64, ivec)
        p1 = _load(context, builder, ts[1], vam, e2, types.int64, ivec)
        evens = ir.Constant(ir.VectorType(_I32, lanes), list(range(0, 2 * lanes, 2)))
        odds = ir.Constant(ir.VectorType(_I32, lanes), list(range(1, 2 * lanes, 2)))
        y, winner = _pick_pairs(builder, v0, v1, p0, p1, evens, odds)
        _store(context, builder, ts[3], vy, vk, ts[2], y)
        _store(context, builder, ts[4], varg, vk, ts[2], builder.sext(winner, ir.VectorType(_I64, lanes)))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def route_2x2_step(typingctx, dyp, pooled, argmax, k, count, corner, OWc, dst, top, Win):
    """Max pooling's backward pass, with the ReLU under it, for ``count`` <= lanes 2x2
    stride-2 windows in a row, k + q (q < count) in the flat pooled arrays:

    with g = 0 + dyp[k + q] where pooled[k + q] > 0, else 0, and d = argmax[k + q] -
    (corner + 2q) the winner's place in its window (``corner``: the plane index of window
    k's top-left pixel in the pooling's input, whose rows are OWc long),
    dst[top + 2q + a + b*Win] = g if d == a + b*OWc else 0, for a, b in {0, 1}: each of
    the window's four pixels written once, at its place in rows of dst Win apart.
    Returns False if a window with pooled > 0 has its argmax outside it (nothing is then
    known about dst). dyp, pooled, dst: flat floats of one dtype; argmax: flat int64.
    """
    if not (
        _is_floats(dyp)
        and _is_floats(pooled)
        and _is_floats(dst)
        and dyp.dtype == pooled.dtype == dst.dtype
        and _is_ints(argmax, 64)
    ):
        return None
    lanes = Vector(dyp.dtype).lanes
    sig = types.boolean(dyp, pooled, argmax, k, count, corner, OWc, dst, top, Win)

    def codegen(context, builder, signature, args):
        vdyp, vpooled, vargmax, vk, vcount, vcorner, vowc, vdst, vtop, vwin = args
        ts = signature.args
        k64, count64, corner64, owc64, top64, win64 = (
            context.cast(builder, v, t, types.int64)
            for v, t in zip(
                (vk, vcount, vcorner, vowc, vtop, vwin), (ts[3], ts[4], ts[5], ts[6], ts[8], ts[9])
            )
        )
        fvec = ir.VectorType(context.get_value_type(dyp.dtype), lanes)
        ivec = ir.VectorType(_I64, lanes)
        zeros = ir.Constant(fvec, None)
        valid = _lane_mask(builder, count64, lanes)
        g = _masked_load(context, builder, ts[0], vdyp, k64, fvec, valid)
        p = _masked_load(context, builder, ts[1], vpooled, k64, fvec, valid)
        a = _masked_load(context, builder, ts[2], vargmax, k64, ivec, valid)
        live = builder.and_(valid, builder.fcmp_ordered(">", p, zeros))
        g = builder.select(live, builder.fadd(zeros, g), zeros)
        twice = ir.Constant(ivec, [2 * q for q in range(lanes)])
        d = builder.sub(a, builder.add(splat(builder, corner64, lanes), twice))
        one = ir.Constant(ivec, [1] * lanes)
        row = splat(builder, owc64, lanes)
        places = (ir.Constant(ivec, None), one, row, builder.add(row, one))
        hits = [builder.icmp_signed("==", d, place) for place in places]
        picked = [builder.select(hit, g, zeros) for hit in hits]
        inside = builder.or_(builder.or_(hits[0], hits[1]), builder.or_(hits[2], hits[3]))
        stray = builder.and_(live, builder.not_(inside))
        pairs = builder.add(count64, count64)
        low = ir.Constant(ir.VectorType(_I32, lanes), [q // 2 + (q % 2) * lanes for q in range(lanes)])
        high = ir.Constant(
            ir.VectorType(_I32, lanes), [lanes // 2 + q // 2 + (q % 2) * lanes for q in range(lanes)]
        )
        first_half = _lane_mask(builder, pairs, lanes)
        second_half = _lane_mask(builder, pairs, lanes, lanes)
        span = ir.Constant(_I64, lanes)
        for left, right, at in (
            (picked[0], picked[1], top64),
            (picked[2], picked[3], builder.add(top64, win64)),
        ):
            _masked_store(
                context, builder, ts[7], vdst, at, builder.shuffle_vector(left, right, low), first_half
            )
            _masked_store(
                context,
                builder,
                ts[7],
                vdst,
                builder.add(at, span),
                builder.shuffle_vector(left, right, high),
                second_half,
            )
        bits = builder.bitcast(stray, ir.IntType(lanes))
        return builder.icmp_unsigned("==", bits, ir.Constant(ir.IntType(lanes), 0))

    return sig, codegen


def _pool_pair(context, builder, top, bottom, index, row, pooled_type, pooled, argmax_type, argmax, at):
    """Both pooling steps on two rows in registers (see :func:`pool_tile_put`); i64
    scalars."""
    lanes = top.type.count
    half = lanes // 2
    m, am = _pick_rows(builder, top, bottom, builder.trunc(index, _I32), builder.trunc(row, _I32), lanes)
    evens = ir.Constant(ir.VectorType(_I32, half), list(range(0, lanes, 2)))
    odds = ir.Constant(ir.VectorType(_I32, half), list(range(1, lanes, 2)))
    y, winner = _pick_pairs(builder, m, m, am, am, evens, odds)
    _store(context, builder, pooled_type, pooled, at, types.int64, y)
    _store(
        context,
        builder,
        argmax_type,
        argmax,
        at,
        types.int64,
        builder.sext(winner, ir.VectorType(_I64, half)),
    )


@intrinsic
def pool_tile_put(typingctx, top, bottom, index, row, pooled, argmax, at):
    """Both steps of 2x2 max pooling on two vectors in registers, rows 2i and 2i + 1 of a
    plane at ``lanes`` columns from an even column (``index``: the plane index of the top
    one's first lane, in int32 range; ``row``: the plane's row length): for q < lanes / 2,
    pooled[at + q] = the maximum of the window of columns 2q, 2q + 1 of both rows, by the
    rule of :func:`pool_rows_step` then :func:`pool_pairs_step`, and argmax[at + q] its
    plane index. top, bottom: Vectors; pooled: flat floats of their dtype; argmax: int64.
    """
    if not (
        isinstance(top, Vector)
        and top == bottom
        and _is_floats(pooled)
        and pooled.dtype == top.dtype
        and _is_ints(argmax, 64)
    ):
        return None
    sig = types.none(top, bottom, index, row, pooled, argmax, at)

    def codegen(context, builder, signature, args):
        vtop, vbottom, vindex, vrow, vpooled, vargmax, vat = args
        ts = signature.args
        index, row, at = (
            context.cast(builder, v, t, types.int64)
            for v, t in zip((vindex, vrow, vat), (ts[2], ts[3], ts[6]))
        )
        _pool_pair(context, builder, vtop, vbottom, index, row, ts[4], vpooled, ts[5], vargmax, at)
        return context.get_dummy_value()

    return sig, codegen
