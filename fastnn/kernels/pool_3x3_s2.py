"""Max pooling over 3x3 windows at stride 2 (AlexNet's and GoogLeNet's overlapping pooling).

x (N, C, H, W) -> y, argmax (N, C, OH, OW), padding PH, PW < 3 (-inf): the maxima and
argmax of :func:`~fastnn.kernels.pool.maxpool_forward_rows` (the first maximum in
row-major window order; a NaN beats every number), taking only the windows a stride of 2
needs. The whole-plane kernel (:func:`~fastnn.kernels.pool.maxpool_forward_wide`) takes
every stride-1 window, four times as many.
"""

import numpy as np
from numba import get_thread_id, prange

from .._config import parallel_kernel
from ._scalars import typed
from ._simd import lanes, wide_vectors
from ._simd_pool_3x3 import pool3_rows_step, pool3_taps_step

#: The plane index a padding position carries: larger than any real one, so that padding
#: loses every tie, and -inf padding never wins a window that holds a value.
PAD_INDEX = np.int32(2**31 - 1)


def scratch_3x3_s2(W, PW, OH, dtype):
    """The row length of :func:`maxpool_forward_3x3_s2`'s per-thread buffers (one of
    values, one of int32 indices): OH rows of W + 2*PW, and two vectors and two values of
    slack for the horizontal step's loads. Plain Python, for the callers."""
    vector = 64 // np.dtype(dtype).itemsize  # the widest host vector (AVX-512)
    return OH * (W + 2 * PW) + 2 * vector + 2


@parallel_kernel
def maxpool_forward_3x3_s2(x, PH, PW, G, m_buf, am_buf, y, argmax):
    """y = the maximum of each 3x3 window at stride 2 (rows 2i - PH .., columns 2j - PW ..),
    argmax = the flat index h*W + w of its winner in the plane.

    Per output row i, a vertical step (:func:`~._simd_pool_3x3.pool3_rows_step`) takes for
    every column of the plane the topmost maximum of the window's rows inside the plane
    (one to three) and its plane index, into row i of the thread's buffers m and am, between
    PW columns of padding on either side that hold -inf and index PAD_INDEX. A horizontal
    step (:func:`~._simd_pool_3x3.pool3_taps_step`) then takes, for each window, the
    maximum of its three columns' candidates at stride 2, a tie going to the smaller plane
    index: the row-major first maximum, since each candidate is its column's first. Both
    steps run on whole vectors, masked past the row's end. An all--inf window takes its
    first value (padding's index loses the tie), as the other kernels do.
    m_buf (dtype) and am_buf (int32): per-thread rows of :func:`scratch_3x3_s2`'s length.
    Planes of fewer than 2**31 values. Parallel over groups of G planes.
    """
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    Wr = W + 2 * PW
    low = typed(x, -np.inf)
    planes = x.reshape(N * C, H * W)
    y_planes = y.reshape(N * C, OH * OW)
    a_planes = argmax.reshape(N * C, OH * OW)
    for group in prange((N * C + G - 1) // G):
        wide_vectors()
        slot = get_thread_id()
        m = m_buf[slot]
        am = am_buf[slot]
        L = lanes(m)
        for q in range(OH * Wr + 2 * L + 2):  # the rows step rewrites only the insides
            m[q] = low
            am[q] = PAD_INDEX
        for plane in range(group * G, min(group * G + G, N * C)):
            xc = planes[plane]
            yc = y_planes[plane]
            ac = a_planes[plane]
            for i in range(OH):
                top = max(2 * i - PH, 0)
                last = min(2 * i - PH + 3, H) - 1
                o0 = top * W
                o1 = min(top + 1, last) * W
                o2 = min(top + 2, last) * W
                q = 0
                while q < W:
                    pool3_rows_step(xc, o0 + q, o1 + q, o2 + q, m, am, i * Wr + PW + q, min(L, W - q))
                    q += L
                j = 0
                while j < OW:
                    pool3_taps_step(m, am, i * Wr + 2 * j, min(L, OW - j), yc, ac, i * OW + j)
                    j += L
