"""Data-parallel training on MPI: the pieces in one process, then real ``mpiexec -n 2`` jobs.

The jobs follow PyTorch's and Horovod's pattern: the full batch in one process against
its shards on K ranks. Each job is a subprocess in its own process group, killed as a
group when it overruns, and is skipped when mpi4py or mpiexec is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import fastnn as fnn
from fastnn import distributed
from fastnn.distributed import Communicator, shard_bounds, shard_of, threads_per_rank
from fastnn.distributed.launcher import launched_size

import distributed_job

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


# ---------------------------------------------------------------- real 2-rank jobs

REPO = Path(__file__).resolve().parent.parent
JOB = Path(__file__).resolve().parent / "distributed_job.py"
JOB_TIMEOUT = 90  # seconds; a job takes a few when the kernel cache is warm


def mpiexec() -> str:
    """The mpiexec beside this Python (the MPICH wheel's), else the one on PATH; skip without."""
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install 'fastnn[mpi]')")
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.skip("mpiexec is not installed (pip install 'fastnn[mpi]')")
    return found


def run_job(scenario: str, out: Path, ranks: int | None = 2) -> subprocess.CompletedProcess:
    """Run distributed_job.py SCENARIO OUT under ``mpiexec -n ranks`` (alone for None) in a
    process group of its own, killed as a whole if it runs past JOB_TIMEOUT."""
    command = [sys.executable, str(JOB), scenario, str(out)]
    if ranks is not None:
        command = [mpiexec(), "-n", str(ranks), *command]
    env = {**os.environ, "PYTHONPATH": str(REPO), "FASTNN_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=JOB_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{scenario}: the {ranks}-rank job hung past {JOB_TIMEOUT} s and was killed:\n{output}")
    return subprocess.CompletedProcess(command, process.returncode, output, None)


@pytest.fixture(scope="module")
def one_process():
    """3 epochs of distributed_job's problem in this process, on whole batches (which also
    warms the kernel cache the jobs use)."""
    model, x, t = distributed_job.problem()
    model.fit(x, t, epochs=3, optimizer=distributed_job.optimizer(), **distributed_job.FIT)
    return model.flat_params.copy()


@pytest.fixture(scope="module")
def train_job(one_process, tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    job = run_job("train", out)
    assert job.returncode == 0, job.stdout
    return out, dict(np.load(out / "train.npz"))


def test_two_ranks_on_shards_step_like_one_process_on_the_whole_batch(train_job, one_process):
    _, result = train_job
    # 70 samples in global batches of 16: 5 steps an epoch, the last of 6 (3 per rank)
    np.testing.assert_allclose(result["straight"], one_process, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(one_process, distributed_job.problem()[0].flat_params)  # it trained


def test_every_rank_ends_with_the_same_weights(train_job):
    assert bool(train_job[1]["ranks_agree"])


def test_the_same_ranks_and_seed_give_bit_identical_weights(train_job, tmp_path):
    job = run_job("train", tmp_path)
    assert job.returncode == 0, job.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "train.npz")["straight"], train_job[1]["straight"])


def test_a_checkpointed_run_resumed_on_the_same_ranks_is_exact(train_job):
    _, result = train_job
    np.testing.assert_array_equal(result["resumed"], result["straight"])
    assert not bool(result["warned"])


