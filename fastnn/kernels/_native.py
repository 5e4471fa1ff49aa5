"""Calling a compiled helper through its address, so a kernel does not link its code.

Numba links the code of every jitted function a kernel calls into the kernel's own
module, and optimises and compiles that module whole. A parallel kernel is four
modules (its ``prange`` body, two wrappers that schedule it, and the kernel), and each
links everything the body calls: the register tiles of the convolution's backward pass
were compiled four times over, lengthening the empty-cache time to the first training
step of deep_convnet (which ``fastnn bench`` reports and ``asv run --python=same --quick
-b bench_compile`` tracks).

A :class:`NativeFunction` is a helper compiled once, for one signature, passed to a
kernel as an argument: the kernel calls it through its address (:func:`call_native`,
Numba's own calling convention, as a first-class function's ``jit_addr`` call does),
so the kernel's modules hold only the call. The address is read when the kernel is
called, never stored in its code, so the kernel still goes to the on-disk cache.
"""

from numba.core import cgutils, errors, types
from numba.core.typing import signature
from numba.extending import NativeValue, intrinsic, models, register_model, typeof_impl, unbox


class NativeFunctionType(types.Type):
    """The Numba type of a :class:`NativeFunction`: an address and the argument types.

    Two functions of one signature have one type (Numba interns types by name, so the
    type keeps the name of the first function made with it): a kernel that takes one
    compiles once, whichever it is given, as a C function pointer would."""

    def __init__(self, name, argtypes):
        self.function_name = name
        self.argtypes = tuple(argtypes)
        super().__init__(name=f"NativeFunction{self.argtypes}")


register_model(NativeFunctionType)(models.OpaqueModel)


class NativeFunction:
    """``dispatcher`` compiled for ``argtypes`` (returning None), to pass to a kernel that
    calls it with :func:`call_native`.

    argtypes: Numba types; arrays are taken C-contiguous, and a kernel may pass an
    array of another layout or mutability only where the data model is the same.
    The helper compiles (or loads from the kernel cache) when it is first passed to a
    kernel, not when it is made; with the class attribute ``defer`` set it is not even
    compiled then (:func:`fastnn._precompile.record` sets it while it records calls).
    """

    #: Leave the compile to a later call (set while kernel calls are only recorded).
    defer = False

    def __init__(self, dispatcher, argtypes):
        self.dispatcher = dispatcher
        self.argtypes = tuple(argtypes)
        self.numba_type = NativeFunctionType(dispatcher.__name__, self.argtypes)
        self.address = None

    @property
    def compiled(self) -> bool:
        return self.address is not None

    def compile(self) -> None:
        """Compile the helper (or load it from the cache) and take its address."""
        if self.address is not None:
            return
        self.dispatcher.compile(self.argtypes)
        result = self.dispatcher.overloads[self.argtypes]
        if result.signature.return_type != types.none:
            raise TypeError(
                f"NativeFunction: {self.dispatcher.__name__} must return None, "
                f"got {result.signature.return_type}"
            )
        self.address = result.library.get_pointer_to_function(result.fndesc.llvm_func_name)


@typeof_impl.register(NativeFunction)
def _typeof_native_function(value, context):
    if value.address is None and not NativeFunction.defer:
        value.compile()  # before the kernel runs: its unboxing reads the address
    return value.numba_type


@unbox(NativeFunctionType)
def _unbox_native_function(typ, obj, c):
    address = c.pyapi.object_getattr_string(obj, "address")
    pointer = c.pyapi.long_as_voidptr(address)
    c.pyapi.decref(address)
    return NativeValue(pointer, is_error=c.pyapi.c_api_error())


def _same_model(passed, expected):
    """Whether a value of type ``passed`` goes where ``expected`` is declared: equal types,
    or arrays of one dtype and rank (any layout and mutability share one data model)."""
    if passed == expected:
        return True
    return (
        isinstance(passed, types.Array)
        and isinstance(expected, types.Array)
        and passed.dtype == expected.dtype
        and passed.ndim == expected.ndim
    )


@intrinsic
def call_native(typingctx, function, args):
    """function(*args) for a :class:`NativeFunction` argument, through its address."""
    if not (isinstance(function, NativeFunctionType) and isinstance(args, types.BaseTuple)):
        return None
    passed = tuple(args.types)
    expected = function.argtypes
    if len(passed) != len(expected) or not all(map(_same_model, passed, expected)):
        raise errors.TypingError(f"call_native: {function} called with {passed}")

    def codegen(context, builder, sig, llargs):
        pointer, packed = llargs
        values = [builder.extract_value(packed, i) for i in range(len(passed))]
        fnty = context.call_conv.get_function_type(types.none, expected)
        callee = builder.bitcast(pointer, fnty.as_pointer())
        status, _ = context.call_conv.call_function(builder, callee, types.none, expected, values)
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        return context.get_dummy_value()

    return signature(types.none, function, args), codegen


__all__ = ["NativeFunction", "call_native"]
