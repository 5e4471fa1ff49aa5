"""Data-parallel training on MPI: the pieces in one process, then real ``mpiexec -n 2`` jobs.

The jobs follow PyTorch's and Horovod's pattern: the full batch in one process against
its shards on K ranks. Each job is a subprocess in its own process group, killed as a
group when it overruns, and is skipped when mpi4py or mpiexec is missing.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from fastnn import distributed
from fastnn.distributed import Communicator, shard_bounds, shard_of, threads_per_rank
from fastnn.distributed.launcher import launched_size

# ---------------------------------------------------------------- in one process


@pytest.mark.parametrize("n, size", [(8, 2), (7, 2), (5, 3), (1, 2), (0, 4), (64, 5)])
def test_shards_cover_the_batch_once_with_sizes_differing_by_at_most_one(n, size):
    batch = np.arange(100, 100 + n)
    parts = [shard_of(batch, rank, size) for rank in range(size)]
    np.testing.assert_array_equal(np.concatenate(parts), batch)
    sizes = [len(part) for part in parts]
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)  # the extra samples go to the first ranks
    bounds = shard_bounds(n, size)
    assert bounds[0] == 0 and bounds[-1] == n and len(bounds) == size + 1


@pytest.mark.parametrize("cores, ranks, expected", [(2, 1, 2), (2, 2, 1), (2, 4, 1), (16, 3, 5), (8, 0, 8)])
def test_threads_per_rank_share_the_cores_of_the_host(cores, ranks, expected):
    assert threads_per_rank(cores, ranks) == expected


def test_a_launcher_is_recognised_from_its_environment():
    assert launched_size({}) is None
    assert launched_size({"PMI_SIZE": "4", "PMI_RANK": "1"}) == 4
    assert launched_size({"OMPI_COMM_WORLD_SIZE": "2"}) == 2
    assert launched_size({"PMIX_RANK": "0"}) == 0


def test_init_outside_a_launcher_is_a_job_of_one(monkeypatch):
    for name in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMIX_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MV2_COMM_WORLD_SIZE", raising=False)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    comm = distributed.init()
    assert type(comm) is Communicator
    assert (comm.rank, comm.size, comm.is_root) == (0, 1, True)
    a = np.arange(3.0)
    assert comm.allreduce_(a) is a and comm.broadcast_(a) is a
    np.testing.assert_array_equal(comm.allgather(a), a[None])


def test_init_under_a_launcher_without_mpi4py_says_how_to_install_it(monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setattr(distributed, "mpi_available", lambda: False)
    with pytest.raises(ImportError, match=r"2 ranks, but mpi4py is missing.*fastnn\[mpi\]"):
        distributed.init()


def test_as_communicator_refuses_what_is_not_one():
    assert type(distributed.as_communicator(None)) is Communicator
    with pytest.raises(TypeError, match=r"fit: comm must be the communicator from fastnn.distributed.init"):
        distributed.as_communicator(2)
