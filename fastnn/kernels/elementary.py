"""exp and tanh that vectorise: what the sigmoid and tanh kernels evaluate.

Numba lowers ``np.exp`` and ``np.tanh`` to calls of the C library's scalar ``expf`` /
``tanhf`` (no vector math library is linked without Intel's SVML), so a loop over them
runs one element at a time and never vectorises. For float32 this module evaluates
them with Cephes' polynomials (S. Moshier), in plain arithmetic that LLVM turns into AVX
code:

* exp(x) = 2**n * exp(r), n = round(x / ln 2), r = x - n ln 2 in two parts
  (Cody-Waite), exp(r) by a degree-7 polynomial; 2**n built from exponent bits, as
  2**(n//2) 2**(n - n//2) so that n = 128 works.
  Error at most 2 ulp on [-87.3, 88.7]; 0 below it and inf above it (the C library
  returns a subnormal or inf there), NaN stays NaN.
* tanh(x) = x + x**3 P(x**2) for |x| < 0.625, else sign(x) (1 - 2 / (exp(2|x|) + 1)).
  Error at most 3 ulp.

float64 keeps the C library's functions (the reference's accuracy in float64 is the
contract of the float64 kernels). The helpers are compiled with
``_config.FASTMATH_IN_ORDER`` (no ``reassoc``), so LLVM keeps the order of the range
reduction; they are small and get inlined into the loops that call them, keeping their
own flags.
"""

import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic, overload

from .._config import FASTMATH_IN_ORDER, jit

_LOG2E = np.float32(1.44269504088896341)
_LN2_HIGH = np.float32(0.693359375)
_LN2_LOW = np.float32(-2.12194440e-4)
_EXP_HIGH = np.float32(88.72283935546875)
_EXP_LOW = np.float32(-87.33654022216797)
_P0 = np.float32(1.9875691500e-4)
_P1 = np.float32(1.3981999507e-3)
_P2 = np.float32(8.3334519073e-3)
_P3 = np.float32(4.1665795894e-2)
_P4 = np.float32(1.6666665459e-1)
_P5 = np.float32(5.0000001201e-1)
_T0 = np.float32(-5.70498872745e-3)
_T1 = np.float32(2.06390887954e-2)
_T2 = np.float32(-5.37397155531e-2)
_T3 = np.float32(1.33314422036e-1)
_T4 = np.float32(-3.33332819422e-1)
_TANH_SMALL = np.float32(0.625)
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_TWO = np.float32(2.0)
_ZERO = np.float32(0.0)
_INF = np.float32(np.inf)


@intrinsic
def _float32_from_bits(typingctx, bits):
    """The float32 whose bit pattern is the int32 ``bits``."""
    if bits != types.int32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@jit(inline="always")
def _power_of_two(k):
    """2**k as float32, for an int32 -126 <= k <= 127 (built from its exponent bits)."""
    return _float32_from_bits(np.int32((k + np.int32(127)) << np.int32(23)))


@jit(inline="always")
def exp32(x):
    """exp(x) of a float32 x, as float32 (Cephes expf; see the module docstring)."""
    xc = min(max(x, _EXP_LOW), _EXP_HIGH)
    n = np.floor(xc * _LOG2E + _HALF)
    r = xc - n * _LN2_HIGH
    r = r - n * _LN2_LOW
    p = _P0 * r + _P1
    p = p * r + _P2
    p = p * r + _P3
    p = p * r + _P4
    p = p * r + _P5
    p = p * (r * r) + r + _ONE
    k = np.int32(n)
    half = np.int32(k >> 1)
    y = p * _power_of_two(half) * _power_of_two(np.int32(k - half))
    if x < _EXP_LOW:
        y = _ZERO
    if x > _EXP_HIGH:
        y = _INF
    if x != x:
        y = x
    return y


@jit(inline="always")
def tanh32(x):
    """tanh(x) of a float32 x, as float32 (Cephes tanhf; see the module docstring)."""
    z = abs(x)
    s = x * x
    p = _T0 * s + _T1
    p = p * s + _T2
    p = p * s + _T3
    p = p * s + _T4
    small = p * s * x + x
    large = _ONE - _TWO / (exp32(_TWO * z) + _ONE)
    if x < _ZERO:
        large = -large
    y = small if z < _TANH_SMALL else large
    if x != x:
        y = x
    return y


def exp(x):
    """exp(x) for a float scalar: :func:`exp32` for float32, the C library's for float64."""
    return np.exp(x)


def tanh(x):
    """tanh(x) for a float scalar: :func:`tanh32` for float32, the C library's for float64."""
    return np.tanh(x)


@overload(exp, jit_options={"fastmath": FASTMATH_IN_ORDER})
def _exp_overload(x):
    if x == types.float32:
        return lambda x: exp32(x)
    if isinstance(x, types.Float):
        return lambda x: np.exp(x)
    return None


@overload(tanh, jit_options={"fastmath": FASTMATH_IN_ORDER})
def _tanh_overload(x):
    if x == types.float32:
        return lambda x: tanh32(x)
    if isinstance(x, types.Float):
        return lambda x: np.tanh(x)
    return None
