"""examples/dqn_cartpole.py: the DQN agent's pieces checked by hand, a few episodes of
CartPole-v1, and (slow) the whole run to the solved threshold."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from conftest import REPO

import fastnn as fnn


def load_example():
    spec = importlib.util.spec_from_file_location("dqn_cartpole", REPO / "examples" / "dqn_cartpole.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["dqn_cartpole"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


dqn = load_example()


@pytest.fixture
def one_thread():
    """The script's default: one thread for the tiny arrays (restored after the test)."""
    threads = fnn.get_num_threads()
    fnn.set_num_threads(1)
    yield
    fnn.set_num_threads(threads)


def filled_agent(n: int = 200, backend: str = "numba", **config):
    agent = dqn.DQNAgent(4, 2, dqn.DQNConfig(backend=backend, **config), seed=3)
    rng = np.random.default_rng(0)
    for _ in range(n):
        obs, next_obs = rng.standard_normal(4), rng.standard_normal(4)
        agent.buffer.push(obs, int(rng.integers(2)), 1.0, next_obs, bool(rng.random() < 0.1))
    return agent


def test_replay_buffer_keeps_the_last_capacity_transitions_and_samples_only_those():
    buffer = dqn.ReplayBuffer(3, obs_dim=2, seed=0)
    with pytest.raises(ValueError, match="ReplayBuffer.sample: the buffer is empty"):
        buffer.sample(1)
    for i in range(5):
        buffer.push([i, -i], action=i % 2, reward=float(i), next_obs=[i + 1, 0], done=i == 4)
    assert len(buffer) == 3
    s, a, r, s_next, done = buffer.sample(300)
    assert s.shape == (300, 2) and s.dtype == np.float32 and a.dtype == np.int64
    assert set(r.tolist()) == {2.0, 3.0, 4.0}  # 0 and 1 were overwritten
    np.testing.assert_array_equal(s[:, 0], r)  # each row is one transition
    np.testing.assert_array_equal(s[:, 1], -r)
    np.testing.assert_array_equal(s_next[:, 0], r + 1)
    np.testing.assert_array_equal(a, r.astype(int) % 2)
    np.testing.assert_array_equal(done, (r == 4).astype(np.float32))
    counts = np.bincount(r.astype(int))[2:]
    assert counts.min() > 60  # uniform: about 100 each
    with pytest.raises(ValueError, match="capacity must be >= 1, got 0"):
        dqn.ReplayBuffer(0, obs_dim=2)


def test_epsilon_falls_linearly_then_stays():
    assert dqn.epsilon_at(0, 1.0, 0.1, 100) == 1.0
    assert dqn.epsilon_at(50, 1.0, 0.1, 100) == pytest.approx(0.55)
    assert dqn.epsilon_at(100, 1.0, 0.1, 100) == pytest.approx(0.1)
    assert dqn.epsilon_at(10_000, 1.0, 0.1, 100) == pytest.approx(0.1)
    assert dqn.epsilon_at(5, 1.0, 0.1, 0) == 0.1


def test_a_bad_config_is_refused_with_its_name_and_value():
    with pytest.raises(ValueError, match="DQNConfig: gamma must be in \\[0, 1\\], got 1.5"):
        dqn.DQNConfig(gamma=1.5)
    with pytest.raises(ValueError, match="DQNConfig: batch_size must be >= 1, got 0"):
        dqn.DQNConfig(batch_size=0)


def test_td_targets_by_hand():
    q_next = np.array([[1.0, 3.0], [2.0, -1.0], [5.0, 4.0]], np.float32)
    rewards = np.array([1.0, 0.5, 1.0], np.float32)
    dones = np.array([0.0, 0.0, 1.0], np.float32)
    y = dqn.td_targets(q_next, rewards, dones, gamma=0.9)
    # 1 + 0.9 * 3; 0.5 + 0.9 * 2; terminal: the reward alone
    np.testing.assert_allclose(y, [3.7, 2.3, 1.0], rtol=1e-6)


