"""Explicit SIMD values of the host's vector width for register-blocked kernels.

LLVM's auto-vectoriser turns a loop like ``acc[j] += w * x[j]`` into vector code,
but the accumulators stay in memory: every multiply-add reloads and stores them.
A register-blocked micro-kernel keeps a tile of the output in vector registers
while it runs over the whole reduction, the way BLAS and oneDNN kernels do. Numba
has no vector type, so this module adds one: :class:`Vector` is an LLVM
``<lanes x float>`` value (:data:`VECTOR_BYTES` wide: 16 float32 or 8 float64 lanes
with AVX-512, 8 or 4 with AVX2), and the
intrinsics below load, broadcast, fuse-multiply-add and store it. Local variables
of this type live in registers after LLVM's mem2reg pass.

Every function takes its element type from its array or scalar argument, so one
kernel source serves float32 and float64. Loads and stores are unaligned and
unchecked: the caller keeps ``i + lanes(a) <= a.size``.
"""

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, models, register_model


def _host_vector_bytes() -> int:
    """64 where the CPU has AVX-512 (32 registers of 512 bits), else 32 (AVX2: 16 of 256)."""
    try:
        from llvmlite import binding

        has_avx512 = bool(binding.get_host_cpu_features().get("avx512f"))
    except Exception:  # no feature list on this platform: the narrower vectors are safe anywhere
        has_avx512 = False
    return 64 if has_avx512 else 32


#: Bytes in one vector: the host's register width, 64 with AVX-512, 32 otherwise. A
#: vector wider than the registers is split by LLVM in two, which doubles a register
#: tile's accumulators and sends them to the stack (AVX2 has 16 registers).
VECTOR_BYTES = _host_vector_bytes()


