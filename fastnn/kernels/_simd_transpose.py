"""A square block of a matrix transposed in vector registers, with an optional ReLU mask.

``_grad_rows`` of the stride-1 direct backward pass turns dy (F, P), one row per
output channel, into pixel-major rows (P, Fp) for the backward-weights GEMM tile. Element
by element, each store went to another row; on a 1x1 convolution that cost about as much
as the tile's own multiply-adds (``benchmarks/bench_fast_paths.py`` times the two ways).
:func:`vtranspose_block` moves a block of lanes x lanes elements at a time: ``lanes``
vector loads, log2(lanes) rounds of ``lanes`` two-vector shuffles (each round swaps the
off-diagonal sub-blocks of half the size of the round before), ``lanes`` vector stores.
Plain data movement: the values are the ones a scalar copy writes, bit for bit.
"""

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from ._simd import Vector, _element_pointer, _float_array, splat


def _transposed(builder, rows, lanes):
    """The columns of the ``lanes`` LLVM vectors ``rows`` (a lanes x lanes block) as vectors."""
    rows = list(rows)
    half = lanes // 2
    i32 = ir.IntType(32)
    while half >= 1:
        low = [j if j & half == 0 else lanes + j - half for j in range(lanes)]
        high = [j + half if j & half == 0 else lanes + j for j in range(lanes)]
        low_mask = ir.Constant(ir.VectorType(i32, lanes), low)
        high_mask = ir.Constant(ir.VectorType(i32, lanes), high)
        for i in range(lanes):
            if i & half:
                continue
            a, b = rows[i], rows[i + half]
            rows[i] = builder.shuffle_vector(a, b, low_mask)
            rows[i + half] = builder.shuffle_vector(a, b, high_mask)
        half //= 2
    return rows


@intrinsic
def vtranspose_block(typingctx, src, mask, masked, s0, sstride, dst, d0, dstride):
    """dst[d0 + j*dstride + i] = v(src[s0 + i*sstride + j]) for i, j < lanes(src), where
    v(a) = a, or, when ``masked``, a where mask (read at src's index) > 0 and 0 elsewhere
    (an ordered compare: a NaN in mask gives 0). src, mask, dst: 1-D contiguous arrays of
    one float dtype; every row of the block is read and written whole (the caller keeps
    the indices in bounds)."""
    arrays = (src, mask, dst)
    if not (all(_float_array(a) for a in arrays) and src.dtype == mask.dtype == dst.dtype):
        return None
    if not isinstance(masked, types.Boolean):
        return None
    if not all(isinstance(i, types.Integer) for i in (s0, sstride, d0, dstride)):
        return None
    vt = Vector(src.dtype)
    lanes = vt.lanes

    def codegen(context, builder, signature, args):
        src_v, mask_v, masked_v, s0_v, sstride_v, dst_v, d0_v, dstride_v = args
        vptr_type = context.get_value_type(vt).as_pointer()
        align = src.dtype.bitwidth // 8
        idx = ir.IntType(64)
        s0_v = context.cast(builder, s0_v, signature.args[3], types.intp)
        sstride_v = context.cast(builder, sstride_v, signature.args[4], types.intp)
        d0_v = context.cast(builder, d0_v, signature.args[6], types.intp)
        dstride_v = context.cast(builder, dstride_v, signature.args[7], types.intp)
        zero = ir.Constant(context.get_value_type(vt), None)
        rows = []
        for i in range(lanes):
            at = builder.add(s0_v, builder.mul(sstride_v, ir.Constant(idx, i)))
            ptr = _element_pointer(context, builder, src, src_v, at, types.intp)
            row = builder.load(builder.bitcast(ptr, vptr_type), align=align)
            mptr = _element_pointer(context, builder, mask, mask_v, at, types.intp)
            m = builder.load(builder.bitcast(mptr, vptr_type), align=align)
            keep = builder.fcmp_ordered(">", m, zero)
            row = builder.select(builder.or_(keep, splat(builder, builder.not_(masked_v), lanes)), row, zero)
            rows.append(row)
        for j, column in enumerate(_transposed(builder, rows, lanes)):
            at = builder.add(d0_v, builder.mul(dstride_v, ir.Constant(idx, j)))
            ptr = _element_pointer(context, builder, dst, dst_v, at, types.intp)
            builder.store(column, builder.bitcast(ptr, vptr_type), align=align)
        return context.get_dummy_value()

    return types.none(src, mask, masked, s0, sstride, dst, d0, dstride), codegen


__all__ = ["vtranspose_block"]
