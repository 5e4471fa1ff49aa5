"""The communicator fit talks to: a size-1 stand-in, and MPI (mpi4py) for real jobs.

Only buffer methods are used (``Allreduce``, ``Bcast``, ``Allgather`` on numpy arrays),
never mpi4py's lowercase ones, which pickle their arguments: fastnn pickles nothing.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["Communicator", "MPICommunicator"]


class Communicator:
    """One process alone: rank 0 of a job of size 1, where every collective is the identity.

    The interface :class:`MPICommunicator` fills for real jobs: ``rank``, ``size``,
    ``local_rank``/``local_size`` (the ranks on this host), ``is_root`` (rank 0),
    ``allreduce_(array)`` (element-wise sum over the ranks, in place), ``broadcast_(array)``
    (rank 0's values, in place), ``allgather(array)`` (every rank's copy stacked: shape
    ``(size, *array.shape)``), ``barrier()``, ``barrier_sleeping()`` and ``abort(code)``.

    ``batch_share`` is this rank's fraction ``n_rank / n_global`` of the current step's
    global batch (fit sets it every step; a synchronised BatchNorm reads it).
    """

    rank = 0
    size = 1
    local_rank = 0
    local_size = 1
    batch_share = 1.0
    name = "single process"

    @property
    def is_root(self) -> bool:
        """Whether this process is rank 0, the one that writes files."""
        return self.rank == 0

    def allreduce_(self, array: np.ndarray) -> np.ndarray:
        """Sum ``array`` over all ranks, in place; returns it. One process: unchanged."""
        return array

    def broadcast_(self, array: np.ndarray) -> np.ndarray:
        """Overwrite ``array`` with rank 0's copy, in place; returns it. One process: unchanged."""
        return array

    def allgather(self, array: np.ndarray) -> np.ndarray:
        """Every rank's ``array`` stacked along a new first axis, (size, *array.shape)."""
        return np.asarray(array)[None].copy()

    def barrier(self) -> None:
        """Wait until every rank gets here. One process: returns at once."""
        pass

    def barrier_sleeping(self, poll_s: float = 2e-4) -> None:
        """:meth:`barrier`, waiting asleep (a test every ``poll_s`` seconds) instead of
        spinning: MPI's blocking calls poll and keep a core busy, which a rank timing work
        on every core of the host needs."""
        pass

    def abort(self, code: int = 1) -> None:
        """Stop every rank with exit status ``code``."""
        raise SystemExit(code)

    def __deepcopy__(self, memo):
        return self  # a model copied (to compile ahead, say) talks to the same job

    def __repr__(self):
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"


class MPICommunicator(Communicator):
    """``comm`` (an mpi4py communicator, e.g. ``MPI.COMM_WORLD``) behind :class:`Communicator`'s
    interface. ``local_size`` counts the ranks that share this host's memory
    (``Split_type(COMM_TYPE_SHARED)``)."""

    name = "MPI"

    def __init__(self, comm):
        from mpi4py import MPI

        self._mpi = MPI
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
        local.Free()

    def _check(self, array: np.ndarray, where: str) -> None:
        if not (isinstance(array, np.ndarray) and array.flags.c_contiguous):
            raise TypeError(
                f"MPICommunicator.{where}: expected a C-contiguous numpy array, got "
                f"{type(array).__name__}; pass np.ascontiguousarray(x) and copy the result back"
            )

    def allreduce_(self, array: np.ndarray) -> np.ndarray:
        self._check(array, "allreduce_")
        self.comm.Allreduce(self._mpi.IN_PLACE, array, op=self._mpi.SUM)
        return array

    def broadcast_(self, array: np.ndarray) -> np.ndarray:
        self._check(array, "broadcast_")
        self.comm.Bcast(array, root=0)
        return array

    def allgather(self, array: np.ndarray) -> np.ndarray:
        array = np.ascontiguousarray(array)
        out = np.empty((self.size, *array.shape), array.dtype)
        self.comm.Allgather(array, out)
        return out

    def barrier(self) -> None:
        self.comm.Barrier()

    def barrier_sleeping(self, poll_s: float = 2e-4) -> None:
        request = self.comm.Ibarrier()
        while not request.Test():
            time.sleep(poll_s)

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)