def test_a_run_resumed_on_another_rank_count_continues_with_a_warning(train_job, tmp_path):
    out, result = train_job
    shutil.copytree(out / "epoch1", tmp_path / "ckpt")  # written by 2 ranks at the end of epoch 1
    model, x, t = distributed_job.problem()
    threads = fnn.get_num_threads()
    fnn.set_num_threads(1)  # as the ranks ran
    try:
        with pytest.warns(RuntimeWarning, match=r"written by a run on 2 rank\(s\), this one runs on 1"):
            history = model.fit(
                x, t, epochs=3, checkpoint=tmp_path / "ckpt", resume=True, **distributed_job.FIT
            )
    finally:
        fnn.set_num_threads(threads)
    assert history.epochs == 3 and len(list((tmp_path / "ckpt").glob("*.npz"))) >= 2  # it trained on
    np.testing.assert_allclose(model.flat_params, result["straight"], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_an_epoch_on_mnist_on_two_ranks_reaches_the_accuracy_of_one_process(tmp_path, mnist_dir, monkeypatch):
    monkeypatch.setenv("FASTNN_DATA", str(mnist_dir.parent))
    alone = distributed_job.mnist_epoch()
    job = run_job("mnist", tmp_path)
    assert job.returncode == 0, job.stdout
    together = float(np.load(tmp_path / "mnist.npz")["accuracy"])
    assert alone > 0.9 and abs(together - alone) < 0.005  # the same within noise (0.5 points)


def test_fit_checks_its_communicator_and_a_job_of_one_changes_nothing():
    model, x, t = distributed_job.problem()
    with pytest.raises(TypeError, match=r"fit: comm must be the communicator from fastnn.distributed.init"):
        model.fit(x, t, comm="MPI", **distributed_job.FIT)
    plain, _, _ = distributed_job.problem()
    plain.fit(x, t, epochs=2, optimizer=distributed_job.optimizer(), **distributed_job.FIT)
    model.fit(
        x, t, epochs=2, optimizer=distributed_job.optimizer(), comm=Communicator(), **distributed_job.FIT
    )
    np.testing.assert_array_equal(model.flat_params, plain.flat_params)


def test_a_nan_on_one_rank_stops_every_rank_at_the_same_step(tmp_path):
    job = run_job("nan", tmp_path)
    assert job.returncode == 0, job.stdout
    result = np.load(tmp_path / "nan.npz")
    assert np.isfinite(result["params"]).all()
    rank0, rank1 = result["reasons"]
    assert "epoch 1, step 3: loss is not finite on rank 1 of 2" in rank0
    assert "epoch 1, step 3: loss is nan on rank 1: first non-finite value in layers[0]" in rank1


def test_a_job_killed_mid_run_resumes_from_its_last_checkpoint_exactly(train_job, tmp_path):
    killed = run_job("kill-checkpointed", tmp_path)
    assert killed.returncode != 0 and "signal 9" in killed.stdout
    names = sorted(path.name for path in (tmp_path / "ckpt").glob("checkpoint-*.npz"))
    assert names[-1] == "checkpoint-000000006.npz"  # every 2 steps; rank 1 died at step 7
    resumed = run_job("resume-checkpointed", tmp_path)
    assert resumed.returncode == 0, resumed.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "resumed.npz")["params"], train_job[1]["straight"])


def test_a_rank_waiting_at_a_sleeping_barrier_leaves_its_core_free(tmp_path):
    job = run_job("barrier-sleeping", tmp_path)
    assert job.returncode == 0, job.stdout
    (worked, _), (waited, cpu) = np.load(tmp_path / "barrier.npz")["waited"]
    assert worked >= 1.0 and waited >= 0.9  # rank 1 waited for rank 0's second of work
    assert cpu < 0.3 * waited  # a spinning Barrier would have used the whole second


def test_ranks_with_different_data_are_told_at_the_start(tmp_path):
    job = run_job("mismatch", tmp_path)
    assert job.returncode != 0
    assert "fit(comm): rank 1 of 2 has different training data than rank 0" in job.stdout
    assert "every rank must run the same fastnn with the same model, data and fit arguments" in job.stdout


def test_reporting_callbacks_run_on_rank_0_alone_and_a_resume_restores_each_callback_by_class(tmp_path):
    job = run_job("callbacks", tmp_path)
    assert job.returncode == 0, job.stdout
    result = np.load(tmp_path / "callbacks.npz")
    assert result["reported"].tolist() == [2, 0]  # root_only: the resumed run's 2 epochs, on rank 0
    rank0, rank1 = (json.loads(text) for text in result["restored"])
    assert rank0 == rank1 and rank0["best"] is not None  # rank 1 lacks the logger: no shift
    assert len((tmp_path / "log.csv").read_text().splitlines()) == 1 + 3  # header, 3 epochs, once


def test_ranks_given_different_callbacks_are_told_at_the_start(tmp_path):
    job = run_job("callback-mismatch", tmp_path)
    assert job.returncode != 0
    assert "fit(comm): rank 1 of 2 has different callbacks than rank 0" in job.stdout
    assert "give every rank the same callbacks, in the same order" in job.stdout


