"""What every loader shares: where datasets are looked for, the cache, and checked downloads.

A loader searches ``path`` (which must exist), then each entry of ``$FASTNN_DATA``
(:func:`search_roots`), then its folder in the cache (:func:`cache_dir`). When nothing
holds the data it calls :func:`download_into`: each file goes to a temp file in the
cache folder, is md5-checked and fsync'ed, and only then moved to its name with
``os.replace``; a failed download leaves no partial file and no folder it created.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.request
from pathlib import Path

from .._progress import ProgressBar
from ._errors import ChecksumError, DatasetNotFoundError

TIMEOUT = 60  # seconds, per network operation
_CHUNK = 1 << 16


def cache_dir() -> Path:
    """Root of the download cache.

    ``$FASTNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/fastnn``, else ``~/.cache/fastnn``.
    """
    env = os.environ.get("FASTNN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "fastnn"
    return Path.home() / ".cache" / "fastnn"


def search_roots(path) -> list[Path]:
    """``path`` (if given), then each ``$FASTNN_DATA`` entry (``os.pathsep``-separated), in order."""
    roots = []
    if path is not None:
        roots.append(Path(path).expanduser())
    env = os.environ.get("FASTNN_DATA", "")
    roots.extend(Path(p).expanduser() for p in env.split(os.pathsep) if p)
    return roots


def check_path(path, loader: str, holding: str, file_ok: bool = False) -> None:
    """Refuse a ``path`` the user named that does not exist: a typo must not start a download.

    ``holding`` says what the path should be ("the folder D that holds ..."); a file is
    refused too unless ``file_ok``.
    """
    if path is None:
        return
    where = Path(path).expanduser()
    if not where.exists():
        raise DatasetNotFoundError(
            f"{loader}: path {str(path)!r} does not exist. Pass {holding}, or leave path unset "
            "to use $FASTNN_DATA and the download cache",
            searched=[(where, "does not exist")],
        )
    if not file_ok and not where.is_dir():
        raise DatasetNotFoundError(
            f"{loader}: path {str(path)!r} is a file; pass {holding}",
            searched=[(where, "is a file")],
        )


def not_found_error(what: str, searched, attempts, download: bool, fix: str) -> DatasetNotFoundError:
    """The error listing every place searched and every URL that failed, then ``fix``."""
    lines = [f"{what} dataset not found locally. Searched:"]
    lines += [f"  {d}: {why}" for d, why in searched]
    if download:
        lines.append("Downloading it failed:")
        lines += [f"  {url}: {why}" for url, why in attempts]
    else:
        lines.append("Downloading is disabled (download=False).")
    lines.append(fix)
    return DatasetNotFoundError("\n".join(lines), searched, attempts)


def md5_of(filename) -> str:
    digest = hashlib.md5()
    with open(filename, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def log(message: str, verbose: bool) -> None:
    if verbose:
        print(message, file=sys.stderr, flush=True)


def fetch(url: str, dest: Path, expected_md5: str, verbose: bool) -> None:
    """Download ``url`` to ``dest`` through a temp file in the same directory.

    The md5 is checked and the data fsync'ed before ``os.replace`` moves it into
    place; on any failure the temp file is removed and nothing exists under ``dest``.
    """
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            actual = _stream_to(url, out, dest.name, verbose)
            if actual != expected_md5:
                raise ChecksumError(f"{dest.name}: md5 mismatch: expected {expected_md5}, got {actual}")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(dest.parent)


def _stream_to(url: str, out, name: str, verbose: bool) -> str:
    """Copy the body at ``url`` into ``out`` with a byte progress bar; return its md5."""
    request = urllib.request.Request(url, headers={"User-Agent": "fastnn"})
    digest = hashlib.md5()
    received = 0
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        with ProgressBar(total, desc=name, unit="B", disable=not verbose) as bar:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise OSError(f"incomplete download: got {received} of {total} bytes")
    return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (best effort; not possible on every platform)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def download_file(urls, dest: Path, expected_md5: str, verbose: bool, attempts: list) -> bool:
    """Try each of ``urls`` in turn for ``dest``; record failures in ``attempts``; True on success."""
    for url in urls:
        log(f"Downloading {url}", verbose)
        try:
            fetch(url, dest, expected_md5, verbose)
            return True
        except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError is an OSError
            reason = str(exc) or type(exc).__name__
            attempts.append((url, reason))
            log(f"  failed: {reason}", verbose)
    return False


def download_into(target: Path, files: dict, verbose: bool) -> list:
    """Download the files of ``files`` (name -> (urls, md5)) missing from ``target``.

    Returns the failed attempts ``(url, reason)``. The folders it creates are removed
    again if they are still empty at the end, so a failed download leaves nothing behind.
    """
    attempts: list = []
    created = [d for d in (target, *target.parents) if not d.exists()]
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        attempts.append((str(target), f"cannot create cache directory: {exc}"))
        return attempts
    try:
        for name, (urls, expected_md5) in files.items():
            if not (target / name).is_file():
                download_file(urls, target / name, expected_md5, verbose, attempts)
    finally:
        remove_if_empty(created)
    return attempts


def remove_if_empty(directories) -> None:
    """Remove each of ``directories`` (deepest first) that holds nothing."""
    for directory in directories:
        try:
            directory.rmdir()
        except OSError:  # not empty, or already gone
            return
