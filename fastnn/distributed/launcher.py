"""Whether this process was started by an MPI launcher (mpiexec, mpirun, srun), read from
the environment the launchers set, so nothing imports mpi4py outside a job."""

from __future__ import annotations

import os

__all__ = ["LAUNCHER_SIZE_VARIABLES", "launched_size"]

#: Variables holding the job's size: MPICH/Hydra and Slurm's PMI, Open MPI, PMIx, MVAPICH.
LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE")


def launched_size(environ=None) -> int | None:
    """The number of ranks the launcher started (1 for ``mpiexec -n 1``), or None when no
    launcher started this process."""
    environ = os.environ if environ is None else environ
    for name in LAUNCHER_SIZE_VARIABLES:
        value = environ.get(name, "").strip()
        if value.isdigit():
            return int(value)
    if "PMIX_RANK" in environ or "PMI_RANK" in environ:
        return 0  # launched, size unknown until MPI says
    return None
