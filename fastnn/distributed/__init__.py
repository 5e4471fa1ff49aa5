"""Data-parallel training on MPI (mpi4py): the communicator, threads per rank, shards.

Run a script, or the ``fastnn`` command, under an MPI launcher::

    mpiexec -n 4 python train.py          # or: mpiexec -n 4 fastnn train ...

and in the script::

    comm = fnn.distributed.init()         # size 1 outside mpiexec: nothing changes
    history = model.fit(x, t, batch_size=256, comm=comm)   # 256 is the global batch
    if comm.is_root:
        model.save("model.npz")

:func:`init` returns a :class:`Communicator` (an :class:`MPICommunicator` under a
launcher with mpi4py installed: ``pip install 'fastnn[mpi]'``), sets this rank's kernel
threads to the host's cores divided by its ranks, and makes an uncaught exception on any
rank abort the whole job. See docs/distributed.md.
"""

from __future__ import annotations

from .communicator import Communicator, MPICommunicator
from .faults import abort_on_uncaught_exception
from .launcher import launched_size
from .shards import shard_bounds, shard_of
from .threads import threads_per_rank, use_threads_per_rank

__all__ = [
    "Communicator",
    "MPICommunicator",
    "as_communicator",
    "init",
    "mpi_available",
    "shard_bounds",
    "shard_of",
    "threads_per_rank",
]

_INSTALL_HINT = "install it with pip install 'fastnn[mpi]' (mpi4py and the MPICH wheel)"


def mpi_available() -> bool:
    """Whether mpi4py can be imported (without starting MPI)."""
    import importlib.util

    return importlib.util.find_spec("mpi4py") is not None


def init(threads: int | None = None) -> Communicator:
    """The communicator of this process's job: an :class:`MPICommunicator` on MPI_COMM_WORLD
    under an MPI launcher, else the size-1 :class:`Communicator` (mpi4py is not imported).

    Also sets this rank's kernel threads (``threads``, else ``FASTNN_THREADS``, else the
    host's cores divided by the ranks on it; 1 rank keeps the current setting) and installs
    the hook that aborts the job when a rank raises. Call it once, before training.

    Raises ImportError, saying how to install it, when a launcher started more than one
    rank but mpi4py is missing (each rank would otherwise train alone).
    """
    size = launched_size()
    if size is None or (size == 1 and not mpi_available()):
        comm = Communicator()
    elif not mpi_available():
        raise ImportError(
            f"fastnn.distributed.init: started by an MPI launcher with {size} ranks, but mpi4py is "
            f"missing; {_INSTALL_HINT}, or run without mpiexec"
        )
    else:
        from mpi4py import MPI

        comm = MPICommunicator(MPI.COMM_WORLD)
    if comm.size > 1 or threads is not None:
        use_threads_per_rank(comm.local_size, threads)
    abort_on_uncaught_exception(comm)
    return comm


def as_communicator(comm, where: str = "fit") -> Communicator:
    """``comm`` as a :class:`Communicator`: one already (returned as it is), an mpi4py
    communicator (wrapped), or None (the size-1 stand-in)."""
    if comm is None:
        return Communicator()
    if isinstance(comm, Communicator):
        return comm
    if type(comm).__module__.startswith("mpi4py"):
        return MPICommunicator(comm)
    raise TypeError(
        f"{where}: comm must be the communicator from fastnn.distributed.init() (or an mpi4py "
        f"communicator such as MPI.COMM_WORLD), got {type(comm).__name__}"
    )
