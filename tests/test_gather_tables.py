"""The index tables of fastnn.kernels.conv.gather against the NumPy reference's slicing.

A table gathered through (:func:`gather_plane`) must give the reference's im2col columns
or polyphase planes, padding zeros included; a table scattered through
(:func:`scatter_add_plane`) must give the adjoint. The kernels that use the tables are
tested in test_kernel_properties.py and test_conv_ops.py; these tests pin the tables alone,
on odd sizes, strides 1 to 3 and any padding.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fastnn.backends import get_ops
from fastnn.kernels.conv import gather, polyphase

REF = get_ops("numpy")

shapes = dict(
    H=st.integers(1, 11),
    W=st.integers(1, 11),
    KH=st.integers(1, 5),
    KW=st.integers(1, 5),
    SH=st.integers(1, 3),
    SW=st.integers(1, 3),
    PH=st.integers(0, 2),
    PW=st.integers(0, 2),
    seed=st.integers(0, 2**31),
)


def out_size(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


@settings(max_examples=60, deadline=None)
@given(**shapes)
def test_window_table_gathers_the_reference_im2col_columns(H, W, KH, KW, SH, SW, PH, PW, seed):
    assume(KH <= H + 2 * PH and KW <= W + 2 * PW)
    OH, OW = out_size(H, KH, SH, PH), out_size(W, KW, SW, PW)
    x = np.random.default_rng(seed).standard_normal((1, 1, H, W)).astype(np.float32)
    table = gather.window_sources(H, W, KH, KW, SH, SW, PH, PW, OH, OW)
    assert table.shape == (KH * KW, OH * OW)
    want = REF.im2col(x, KH, KW, (SH, SW), (PH, PW))  # (OH*OW, KH*KW)
    column = np.full(OH * OW, np.nan, np.float32)
    for tap in range(KH * KW):
        gather.gather_plane(x.reshape(-1), table[tap], np.float32(0), column)
        np.testing.assert_array_equal(column, want[:, tap], err_msg=f"tap {tap}")


@settings(max_examples=60, deadline=None)
@given(**shapes)
def test_window_table_scatters_the_reference_col2im(H, W, KH, KW, SH, SW, PH, PW, seed):
    assume(KH <= H + 2 * PH and KW <= W + 2 * PW)
    OH, OW = out_size(H, KH, SH, PH), out_size(W, KW, SW, PW)
    col = np.random.default_rng(seed).standard_normal((OH * OW, KH * KW))
    table = gather.window_sources(H, W, KH, KW, SH, SW, PH, PW, OH, OW)
    dx = np.zeros(H * W)
    for tap in range(KH * KW):
        gather.scatter_add_plane(np.ascontiguousarray(col[:, tap]), table[tap], dx)
    want = REF.col2im(col, (1, 1, H, W), KH, KW, (SH, SW), (PH, PW))
    np.testing.assert_allclose(dx.reshape(H, W), want[0, 0], rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(**shapes)
def test_phase_tables_split_and_merge_the_padded_plane(H, W, KH, KW, SH, SW, PH, PW, seed):
    assume(KH <= H + 2 * PH and KW <= W + 2 * PW)
    OH, OW = out_size(H, KH, SH, PH), out_size(W, KW, SW, PW)
    QH, QW, KHq, KWq = polyphase.phase_counts(KH, KW, SH, SW)
    A, B = OH + KHq - 1, OW + KWq - 1
    C = 3
    x = np.random.default_rng(seed).standard_normal((C, H, W))
    xp = np.pad(x, ((0, 0), (PH, PH), (PW, PW)))
    split = gather.window_sources(H, W, QH, QW, SH, SW, PH, PW, A, B)
    planes = np.full((QH, QW, C, A * B), np.nan)
    for pi in range(QH):
        for qi in range(QW):
            want = np.zeros((C, A, B))
            phase = xp[:, pi::SH, qi::SW][:, :A, :B]
            want[:, : phase.shape[1], : phase.shape[2]] = phase
            for c in range(C):
                gather.gather_plane(x[c].reshape(-1), split[pi * QW + qi], 0.0, planes[pi, qi, c])
            np.testing.assert_array_equal(planes[pi, qi].reshape(C, A, B), want, err_msg=f"phase {pi, qi}")
    merge = gather.merge_sources(H, W, SH, SW, PH, PW, QH, QW, C, A, B)
    stack = planes.reshape(-1)
    back = np.full(H * W, np.nan)
    covered = merge >= 0
    rows = np.zeros(H + 2 * PH, bool)  # the padded rows and columns some tap of some output reads
    cols = np.zeros(W + 2 * PW, bool)
    rows[[SH * i + kh for i in range(OH) for kh in range(KH)]] = True
    cols[[SW * j + kw for j in range(OW) for kw in range(KW)]] = True
    read = np.outer(rows, cols)[PH : PH + H, PW : PW + W].reshape(-1)
    assert covered[read].all(), "a pixel some tap reads is in no phase plane"
    for c in range(C):
        gather.gather_plane(stack[c * A * B :], merge, 0.0, back)
        np.testing.assert_array_equal(back[covered], x[c].reshape(-1)[covered])
        np.testing.assert_array_equal(back[~covered], 0.0)
