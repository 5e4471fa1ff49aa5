"""Strided matrix products through the BLAS behind Numba's ``np.dot``, without copies.

Numba's ``np.dot`` copies any operand that is not C- or F-contiguous, so a block of
columns ``x[:, k0:k1]`` or a transposed block ``x[:, c0:c1].T`` costs a full copy
before BLAS sees it. BLAS itself takes such blocks as they are: a matrix is a
pointer, a leading dimension and a transpose flag. :func:`gemm` passes them so,
through the same ``numba_xxgemm`` entry point of Numba's helper library that
``np.dot`` uses (SciPy's BLAS, kept single-threaded by :mod:`fastnn._blas`).

Row-major C = A @ B is column-major C^T = B^T @ A^T, so the call hands BLAS the
operands swapped: every row-major matrix with unit stride along its rows is a
column-major matrix of its transpose with leading dimension = its row stride.
"""

from llvmlite import ir
from numba.core import cgutils, types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.linalg import ensure_blas, get_blas_kind

from .._config import jit
from ._scalars import typed

_CHAR = ir.IntType(8)
_INTP = ir.IntType(64)
_VOIDP = ir.IntType(8).as_pointer()


@intrinsic
def _xxgemm(typingctx, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Column-major BLAS ?gemm: c = alpha * op(a) @ op(b) + beta * c, op by 'n'/'t' codes.

    a, b, c: arrays (only their data pointers are passed); m, n, k, lda, ldb, ldc:
    integers as BLAS defines them; returns the wrapper's status (0 on success).
    """
    arrays = (a, b, c)
    if not all(isinstance(t, types.Array) and isinstance(t.dtype, types.Float) for t in arrays):
        return None
    if not a.dtype == b.dtype == c.dtype:
        return None
    dtype = c.dtype
    sig = types.int32(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, signature, args):
        ensure_blas()
        fnty = ir.FunctionType(
            ir.IntType(32),
            [
                _CHAR,
                _CHAR,
                _CHAR,
                _INTP,
                _INTP,
                _INTP,
                _VOIDP,
                _VOIDP,
                _INTP,
                _VOIDP,
                _INTP,
                _VOIDP,
                _VOIDP,
                _INTP,
            ],
        )
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
        (ta, tb, vm, vn, vk, valpha, va, vlda, vb, vldb, vbeta, vc, vldc) = args
        ts = signature.args

        def integer(value, ty):
            return context.cast(builder, value, ty, types.intp)

        def char(value, ty):
            return builder.trunc(integer(value, ty), _CHAR)

        def scalar_slot(value, ty):
            return builder.bitcast(
                cgutils.alloca_once_value(builder, context.cast(builder, value, ty, dtype)), _VOIDP
            )

        def data(value, ty):
            return builder.bitcast(context.make_array(ty)(context, builder, value).data, _VOIDP)

        kind = ir.Constant(_CHAR, ord(get_blas_kind(dtype)))
        return builder.call(
            fn,
            (
                kind,
                char(ta, ts[0]),
                char(tb, ts[1]),
                integer(vm, ts[2]),
                integer(vn, ts[3]),
                integer(vk, ts[4]),
                scalar_slot(valpha, ts[5]),
                data(va, ts[6]),
                integer(vlda, ts[7]),
                data(vb, ts[8]),
                integer(vldb, ts[9]),
                scalar_slot(vbeta, ts[10]),
                data(vc, ts[11]),
                integer(vldc, ts[12]),
            ),
        )

    return sig, codegen


_N = ord("n")
_T = ord("t")

#: :func:`gemm`'s status for operands it cannot pass to BLAS without a copy.
GEMM_BAD_STRIDES = -1000


@jit
def _operand(a):
    """(code, ld) for BLAS to read the row-major matrix a (r, s) as its column-major a^T.

    Rows with unit stride: a^T is stored as is ('n'), leading dimension = the row stride.
    Columns with unit stride (a transposed view): the storage holds a itself ('t').
    Neither: code 0.
    """
    r, s = a.shape
    item = a.itemsize
    if s <= 1 or a.strides[1] == item:
        ld = a.strides[0] // item if r > 1 else s
        return _N, max(ld, s, 1)
    if r <= 1 or a.strides[0] == item:
        ld = a.strides[1] // item if s > 1 else r
        return _T, max(ld, r, 1)
    return 0, 0


@intrinsic
def _any_layout(typingctx, a):
    """The array a, typed as of any layout ('A'): the same view, another Numba type."""
    if not isinstance(a, types.Array):
        return None
    strided = a.copy(layout="A")

    def codegen(context, builder, signature, args):
        view = context.cast(builder, args[0], signature.args[0], strided)
        return impl_ret_borrowed(context, builder, strided, view)

    return strided(a), codegen


@jit
def gemm(a, b, c, beta):
    """c = a @ b + beta * c for 2-D float arrays a (m, k), b (k, n), c (m, n) of one dtype.

    Each of a and b needs unit stride along one axis (a block of columns, of rows, or a
    transposed view of one, any row stride); c along its rows. One BLAS call, no copy.
    With k = 0 the product is zero: c = beta * c. Returns 0, or GEMM_BAD_STRIDES when an
    operand breaks that rule (nothing is computed), or the BLAS wrapper's error code;
    a status instead of an exception, so the call can sit in a ``prange`` body (which
    Numba runs serially when it can raise): callers check it after their loop.
    """
    # one compilation of the body for every mix of C, F and strided operands
    return _gemm(_any_layout(a), _any_layout(b), _any_layout(c), beta)


@jit
def _gemm(a, b, c, beta):
    m, k = a.shape
    n = b.shape[1]
    scale = typed(c, beta)
    zero = typed(c, 0.0)
    if m == 0 or n == 0:
        return 0
    if k == 0:
        for i in range(m):
            for j in range(n):
                c[i, j] = c[i, j] * scale if scale != zero else zero
        return 0
    code_b, ld_b = _operand(b)
    code_a, ld_a = _operand(a)
    if code_a == 0 or code_b == 0 or not (n <= 1 or c.strides[1] == c.itemsize):
        return GEMM_BAD_STRIDES
    ld_c = max(c.strides[0] // c.itemsize if m > 1 else n, n, 1)
    return _xxgemm(code_b, code_a, n, m, k, typed(c, 1.0), b, ld_b, a, ld_a, scale, c, ld_c)


@jit
def check_gemm_status(status):
    """Raise if any entry of the status array from :func:`gemm` calls is not 0."""
    for s in status:
        if s == GEMM_BAD_STRIDES:
            raise ValueError("gemm: an operand has no unit stride along either axis")
        if s != 0:
            raise RuntimeError("gemm: the BLAS wrapper returned an error")