def test_ctrl_c_under_mpiexec_stops_every_rank_with_one_notice_and_exit_status_130(tmp_path):
    command = [mpiexec(), "-n", "2", sys.executable, "-m", "fastnn", "train", "--epochs", "100000"]
    command += ["--batch-size", "64", "--verbose", "2", "--checkpoint", str(tmp_path / "ckpt")]
    env = {**os.environ, "PYTHONPATH": str(REPO), "FASTNN_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    lines = []
    try:
        for line in process.stdout:  # wait until training runs, then Ctrl-C the launcher alone
            lines.append(line)
            if line.startswith("epoch 3/"):
                process.send_signal(signal.SIGINT)
                break
        output, _ = process.communicate(timeout=JOB_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("the interrupted job did not end:\n" + "".join(lines) + process.communicate()[0])
    output = "".join(lines) + output
    assert process.returncode == 130, output
    assert output.count("fit: interrupted: finishing the current step") == 1, output  # rank 0 alone
    assert output.count("resume with: fastnn train --resume") == 1, output
    assert sorted((tmp_path / "ckpt").glob("checkpoint-*.npz")), output


@pytest.mark.parametrize(
    "how, message", [("raise", "rank 1 of 2 failed with RuntimeError"), ("kill", "signal 9")]
)
def test_a_failing_rank_ends_the_whole_job_within_seconds(tmp_path, how, message):
    started = time.perf_counter()
    job = run_job(how, tmp_path)  # 50 epochs: the other rank would wait forever without the abort
    assert job.returncode != 0
    assert message in job.stdout
    assert time.perf_counter() - started < 30


# ---------------------------------------------------------------- synchronised BatchNorm


class ThreadRanks(Communicator):
    """Rank ``rank`` of ``size`` ranks that are threads of this process: ``allreduce_`` sums
    through a shared table between two barriers (a stand-in for MPI in one process)."""

    def __init__(self, rank, size, table, barrier):
        self.rank, self.size, self.table, self.gate = rank, size, table, barrier

    def allreduce_(self, array):
        self.table[self.rank] = array.copy()
        self.gate.wait()
        total = sum(self.table[r] for r in range(self.size))
        self.gate.wait()
        array[...] = total
        return array


def run_as_ranks(size, work):
    """[work(comm) for each rank], the ranks running at once in threads."""
    table, barrier, results = {}, threading.Barrier(size), [None] * size

    def rank(r):
        results[r] = work(ThreadRanks(r, size, table, barrier))

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize("shape, cuts", [((10, 4), (6,)), ((7, 3, 2, 2), (3, 5))])
def test_a_synchronised_batchnorm_on_shards_equals_a_plain_one_on_the_whole_batch(shape, cuts):
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, size=shape)
    dy = rng.normal(size=shape)  # the gradient of a loss summed over the whole batch
    plain = fnn.layers.BatchNorm(shape[1]).build(fnn.get_ops("numpy"), np.float64)
    plain.bind({"gamma": rng.normal(size=shape[1]), "beta": rng.normal(size=shape[1])}, {})
    plain.grads = {"gamma": np.zeros(shape[1]), "beta": np.zeros(shape[1])}
    y_whole = plain.forward(x)
    dx_whole = plain.backward(dy)
    pieces = np.split(np.arange(shape[0]), cuts)

    def rank(comm):
        part = pieces[comm.rank]
        comm.batch_share = len(part) / shape[0]
        layer = fnn.layers.BatchNorm(shape[1], sync=True).build(fnn.get_ops("numpy"), np.float64)
        layer.bind(dict(plain.params), {"gamma": np.zeros(shape[1]), "beta": np.zeros(shape[1])})
        layer.comm = comm
        y = layer.forward(x[part])
        # each rank backpropagates its share of the whole batch's loss: dy is that loss's, cut
        dx = layer.backward(dy[part])
        return y, dx, layer.grads["gamma"].copy(), layer.grads["beta"].copy(), layer.running_mean

    results = run_as_ranks(len(pieces), rank)
    np.testing.assert_allclose(np.concatenate([r[0] for r in results]), y_whole, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([r[1] for r in results]), dx_whole, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sum(r[2] for r in results), plain.grads["gamma"], rtol=1e-10)
    np.testing.assert_allclose(sum(r[3] for r in results), plain.grads["beta"], rtol=1e-10)
    for result in results:
        np.testing.assert_allclose(result[4], plain.running_mean, rtol=1e-10)


def test_a_synchronised_batchnorm_is_saved_with_its_flag_and_never_fused():
    model = fnn.Sequential([fnn.layers.Dense(4, 3), fnn.layers.BatchNorm(3, sync=True), fnn.layers.ReLU()])
    assert model.layers[1].get_config()["sync"] is True
    assert "sync" not in fnn.layers.BatchNorm(3).get_config()  # plain configs are unchanged
    assert all(unit in model.layers for unit in model._plan())  # no fused group
    with pytest.raises(TypeError, match=r"BatchNorm: sync must be True or False, got str 'yes'"):
        fnn.layers.BatchNorm(3, sync="yes")


def test_two_ranks_with_a_synchronised_batchnorm_step_like_one_process(tmp_path):
    model, x, t = distributed_job.problem(n=64, batchnorm=True)
    model.fit(x, t, epochs=2, optimizer=distributed_job.optimizer(), **distributed_job.FIT)
    job = run_job("batchnorm", tmp_path)
    assert job.returncode == 0, job.stdout
    result = np.load(tmp_path / "batchnorm.npz")
    np.testing.assert_allclose(result["params"], model.flat_params, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result["mean"], model.layers[1].running_mean, rtol=1e-5, atol=1e-6)


def test_fastnn_train_under_mpiexec_says_once_that_it_is_data_parallel(tmp_path):
    command = [mpiexec(), "-n", "2", sys.executable, "-m", "fastnn", "train", "--epochs", "1"]
    command += ["--batch-size", "64", "--verbose", "2", "--save", str(tmp_path / "mlp.npz")]
    env = {**os.environ, "PYTHONPATH": str(REPO), "FASTNN_THREADS": "1"}
    job = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=JOB_TIMEOUT, start_new_session=True
    )
    assert job.returncode == 0, job.stdout + job.stderr
    output = job.stdout + job.stderr
    assert output.count("data-parallel on 2 MPI ranks; --batch-size 64 is the global batch") == 1
    assert output.count("test accuracy") == 1 and output.count("epoch 1/1") == 1  # rank 0 alone reports
    _, (x_test, t_test) = fnn.datasets.load_digits(seed=0)
    assert fnn.load(tmp_path / "mlp.npz").evaluate(x_test, t_test)["accuracy"] > 0.3  # it learnt