class Vector(types.Type):
    """A SIMD vector of ``VECTOR_BYTES // itemsize`` lanes of ``dtype``."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.lanes = VECTOR_BYTES // (dtype.bitwidth // 8)
        super().__init__(name=f"Vector({dtype} x {self.lanes})")


@register_model(Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.lanes))


def _float_array(a):
    return isinstance(a, types.Array) and a.ndim == 1 and isinstance(a.dtype, types.Float)


def _element_pointer(context, builder, array_type, array, index, index_type):
    ary = context.make_array(array_type)(context, builder, array)
    index = context.cast(builder, index, index_type, types.intp)
    return builder.gep(ary.data, [index])


@intrinsic
def lanes(typingctx, a):
    """The number of lanes of a vector over the elements of array ``a``: 16 (float32) or 8."""
    if not (isinstance(a, types.Array) and isinstance(a.dtype, types.Float)):
        return None
    n = Vector(a.dtype).lanes

    def codegen(context, builder, signature, args):
        return context.get_constant(types.intp, n)

    return types.intp(a), codegen


@intrinsic
def vload(typingctx, a, i):
    """The vector a[i:i + lanes] (1-D contiguous float array, unaligned)."""
    if not (_float_array(a) and isinstance(i, types.Integer)):
        return None
    vt = Vector(a.dtype)

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, a, args[0], args[1], i)
        vptr = builder.bitcast(ptr, context.get_value_type(vt).as_pointer())
        return builder.load(vptr, align=a.dtype.bitwidth // 8)

    return vt(a, i), codegen


@intrinsic
def vstore(typingctx, a, i, v):
    """a[i:i + lanes] = v (1-D contiguous float array, unaligned)."""
    if not (
        _float_array(a) and isinstance(i, types.Integer) and isinstance(v, Vector) and v.dtype == a.dtype
    ):
        return None

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, a, args[0], args[1], i)
        vptr = builder.bitcast(ptr, context.get_value_type(v).as_pointer())
        builder.store(args[2], vptr, align=a.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.none(a, i, v), codegen


def splat(builder, value, lanes):
    """The LLVM vector of ``lanes`` copies of the scalar LLVM value ``value``."""
    ty = ir.VectorType(value.type, lanes)
    one = builder.insert_element(ir.Constant(ty, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    mask = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
    return builder.shuffle_vector(one, ir.Constant(ty, ir.Undefined), mask)


@intrinsic
def vsplat(typingctx, x):
    """A vector with every lane equal to the scalar float x."""
    if not isinstance(x, types.Float):
        return None
    vt = Vector(x)

    def codegen(context, builder, signature, args):
        return splat(builder, args[0], vt.lanes)

    return vt(x), codegen


@intrinsic
def vbroadcast(typingctx, a, i):
    """A vector with every lane equal to a[i] (no negative-index wraparound code)."""
    if not (_float_array(a) and isinstance(i, types.Integer)):
        return None
    vt = Vector(a.dtype)

    def codegen(context, builder, signature, args):
        value = builder.load(_element_pointer(context, builder, a, args[0], args[1], i))
        return splat(builder, value, vt.lanes)

    return vt(a, i), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    """a * b + c, lane by lane, with one rounding (llvm.fma)."""
    if not (isinstance(a, Vector) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        ty = args[0].type
        suffix = f"v{ty.count}f{ty.element.intrinsic_name[1:]}"  # e.g. v16f32
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ty, [ty] * 3), f"llvm.fma.{suffix}"
        )
        return builder.call(fma, list(args))

    return a(a, b, c), codegen


def _vector_pair(a, b):
    return isinstance(a, Vector) and isinstance(b, Vector) and a.dtype == b.dtype


@intrinsic
def vadd(typingctx, a, b):
    """a + b, lane by lane (no fast-math flags: never regrouped with other additions)."""
    if not _vector_pair(a, b):
        return None

    def codegen(context, builder, signature, args):
        return builder.fadd(args[0], args[1])

    return a(a, b), codegen


@intrinsic
def vsub(typingctx, a, b):
    """a - b, lane by lane (no fast-math flags)."""
    if not _vector_pair(a, b):
        return None

    def codegen(context, builder, signature, args):
        return builder.fsub(args[0], args[1])

    return a(a, b), codegen


@intrinsic
def vrelu(typingctx, v):
    """max(v, 0) lane by lane, NaN staying NaN (v <= 0 selects zero, an ordered compare)."""
    if not isinstance(v, Vector):
        return None

    def codegen(context, builder, signature, args):
        zeros = ir.Constant(args[0].type, None)
        return builder.select(builder.fcmp_ordered("<=", args[0], zeros), zeros, args[0])

    return v(v), codegen


@intrinsic
def vwhere_positive(typingctx, v, m):
    """v where m > 0, else 0, lane by lane (an ordered compare: a NaN in m gives 0)."""
    if not (isinstance(v, Vector) and v == m):
        return None

    def codegen(context, builder, signature, args):
        zeros = ir.Constant(args[0].type, None)
        return builder.select(builder.fcmp_ordered(">", args[1], zeros), args[0], zeros)

    return v(v, m), codegen


@intrinsic
def vsum(typingctx, v):
    """The sum of v's lanes as a scalar, added in a fixed pairwise order (halves folded)."""
    if not isinstance(v, Vector):
        return None

    def codegen(context, builder, signature, args):
        value = args[0]
        width = v.lanes
        while width > 1:
            half = width // 2
            lo = builder.shuffle_vector(
                value, value, ir.Constant(ir.VectorType(ir.IntType(32), half), list(range(half)))
            )
            hi = builder.shuffle_vector(
                value, value, ir.Constant(ir.VectorType(ir.IntType(32), half), list(range(half, width)))
            )
            value = builder.fadd(lo, hi)
            width = half
        return builder.extract_element(value, ir.Constant(ir.IntType(32), 0))

    return v.dtype(v), codegen


@intrinsic
def wide_vectors(typingctx):
    """Let LLVM vectorise the enclosing function with 512-bit vectors (emits no code).

    LLVM tunes AVX-512 CPUs to prefer 256-bit vectors, halving the FMA width of the
    auto-vectorised loops here; the function attribute ``prefer-vector-width=512``
    lifts that for the function being compiled. Call it inside a prange body: Numba
    outlines that body into its own function. A no-op where AVX-512 is missing.
    """

    def codegen(context, builder, signature, args):
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()

    return types.none(), codegen


__all__ = [
    "Vector",
    "VECTOR_BYTES",
    "lanes",
    "vload",
    "vstore",
    "vsplat",
    "vbroadcast",
    "vfma",
    "vadd",
    "vsub",
    "vrelu",
    "vwhere_positive",
    "vsum",
    "wide_vectors",
]
