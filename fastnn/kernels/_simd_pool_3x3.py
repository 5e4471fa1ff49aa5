"""Explicit-SIMD steps of 3x3 stride-2 max pooling (:mod:`fastnn.kernels.pool_3x3_s2`).

The same rule as every max pooling kernel here (the first maximum in row-major window
order wins; a NaN beats every number, the first NaN among NaNs), taken in two steps over
``lanes`` values at a time, with masked loads and stores for the lanes past ``count``:

* :func:`pool3_rows_step`, vertical: of three rows of a plane, top to bottom, a lower
  value replaces the one above only where it beats it, so each column keeps its topmost
  maximum and that one's plane index;
* :func:`pool3_taps_step`, horizontal at stride 2: of the three column candidates of each
  window (split out of two vectors by shuffles), the one that beats the others, a tie
  (equal, or both NaN) going to the smaller plane index: the window's row-major first
  maximum.

Loads and stores are unchecked: callers keep every index they pass in range.
"""

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from ._simd import Vector, splat
from ._simd_pool import (
    _I32,
    _I64,
    _is_floats,
    _is_ints,
    _lane_mask,
    _load,
    _masked_load,
    _masked_store,
    _pick,
)


def _i64(context, builder, value, value_type):
    return context.cast(builder, value, value_type, types.int64)


@intrinsic
def pool3_rows_step(typingctx, x, o0, o1, o2, m, am, at, count):
    """The vertical step on ``count`` <= lanes columns, for q < count:

    of x[o0 + q], x[o1 + q], x[o2 + q] (three rows of one plane, top to bottom; a window
    clipped to fewer rows repeats its last one, which then never wins), the first maximum,
    into m[at + q], and its plane index o_r + q (int32) into am[at + q]. x and m: flat floats
    of one dtype (x a plane or a stack of them, the offsets within one plane); am: flat int32.
    """
    if not (_is_floats(x) and _is_floats(m) and x.dtype == m.dtype and _is_ints(am, 32)):
        return None
    lanes = Vector(x.dtype).lanes
    sig = types.none(x, o0, o1, o2, m, am, at, count)

    def codegen(context, builder, signature, args):
        vx, v0, v1, v2, vm, vam, vat, vcount = args
        ts = signature.args
        vec = ir.VectorType(context.get_value_type(x.dtype), lanes)
        mask = _lane_mask(builder, _i64(context, builder, vcount, ts[7]), lanes)
        iota = ir.Constant(ir.VectorType(_I32, lanes), list(range(lanes)))
        rows = []
        for value, value_type in ((v0, ts[1]), (v1, ts[2]), (v2, ts[3])):
            offset = _i64(context, builder, value, value_type)
            row = _masked_load(context, builder, ts[0], vx, offset, vec, mask)
            index = builder.add(splat(builder, builder.trunc(offset, _I32), lanes), iota)
            rows.append((row, index))
        best, index = rows[0]
        for row, row_index in rows[1:]:
            best, index = _pick(builder, row, best, row_index, index, False)
        at = _i64(context, builder, vat, ts[6])
        _masked_store(context, builder, ts[4], vm, at, best, mask)
        _masked_store(context, builder, ts[5], vam, at, index, mask)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def pool3_taps_step(typingctx, m, am, e, count, y, argmax, k):
    """The horizontal step on ``count`` <= lanes windows at stride 2, for q < count:

    of the three candidates m[e + 2q + t], t = 0, 1, 2 (with their plane indices am[...]),
    the one that beats the others, a tie going to the smaller index, into y[k + q], and its
    index, widened to int64, into argmax[k + q]. Reads m and am at e .. e + 2 * lanes + 1
    whatever ``count``: the caller keeps that in range. m, y: flat floats of one dtype;
    am: flat int32 (from :func:`pool3_rows_step`); argmax: flat int64.
    """
    if not (
        _is_floats(m) and _is_floats(y) and m.dtype == y.dtype and _is_ints(am, 32) and _is_ints(argmax, 64)
    ):
        return None
    lanes = Vector(m.dtype).lanes
    sig = types.none(m, am, e, count, y, argmax, k)

    def codegen(context, builder, signature, args):
        vm, vam, ve, vcount, vy, varg, vk = args
        ts = signature.args
        fvec = ir.VectorType(context.get_value_type(m.dtype), lanes)
        ivec = ir.VectorType(_I32, lanes)
        e = _i64(context, builder, ve, ts[2])
        evens = ir.Constant(ir.VectorType(_I32, lanes), list(range(0, 2 * lanes, 2)))
        odds = ir.Constant(ir.VectorType(_I32, lanes), list(range(1, 2 * lanes, 2)))
        taps = []
        for start, pick in ((e, evens), (e, odds), (builder.add(e, ir.Constant(_I64, 2)), evens)):
            second = builder.add(start, ir.Constant(_I64, lanes))
            pair = [_load(context, builder, ts[0], vm, at, types.int64, fvec) for at in (start, second)]
            v = builder.shuffle_vector(*pair, pick)
            pair = [_load(context, builder, ts[1], vam, at, types.int64, ivec) for at in (start, second)]
            p = builder.shuffle_vector(*pair, pick)
            taps.append((v, p))
        best, index = taps[0]
        for value, value_index in taps[1:]:
            best, index = _pick(builder, value, best, value_index, index, True)
        mask = _lane_mask(builder, _i64(context, builder, vcount, ts[3]), lanes)
        k = _i64(context, builder, vk, ts[6])
        _masked_store(context, builder, ts[4], vy, k, best, mask)
        _masked_store(context, builder, ts[5], varg, k, builder.sext(index, ir.VectorType(_I64, lanes)), mask)
        return context.get_dummy_value()

    return sig, codegen
