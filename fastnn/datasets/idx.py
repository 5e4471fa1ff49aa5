"""The IDX file format of MNIST and Fashion-MNIST, gzip-compressed.

An IDX file is a big-endian uint32 magic number (2051 for images: unsigned bytes in 3
dimensions; 2049 for labels: 1 dimension), one big-endian uint32 per dimension, then
the uint8 payload in C order. Every check names the file: gzip damage, a wrong magic
number, a truncated header, a payload shorter or longer than the header says.
"""

from __future__ import annotations

import gzip
import zlib

import numpy as np

from ._errors import corrupt

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension


def _read_gzip(filename) -> bytes:
    """Whole decompressed content of a gzip file; any gzip damage -> CorruptDatasetError."""
    with open(filename, "rb") as raw:  # a missing/unreadable file raises its own OSError
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                return f.read()
        except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            raise corrupt(filename, f"not a valid gzip file ({type(exc).__name__}: {exc})") from exc


def _parse_idx(filename, data: bytes, magic: int, ndim: int, what: str) -> np.ndarray:
    """Check an IDX header and payload; return the uint8 payload as a read-only array."""
    header_len = 4 * (1 + ndim)
    if len(data) < header_len:
        raise corrupt(
            filename, f"truncated IDX header: {len(data)} bytes, expected at least {header_len} ({what})"
        )
    header = np.frombuffer(data, dtype=">u4", count=1 + ndim)
    if int(header[0]) != magic:
        raise corrupt(filename, f"magic number {int(header[0])}, expected {magic} ({what})")
    shape = tuple(int(d) for d in header[1:])
    expected = int(np.prod(shape, dtype=object))
    payload = len(data) - header_len
    if payload != expected:
        problem = "short payload" if payload < expected else "trailing bytes"
        dims = " x ".join(str(d) for d in shape)
        raise corrupt(filename, f"{problem}: {payload} data bytes, header says {dims} = {expected} ({what})")
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(shape)


def idx_images_view(filename) -> np.ndarray:
    """The images of an IDX file as a read-only uint8 array (N, rows, cols)."""
    return _parse_idx(filename, _read_gzip(filename), IDX_IMAGES_MAGIC, 3, "IDX images")


def idx_labels_view(filename) -> np.ndarray:
    """The labels of an IDX file as a read-only uint8 array (N,)."""
    return _parse_idx(filename, _read_gzip(filename), IDX_LABELS_MAGIC, 1, "IDX labels")


def read_idx_images(filename) -> np.ndarray:
    """Read a gzip-compressed IDX image file.

    Returns a writable uint8 array shaped ``(N, rows, cols)``. Raises
    :class:`CorruptDatasetError` (a ``ValueError``) naming the file if it is not valid
    gzip, its magic number is not 2051, or its payload length differs from
    ``N * rows * cols``.
    """
    return idx_images_view(filename).copy()


def read_idx_labels(filename) -> np.ndarray:
    """Read a gzip-compressed IDX label file.

    Returns a writable uint8 array shaped ``(N,)``. Raises :class:`CorruptDatasetError`
    (a ``ValueError``) naming the file if it is not valid gzip, its magic number is
    not 2049, or its payload length differs from ``N``.
    """
    return idx_labels_view(filename).copy()
