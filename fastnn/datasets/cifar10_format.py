"""The binary format of CIFAR-10: batch files of fixed-size records, in a folder or a .tar.gz.

A batch file is a run of 3,073-byte records: one label byte (0..9), then the 32x32 image
as three planes of 1,024 bytes, red, then green, then blue, each row by row. So record
``k`` holds label ``data[k * 3073]`` and pixel ``(channel c, row i, column j)`` at
``data[k * 3073 + 1 + 1024 * c + 32 * i + j]``.

The files are read from an extracted folder or straight out of the official tarball
with :mod:`tarfile` in stream mode: nothing is ever extracted to disk, so a member
named ``../x`` or a link cannot write or read outside the archive. Only regular-file
members with the exact names wanted are read, each checked for its size before a byte
of it is. Every error names the file (``archive.tar.gz:member`` inside a tarball).
"""

from __future__ import annotations

import tarfile
import zlib
from pathlib import Path

import numpy as np

from ._errors import corrupt

IMAGE_SHAPE = (3, 32, 32)
PIXEL_BYTES = 3 * 32 * 32
RECORD_BYTES = 1 + PIXEL_BYTES
NUM_CLASSES = 10
PYTHON_FOLDER = "cifar-10-batches-py"  # the pickled version, which fastnn never reads


def check_size(origin, size: int, records: int) -> None:
    """Refuse a batch of ``size`` bytes unless it is exactly ``records`` whole records."""
    if size % RECORD_BYTES:
        raise corrupt(
            origin,
            f"{size:,d} bytes is not a whole number of {RECORD_BYTES:,d}-byte records (1 label byte "
            f"+ {PIXEL_BYTES:,d} pixel bytes): the file is truncated or not a CIFAR-10 binary batch; "
            "download cifar-10-binary.tar.gz again",
        )
    if size // RECORD_BYTES != records:
        raise corrupt(
            origin,
            f"{size // RECORD_BYTES:,d} records ({size:,d} bytes), expected {records:,d} "
            f"({records * RECORD_BYTES:,d} bytes): not a complete CIFAR-10 batch file; "
            "download cifar-10-binary.tar.gz again",
        )


def parse_batch(origin, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Records -> (images uint8 (n, 3, 32, 32), labels uint8 (n,)), read-only views of ``data``.

    ``len(data)`` must be a multiple of :data:`RECORD_BYTES` (:func:`check_size`); a label
    above 9 raises :class:`CorruptDatasetError` naming ``origin`` and the record.
    """
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0]
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        bad = int(np.argmax(labels >= NUM_CLASSES))
        raise corrupt(
            origin,
            f"label {int(labels[bad])} in record {bad} is outside 0..{NUM_CLASSES - 1}: "
            "not a CIFAR-10 batch file (CIFAR-100's binary files have 2 label bytes); "
            "download cifar-10-binary.tar.gz again",
        )
    return records[:, 1:].reshape(-1, *IMAGE_SHAPE), labels


def read_folder(folder: Path, names, records: int) -> dict[str, tuple[str, bytes]]:
    """``name -> (origin, bytes)`` of each batch file ``folder/name``, sizes checked first."""
    batches = {}
    for name in names:
        file = folder / name
        check_size(file, file.stat().st_size, records)
        data = file.read_bytes()
        check_size(file, len(data), records)  # it changed since the stat
        batches[name] = (str(file), data)
    return batches


def read_tarball(tarball: Path, folder: str, names, records: int) -> dict[str, tuple[str, bytes]]:
    """``name -> (origin, bytes)`` of the members ``folder/name`` of a .tar.gz, read in one pass.

    Raises :class:`CorruptDatasetError` naming the tarball when it is not a valid (or a
    truncated) gzip tar archive or lacks a member, and naming the member when it is not a
    regular file, appears twice or has the wrong size.
    """
    wanted = {f"{folder}/{name}": name for name in names}
    batches: dict[str, tuple[str, bytes]] = {}
    saw_python_version = False
    with open(tarball, "rb") as raw:  # a missing/unreadable file raises its own OSError
        try:
            with tarfile.open(fileobj=raw, mode="r|gz") as archive:
                for member in archive:
                    saw_python_version |= member.name.startswith(PYTHON_FOLDER + "/")
                    name = wanted.get(member.name)
                    if name is None:
                        continue
                    origin = f"{tarball}:{member.name}"
                    _check_member(origin, member, name in batches, records)
                    data = archive.extractfile(member).read()
                    check_size(origin, len(data), records)
                    batches[name] = (origin, data)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise corrupt(
                tarball,
                f"not a valid .tar.gz archive, or truncated ({type(exc).__name__}: {exc}); "
                "download cifar-10-binary.tar.gz again",
            ) from exc
    missing = [member for member, name in wanted.items() if name not in batches]
    if missing:
        hint = (
            f"it is the Python version ({PYTHON_FOLDER}/, pickles), which fastnn never reads"
            if saw_python_version
            else "it is not the official CIFAR-10 binary archive"
        )
        raise corrupt(
            tarball,
            f"missing {', '.join(missing)}: {hint}; use cifar-10-binary.tar.gz "
            "from https://www.cs.toronto.edu/~kriz/cifar.html",
        )
    return batches


def _check_member(origin: str, member: tarfile.TarInfo, seen: bool, records: int) -> None:
    if seen:
        raise corrupt(origin, "appears twice in the archive; download cifar-10-binary.tar.gz again")
    if not member.isreg():
        kind = "symbolic link" if member.issym() else "hard link" if member.islnk() else "non-file entry"
        raise corrupt(origin, f"is a {kind}, expected a regular file; download cifar-10-binary.tar.gz again")
    check_size(origin, member.size, records)
