"""The errors the data loaders raise."""

from __future__ import annotations


class CorruptDatasetError(ValueError):
    """A dataset file exists but is damaged or not the expected file (the message names it)."""


class DatasetNotFoundError(OSError):
    """The dataset is not on disk and could not be downloaded.

    ``searched`` lists ``(directory, why it was not used)``; ``attempts`` lists
    ``(url, reason)`` for each failed download.
    """

    def __init__(self, message: str, searched=(), attempts=()):
        super().__init__(message)
        self.searched = list(searched)
        self.attempts = list(attempts)

    def __str__(self) -> str:
        return self.args[0]


class ChecksumError(ValueError):
    """A downloaded file does not have the expected md5."""


def corrupt(filename, what: str) -> CorruptDatasetError:
    """``CorruptDatasetError("<filename>: <what>")``."""
    return CorruptDatasetError(f"{filename}: {what}")
