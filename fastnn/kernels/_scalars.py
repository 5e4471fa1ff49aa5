"""Dtype-preserving constants for generic kernels, and constants typed as variables.

``0.5 * x`` promotes a float32 ``x`` to float64 in Numba, and so does ``1 + x``;
``typed(x, 0.5)`` is a constant of ``x``'s own dtype instead.

Numba compiles a jitted function once per tuple of argument types, and a literal
argument (``0``, ``False``, a module constant) has a type of its own: a call with
literals beside a call with variables compiles the callee, and everything it calls,
twice. ``runtime(0)`` is a plain int64 0, so both calls share one compilation.
"""

from numba.core import types
from numba.extending import intrinsic


@intrinsic
def typed(typingctx, array, value):
    """``value`` as a scalar of ``array.dtype`` (a cast, no allocation)."""
    if not (isinstance(array, types.Array) and isinstance(value, (types.Number, types.Boolean))):
        return None
    dtype = array.dtype

    def codegen(context, builder, signature, args):
        return context.cast(builder, args[1], signature.args[1], dtype)

    return dtype(array, value), codegen


@intrinsic
def runtime(typingctx, value):
    """``value`` typed as a variable of its type (int64, bool, ...), not as a literal."""
    plain = types.unliteral(value)

    def codegen(context, builder, signature, args):
        return context.cast(builder, args[0], signature.args[0], plain)

    return plain(value), codegen
