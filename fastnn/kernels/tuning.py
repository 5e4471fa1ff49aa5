"""Tuning knobs: every number chosen by measurement rather than fixed by an algorithm.

Each knob says what it controls and which benchmark shows its effect; none of the
scripts sweeps a knob, so to retune one, change it here and rerun the benchmark
named (where none measures a knob, its comment says so). Constants that the code's
shape fixes (a register tile written out for 8 channels, the 512-bit vector width,
the int32 plane limit) are not knobs and stay beside their code, each with a comment
saying why.

Two kinds of knob live here:

* **kernel knobs**, read by ``@njit`` code. Numba compiles them in as constants, and
  its on-disk cache is keyed by each kernel's own source file, not by this one: after
  changing one, clear the cache (delete the ``__pycache__`` folders under
  ``fastnn/kernels``, or run with ``FASTNN_CACHE=0`` or a fresh ``NUMBA_CACHE_DIR``),
  or the old value stays compiled in.
* **backend knobs**, read by :mod:`fastnn.backends` as ``tuning.NAME`` at call time
  (tests patch them).

Knobs marked *order* set how a sum is split into partial sums, so changing them can
change results in the last bits (never their independence of the thread count).

The thread-count threshold between a kernel's serial and parallel build is an
environment setting, ``FASTNN_PARALLEL_THRESHOLD`` (:data:`fastnn._config.PARALLEL_THRESHOLD`).
"""

# ------------------------------------------------------------- elementwise kernels

#: Elements per fixed block of the elementwise parallel loops (:mod:`fastnn.kernels._blocks`:
#: activations, losses, optimizer steps, the finiteness check): the unit a thread takes,
#: fixed so results do not depend on the thread count. Larger blocks cost less scheduling
#: and balance worse on small arrays. Kernel knob; a block's split into vectorised body and
#: remainder follows it, so it can change float results in the last bit. No script sweeps
#: it; ``asv run --python=same --quick -b bench_dense -b bench_optim`` times the kernels
#: that use it.
BLOCK = 4096

#: Elements per partial sum of the squared error (``mse``,
#: :func:`fastnn.kernels.losses.squared_error_blocks`); the backend adds the partials in
#: order. Kernel and backend knob, *order*. No script measures it.
SUM_BLOCK = 4096

# ------------------------------------------------------------------------- affine

#: Parts each affine GEMM is split into, whatever the thread count
#: (:mod:`fastnn.kernels.affine`): one single-threaded BLAS call per part, the parts run as
#: one ``prange`` loop; forward by depth adds the partial products in part order. Two: one
#: per core of a two-core machine. Kernel and backend knob, *order*.
#: ``python benchmarks/bench_fast_paths.py`` times both ways of splitting simple_convnet's
#: Dense(4320->100) at this count; no script compares counts.
GEMM_PARTS = 2

#: Output columns per block of the bias-gradient sum in ``affine_backward`` (each block
#: sums down the batch rows with its columns in cache). Kernel knob. No script measures it
#: apart; ``asv run --python=same --quick -b bench_dense`` (Affine.time_backward) times the
#: whole backward pass.
COLUMN_BLOCK = 64

#: Multiply-adds below which an affine op runs its GEMM as one BLAS call on one thread
#: (the serial build): splitting it over the cores costs a parallel region, tens of
#: microseconds. Backend knob. No script compares the two builds across it;
#: ``asv run --python=same --quick -b bench_dense`` (Affine) times shapes on both sides
#: (100x100x10 runs serial, 100x784x100 parallel).
GEMM_PARALLEL_MIN = 1_000_000

# --------------------------------------------------------------------- optimizers

#: Operations each parameter counts as when an optimizer step picks its serial or parallel
#: build (the work figure compared with PARALLEL_THRESHOLD): the serial builds do not
#: vectorise (LLVM cannot rule out aliasing between the four buffers; the parallel builds'
#: outlined loops can), so the parallel build wins from about a thousand parameters.
#: Backend knob. ``python benchmarks/bench_fast_paths.py`` times the serial against the
#: parallel build of Adam at 2,000 and 90k parameters.
OPTIM_WORK_PER_PARAM = 32

# ------------------------------------------------------------------ batch norm

#: Values of one sample a batch-norm work item covers: channels are grouped into items of
#: about this many values (at least four items when C allows), so (N, D) inputs get a
#: contiguous inner loop over features (:func:`fastnn.backends.numba_norm._block`).
#: Backend knob. No script measures it.
BLOCK_VALUES = 256

# ------------------------------------------------------------- conv: im2col path