@pytest.mark.parametrize("td_clip", [1.0, 0.0])
def test_learn_fits_the_taken_action_towards_the_td_target(td_clip):
    """The loss learn() returns is 0.5 mean(err**2) with err the (clipped) TD error of the
    taken action, recomputed here from the networks before the step and the same batch."""
    agent = filled_agent(td_clip=td_clip, batch_size=16)
    agent.q.flat_params[...] = agent.q.flat_params * 3  # large outputs, so that some errors clip
    state = agent.buffer._rng.bit_generator.state
    s, a, r, s_next, done = agent.buffer.sample(16)
    agent.buffer._rng.bit_generator.state = state
    q = agent.q.forward(s).astype(np.float64)
    y = r + 0.99 * (1 - done) * agent.target.forward(s_next).astype(np.float64).max(axis=1)
    err = y - q[np.arange(16), a]
    if td_clip:
        assert np.abs(err).max() > 1  # the clip is exercised
        err = np.clip(err, -1, 1)
    before = agent.q.flat_params.copy()
    loss = agent.learn()
    assert loss == pytest.approx(0.5 * np.mean(err**2), rel=1e-4)
    assert not np.array_equal(before, agent.q.flat_params)


def test_target_network_changes_only_at_a_sync():
    agent = filled_agent(tau=0.0, target_sync=3, batch_size=8)
    np.testing.assert_array_equal(agent.target.flat_params, agent.q.flat_params)
    synced = agent.target.flat_params.copy()
    agent.learn()
    agent.learn()
    np.testing.assert_array_equal(agent.target.flat_params, synced)
    assert not np.array_equal(agent.q.flat_params, synced)
    agent.learn()  # the third step copies the weights
    np.testing.assert_array_equal(agent.target.flat_params, agent.q.flat_params)


def test_soft_update_moves_the_target_by_tau():
    agent = filled_agent(tau=0.1, batch_size=8)
    old_target = agent.target.flat_params.astype(np.float64)
    agent.learn()
    expected = 0.1 * agent.q.flat_params.astype(np.float64) + 0.9 * old_target
    np.testing.assert_allclose(agent.target.flat_params, expected, rtol=1e-5, atol=1e-7)


def test_act_is_greedy_at_epsilon_0_and_uniform_at_1():
    agent = filled_agent()
    obs = np.array([0.1, -0.2, 0.03, 0.4], np.float32)
    greedy = int(np.argmax(agent.q.forward(obs[None])[0]))
    assert {agent.act(obs, 0.0) for _ in range(20)} == {greedy}
    counts = np.bincount([agent.act(obs, 1.0) for _ in range(400)], minlength=2)
    assert counts.min() > 150


def test_numba_and_numpy_agents_take_the_same_steps():
    agents = [filled_agent(backend=b, batch_size=32) for b in ("numba", "numpy")]
    for _ in range(5):
        losses = [agent.learn() for agent in agents]
        assert losses[0] == pytest.approx(losses[1], rel=1e-4)
    np.testing.assert_allclose(agents[0].q.flat_params, agents[1].q.flat_params, rtol=1e-4, atol=1e-5)


def test_text_curve_draws_every_episode_bin():
    returns = [10.0, 20.0, 200.0, 500.0]
    curve = dqn.text_curve(returns, [10.0, 15.0, 76.7, 182.5], width=4, height=6)
    lines = curve.splitlines()
    assert len(lines) == 6 + 2
    assert all(len(line) == len(lines[0]) for line in lines[:6])
    assert "#" in lines[5] and "." in lines[0]  # the first mean at the bottom, 500 at the top
    assert dqn.text_curve([], []) == "(no episodes)"


def test_a_few_episodes_of_cartpole(one_thread):
    pytest.importorskip("gymnasium", reason="the rl extra (gymnasium) is not installed")
    config = dqn.DQNConfig(warmup=30, batch_size=16)
    seen = []
    run = dqn.train(episodes=4, seed=1, config=config, log=lambda *args: seen.append(args))
    assert len(run["returns"]) == len(run["running_mean"]) == len(seen) == 4
    assert run["env_steps"] == sum(run["returns"])  # a reward of 1 per step
    assert run["train_steps"] == run["env_steps"] - 30
    assert run["running_mean"][-1] == pytest.approx(np.mean(run["returns"]))
    assert run["solved_at"] is None and run["train_steps_per_s"] > 0
    again = dqn.train(episodes=4, seed=1, config=config)
    assert again["returns"] == run["returns"]  # seeded


@pytest.mark.slow
def test_dqn_solves_cartpole_within_500_episodes(one_thread):
    """The script's defaults, seed 0: a mean return >= 195 over 100 consecutive episodes
    within 500 episodes (a few minutes on 2 cores)."""
    pytest.importorskip("gymnasium", reason="the rl extra (gymnasium) is not installed")
    run = dqn.train(episodes=500, seed=0)
    assert run["solved_at"] is not None and run["solved_at"] <= 500, run["running_mean"][-1]
    assert np.mean(run["returns"][-100:]) >= 195