def test_a_search_spread_over_two_ranks_equals_the_serial_search(tmp_path):
    model, x, t = distributed_job.problem()
    space = {"lr": fnn.tune.LogUniform(1e-3, 0.3), "momentum": fnn.tune.Uniform(0.5, 0.95)}
    threads = fnn.get_num_threads()
    fnn.set_num_threads(1)  # as the ranks run
    try:
        trials = fnn.tune.random_search(
            lambda params: distributed_job.problem()[0],
            space,
            x,
            t,
            trials=5,
            epochs=2,
            optimizer="momentum",
            batch_size=16,
            seed=4,
            verbose=0,
        )
    finally:
        fnn.set_num_threads(threads)
    serial = distributed_job.tune_table(trials)
    job = run_job("tune", tmp_path)
    assert job.returncode == 0, job.stdout
    spread = np.load(tmp_path / "tune.npz")
    np.testing.assert_array_equal(spread["index"], serial["index"])  # the same ranking
    np.testing.assert_array_equal(spread["lr"], serial["lr"])
    for key in ("score", "val_loss", "loss_per_epoch"):
        np.testing.assert_allclose(spread[key], serial[key], rtol=1e-6, err_msg=key)


# ---------------------------------------------------------------- the scaling model and its bench


def test_the_ring_allreduce_model_counts_its_messages_and_bytes():
    from fastnn.bench.ring_model import allreduce_seconds, efficiency

    assert allreduce_seconds(1, 1e9, 1e-3, 1e9) == 0.0
    # 4 machines: 6 steps, each a latency and a quarter of the 8 MB buffer at 1 GB/s
    assert allreduce_seconds(4, 8e6, 1e-4, 1e9) == pytest.approx(6 * 1e-4 + 6 * 2e6 / 1e9)
    assert efficiency(0.1, 4, 8e6, 1e-4, 1e9) == pytest.approx(0.1 / (0.1 + 6e-4 + 0.012))
    many = [efficiency(0.05, n, 4e6, 5e-5, 1.25e9) for n in (2, 4, 8, 16, 32, 64)]
    assert all(a > b for a, b in zip(many, many[1:])) and 0 < many[-1] < 1