#: Bytes of column matrix per im2col chunk of images: small enough to stay in one core's
#: L2 cache between im2col, the GEMM and col2im (:mod:`fastnn.kernels.conv.im2col`).
#: Backend knob, *order* (the chunks make dW's groups). ``python benchmarks/bench_conv_impl.py``
#: times the im2col path on the book networks' layers (its "i2c" columns); the strided
#: layer of ``asv run --python=same --quick -b bench_conv`` is im2col's own.
CHUNK_BYTES = 1 << 19

#: At most this many groups of chunks in im2col backward, each with its own dW partial sum,
#: added in group order so dW does not depend on the thread count; more groups let more
#: threads work and cost more partial sums. Backend knob, *order*. Measured by the same
#: benchmarks as CHUNK_BYTES.
CHUNK_GROUPS = 16

# ---------------------------------------------------------- conv: strided, "auto"
# Layers with a block of channels (two vectors: F >= 32 in float32 forward and for the
# weights, C >= 32 for dx) take the channel tiles at any stride, without a knob
# (docs/performance.md, "Channel tiles"); the knobs below decide among polyphase and
# im2col for the others.

#: Output columns from which ``impl="auto"`` runs a strided convolution through the
#: polyphase split rather than im2col + GEMM (``fastnn.backends.numba_conv._choose``):
#: forward for kernels larger than 1x1 (a 1x1 kernel keeps one phase, a subsampling, and
#: always takes the split), and for the weight gradients of kernels larger than their
#: stride (whose phases are real convolutions). Narrower output rows fill the direct
#: kernel's register tiles poorly. Backend knob. ``python benchmarks/bench_conv_impl.py
#: --strided --extra`` times both on 23 strided layers: forward, polyphase / im2col was
#: 0.44 to 0.92 on every layer with 14 or more output columns and 1.03 to 1.30 on those
#: with 7 to 10 (3x3 kernels, 16 to 128 channels); see docs/performance.md.
STRIDED_POLYPHASE_MIN_WIDTH = 12

#: Input channels up to which "auto" takes a strided layer's weight gradients through the
#: polyphase split whatever its output width (stems and first layers: 0.51 to 0.89 of
#: im2col's time in the same table). Backend knob.
STRIDED_POLYPHASE_WEIGHTS_CHANNELS = 3

#: Input channels up to which "auto" takes the weight gradients of a wide strided layer
#: (STRIDED_POLYPHASE_MIN_WIDTH) through the polyphase split when its kernel is larger than
#: its stride. Backend knob, from the same table: polyphase / im2col 0.49 to 0.86 on the
#: wide layers of 16 and 32 channels, 0.91 and 1.02 at 64, 1.15 and 1.19 at 128.
STRIDED_POLYPHASE_WIDE_WEIGHTS_CHANNELS = 32

# -------------------------------------------------------- conv: direct, stride 1

#: Input channels up to which direct backward-data at stride 1 scatters dy into each input
#: plane (no wasted work on a single plane); with more, the full correlation through the
#: forward tiles, which pair channels, is faster. Backend knob.
#: ``python benchmarks/bench_conv_impl.py --extra`` times the direct backward on layers
#: either side of it (C = 1 and 3 scatter, C = 16 and more correlate); no script times both
#: forms on one layer.
SCATTER_MAX_CHANNELS = 3

#: Input channels up to which the stride-1 backward pass takes dx on rows one vector wide
#: (13/16 of a vector to just under one: 13 to 15 float32 columns; kernels above 3x3) through
#: :func:`~fastnn.kernels.conv.row_correlate.correlate_rows` rather than the forward tiles
#: (with more channels the tiles lose less to the padding than the rows do to their
#: part-filled vectors; the rule is ``row_correlate.rows_pay``). Backend knob.
#: ``python benchmarks/bench_conv_impl.py --rows`` times both on layers either side.
ROW_CORRELATE_CHANNELS = 16

#: Images per chunk of a backward-weights item (:mod:`fastnn.kernels.conv.direct_backward`):
#: their padded x and widened dy stay in L2 while every register tile runs over all of
#: them. Kernel knob. ``python benchmarks/bench_conv_impl.py`` times the direct backward on
#: the book networks' layers (its "dir bwd" column).
DW_CHUNK = 16

#: ... but only as many images as keep chunk * (one widened dy plane) within this many
#: elements. Kernel knob; measured by the same benchmark as DW_CHUNK.
DW_CHUNK_PIXELS = 2048

#: At most this many fixed groups of images in direct_backward_s1, each with its own dW
#: partial sum (added in group order afterwards): the backward-weights work items, so also
#: how many threads can share dW. Kernel knob, *order*; measured by the same benchmark as
#: DW_CHUNK.
DW_GROUPS = 8