def test_the_ring_model_fit_recovers_a_known_latency_and_bandwidth():
    from fastnn.bench.ring_model import allreduce_seconds, fit_latency_bandwidth

    sizes = [4**k for k in range(8, 14)]
    times = [allreduce_seconds(2, s, 3e-5, 2e9) for s in sizes]
    alpha, beta = fit_latency_bandwidth(2, sizes, times)
    assert alpha == pytest.approx(3e-5, rel=1e-6) and beta == pytest.approx(2e9, rel=1e-6)
    with pytest.raises(
        ValueError, match=r"fit_latency_bandwidth: the times do not grow with the buffer size"
    ):
        fit_latency_bandwidth(2, sizes, times[::-1])


def test_bench_distributed_under_mpiexec_times_allreduces_and_data_parallel_steps(tmp_path):
    command = [mpiexec(), "-n", "2", sys.executable, "-m", "fastnn", "bench", "--distributed"]
    command += ["--networks", "mlp", "--repeats", "2", "--warmup", "1", "--json", str(tmp_path / "r.json")]
    env = {**os.environ, "PYTHONPATH": str(REPO), "FASTNN_THREADS": "1"}
    job = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=JOB_TIMEOUT, start_new_session=True
    )
    assert job.returncode == 0, job.stdout + job.stderr
    assert job.stdout.count("allreduce of float32 on 2 ranks (1 thread(s) each)") == 1
    result = json.loads((tmp_path / "r.json").read_text())
    assert [row["values"] for row in result["allreduce"]] == [4**k for k in range(5, 13)]
    assert all(row["ms"] > 0 for row in result["allreduce"])
    assert result["data_parallel_step_ms"]["mlp"] > 0 and result["shard_step_ms"]["mlp"] > 0
    assert result["alone_step_ms"]["mlp"] > 0 and result["throughput"]["mlp"] > 0
    assert "in 5 turns: all 2 ranks against rank 0 alone with" in job.stdout


def test_the_bench_times_one_process_doing_what_fit_does_in_a_step(monkeypatch):
    """The single-process side of ``fastnn bench --distributed`` is fit's step: a training step
    and the batch's correct predictions counted, as the data-parallel step does too."""
    from fastnn.bench.distributed import fit_step

    model, x, t = distributed_job.problem()
    counted, count_correct = [], model.loss_fn.count_correct

    def counting(y, t):
        counted.append(len(t))
        return count_correct(y, t)

    monkeypatch.setattr(model.loss_fn, "count_correct", counting)
    before = model.flat_params.copy()
    step = fit_step(model, fnn.optim.Adam(lr=0.01), x[:24], t[:24])
    step()
    step()
    assert counted == [24, 24]
    assert not np.array_equal(model.flat_params, before)


# ---------------------------------------------------------------- the data-parallel loop in one process


class RankOf(Communicator):
    """Rank ``rank`` of ``size``, for what a data-parallel loop does without talking to the others."""

    def __init__(self, rank, size):
        self.rank, self.size = rank, size


def test_augmented_shards_of_every_rank_make_up_one_process_augmented_batch():
    from fastnn.data_parallel import DataParallel
    from fastnn.training import TrainingLoop

    model, x, t = distributed_job.problem()
    x = np.random.default_rng(1).random((70, 1, 6, 6), dtype=np.float32)

    def batches(parallel):
        loop = TrainingLoop(
            model, x, t, None, 1, 16, True, 5, fnn.augment.RandomShift(1), False, 0, sys.stderr, parallel
        )
        loop.begin_epoch()
        out = []
        for _ in range(loop.steps):
            out.append(loop.next_batch())
            loop.batch += 1
        return out

    alone = batches(None)
    ranks = [batches(DataParallel(RankOf(rank, 2), 0)) for rank in range(2)]
    assert len(alone) == len(ranks[0]) == len(ranks[1]) == 5
    for step, (xb, tb) in enumerate(alone):
        np.testing.assert_array_equal(np.concatenate([r[step][0] for r in ranks]), xb)
        np.testing.assert_array_equal(np.concatenate([r[step][1] for r in ranks]), tb)
        assert len(ranks[0][step][0]) == -(-len(xb) // 2)


def test_a_last_batch_too_short_for_every_rank_is_dropped():
    from fastnn.data_parallel import DataParallel

    assert DataParallel(RankOf(0, 4), 0).steps(70, 16) == 5  # the last batch has 6 >= 4 samples
    assert DataParallel(RankOf(0, 4), 0).steps(66, 16) == 4  # 2 < 4: dropped
    with pytest.raises(ValueError, match=r"fit: batch_size=2 is the global batch, shared by 4 ranks"):
        DataParallel(RankOf(0, 4), 0).check_batch_size(2)


def test_dropout_masks_differ_per_rank_and_repeat_for_the_same_rank_and_step():
    from fastnn.data_parallel import DataParallel

    def mask(rank, step):
        top, inner = fnn.layers.Dropout(0.5), fnn.layers.Dropout(0.5)  # one inside a block
        model = fnn.Sequential([fnn.layers.Dense(4, 64), top, fnn.layers.Residual([inner])], seed=0)
        DataParallel(RankOf(rank, 2), 7).seed_dropout(model, step)
        ones = np.ones((1, 64), np.float32)
        return np.concatenate([top.forward(ones) != 0, inner.forward(ones) != 0])

    assert np.array_equal(mask(1, 3), mask(1, 3))
    assert not np.array_equal(mask(1, 3)[0], mask(1, 3)[1])  # two layers, two masks
    assert not np.array_equal(mask(0, 3)[0], mask(1, 3)[0]) and not np.array_equal(
        mask(1, 3)[0], mask(1, 4)[0]
    )
    assert not np.array_equal(mask(0, 3)[1], mask(1, 3)[1]) and not np.array_equal(
        mask(1, 3)[1], mask(1, 4)[1]
    )


def test_synchronised_batchnorms_inside_blocks_get_the_communicator():
    from fastnn.data_parallel import DataParallel

    inner = fnn.layers.BatchNorm(3, sync=True)
    plain = fnn.layers.BatchNorm(3)
    model = fnn.Sequential([fnn.layers.Dense(2, 3), fnn.layers.Residual([inner]), plain])
    comm = RankOf(0, 2)
    DataParallel(comm, 0).connect_batchnorms(model, comm)
    assert inner.comm is comm and plain.comm is None


class RecordingThreadRanks(ThreadRanks):
    """ThreadRanks that keeps the arrays it was given to allreduce, in order."""

    def __init__(self, *args):
        super().__init__(*args)
        self.reduced = []

    def allreduce_(self, array):
        self.reduced.append(array)
        return super().allreduce_(array)


def test_a_step_sums_the_gradients_in_place_after_its_statistics_and_steps_like_one_process():
    """Two allreduces a step: the statistics (loss, correct count, Ctrl-C, NaN flags), then the
    flat gradient buffer itself, in place (no copy), already scaled by each rank's share
    through the loss's gradient. The result is one process's step on the whole batch, for
    shards of unequal size too (13 and 12 samples)."""
    import fastnn.data_parallel as data_parallel

    alone, x, t = distributed_job.problem()
    x, t = x[:25], t[:25]
    loss_alone = alone.train_step(x, t, fnn.optim.Adam(lr=0.01))
    correct_alone = alone.loss_fn.count_correct(alone.last_output, t)

    def work(comm):
        recording = RecordingThreadRanks(comm.rank, comm.size, comm.table, comm.gate)
        model = distributed_job.problem()[0]
        part = shard_of(np.arange(len(x)), comm.rank, comm.size)
        loss, correct, stop = data_parallel.DataParallel(recording, 0).train_step(
            model, x[part], t[part], len(x), fnn.optim.Adam(lr=0.01), None, comm.rank == 1, 0
        )
        in_place = recording.reduced[-1] is model.flat_grads
        return model.flat_params.copy(), loss, correct, stop, len(recording.reduced), in_place

    results = run_as_ranks(2, work)
    for params, loss, correct, stop, allreduces, in_place in results:
        assert allreduces == 2 and in_place
        np.testing.assert_allclose(params, alone.flat_params, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(loss, loss_alone, rtol=1e-5)
        assert correct == correct_alone and stop is True  # Ctrl-C on rank 1 reaches rank 0
    np.testing.assert_array_equal(results[0][0], results[1][0])
