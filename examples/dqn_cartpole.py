"""DQN on gymnasium's CartPole-v1 (Deep Learning from Scratch 1, chapter 8; Mnih et al. 2015).

The agent learns Q(s, a), the expected discounted return of taking action a in state s and
acting well afterwards, with a small fastnn network (4 -> 128 -> 128 -> 2, ReLU) and three
ideas that make Q-learning with a network stable:

- experience replay: every transition (s, a, r, s', done) goes into a ring buffer, and each
  training step fits a random mini-batch of old transitions, not the last few correlated ones;
- a target network: the TD target y = r + gamma * max_a' Q_target(s', a') uses a copy of
  the network that trails the trained one: after every training step its weights move by
  tau = 0.005 towards the trained ones (a soft update; ``tau=0`` copies them every
  ``target_sync`` steps instead, as Mnih et al.);
- epsilon-greedy exploration: a random action with probability epsilon, which falls
  linearly from 1 to 0.05 over the first ``epsilon_decay`` environment steps.

The loss is the mean squared TD error of the taken action, 0.5 * (Q(s, a) - y)**2. Clipping
the error to [-1, 1] (Mnih et al.'s Huber gradient, ``--td-clip 1``) slowed this agent down:
the few transitions into a terminal state, whose error is large, are the ones that teach it
that the cart must not drift off the track, and with the clip seed 0's mean return stayed
between 96 and 120 from episode 250 to 500.

Each training step is fastnn's forward, loss, backward and one fused Adam step on a batch
of 64: small arrays, where the Python around the kernels costs more than the kernels.

    pip install 'fastnn[rl]'
    python examples/dqn_cartpole.py                       # seed 0, stops once solved
    python examples/dqn_cartpole.py --backend numpy       # the NumPy reference backend
    python examples/dqn_cartpole.py --compare-backends 5000   # steps/s of both backends
    python examples/dqn_cartpole.py --plot curve.png      # the curve as a figure (matplotlib)

"Solved" is the classic threshold: a mean return of at least 195 over 100 consecutive
episodes. Episodes cut off at 500 steps (CartPole-v1's time limit) are truncated, not
terminal: their TD target still bootstraps from s'.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

import fastnn as fnn

SOLVED_MEAN = 195.0
SOLVED_WINDOW = 100


@dataclass
class DQNConfig:
    """The agent's hyperparameters (the defaults solve CartPole-v1 with seed 0)."""

    hidden: int = 128
    lr: float = 5e-4
    gamma: float = 0.99
    batch_size: int = 64
    buffer_size: int = 50_000
    warmup: int = 1_000  # environment steps with random actions before the first training step
    tau: float = 0.005  # the target network moves by tau towards the trained one every step ...
    target_sync: int = 500  # ... or, with tau = 0, copies its weights every target_sync steps
    td_clip: float = 0.0  # > 0: clip the TD error to [-td_clip, td_clip] (the Huber loss's gradient)
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_decay: int = 5_000  # environment steps over which epsilon falls linearly
    backend: str = "numba"

    def __post_init__(self):
        for name in ("hidden", "batch_size", "buffer_size", "target_sync"):
            if getattr(self, name) < 1:
                raise ValueError(f"DQNConfig: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("gamma", "tau", "epsilon_start", "epsilon_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"DQNConfig: {name} must be in [0, 1], got {getattr(self, name)}")
        if self.backend not in ("numba", "numpy"):
            raise ValueError(f"DQNConfig: backend must be 'numba' or 'numpy', got {self.backend!r}")


class ReplayBuffer:
    """A ring buffer of transitions (s, a, r, s', done) in preallocated arrays.

    ``push`` overwrites the oldest transition once ``capacity`` are stored; ``sample(n)``
    draws n stored transitions uniformly with replacement, as arrays s (n, obs_dim) float32,
    a (n,) int64, r (n,) float32, s' (n, obs_dim) float32 and done (n,) float32 (1.0 where
    s' is terminal).
    """

    def __init__(self, capacity: int, obs_dim: int, seed: int | None = None):
        if capacity < 1:
            raise ValueError(f"ReplayBuffer: capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.actions = np.zeros(capacity, np.int64)
        self.rewards = np.zeros(capacity, np.float32)
        self.dones = np.zeros(capacity, np.float32)
        self.size = 0
        self._next = 0
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def push(self, obs, action: int, reward: float, next_obs, done: bool) -> None:
        i = self._next
        self.obs[i] = obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_obs[i] = next_obs
        self.dones[i] = float(done)
        self._next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, n: int):
        if self.size == 0:
            raise ValueError("ReplayBuffer.sample: the buffer is empty")
        idx = self._rng.integers(0, self.size, size=n)
        return self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.dones[idx]


def epsilon_at(step: int, start: float, end: float, decay_steps: int) -> float:
    """epsilon = start + (end - start) * min(step / decay_steps, 1): linear, then constant."""
    if decay_steps <= 0:
        return end
    return start + (end - start) * min(step / decay_steps, 1.0)


def td_targets(q_next: np.ndarray, rewards: np.ndarray, dones: np.ndarray, gamma: float) -> np.ndarray:
    """y = r + gamma * (1 - done) * max_a' Q_target(s', a') for q_next (N, A); returns (N,)."""
    return rewards + gamma * (1.0 - dones) * q_next.max(axis=1)


def q_network(obs_dim: int, n_actions: int, hidden: int, backend: str, seed: int | None) -> fnn.Sequential:
    """obs_dim -> hidden -> hidden -> n_actions with ReLU, the mean squared error as its loss."""
    layers = [
        fnn.Dense(obs_dim, hidden),
        fnn.ReLU(),
        fnn.Dense(hidden, hidden),
        fnn.ReLU(),
        fnn.Dense(hidden, n_actions),
    ]
    return fnn.Sequential(layers, loss=fnn.MeanSquaredError(), backend=backend, seed=seed)


class DQNAgent:
    """The Q-network, its target copy, the replay buffer and the Adam optimizer."""

    def __init__(self, obs_dim: int, n_actions: int, config: DQNConfig, seed: int = 0):
        self.config = config
        self.n_actions = n_actions
        self.q = q_network(obs_dim, n_actions, config.hidden, config.backend, seed)
        self.target = q_network(obs_dim, n_actions, config.hidden, config.backend, seed)
        self.sync_target()
        self.optimizer = fnn.optim.Adam(lr=config.lr)
        self.buffer = ReplayBuffer(config.buffer_size, obs_dim, seed=seed + 1)
        self.rng = np.random.default_rng(seed + 2)
        self.train_steps = 0
        self.train_seconds = 0.0

    def sync_target(self) -> None:
        """Copy the trained network's weights into the target network (one flat buffer)."""
        self.target.flat_params[...] = self.q.flat_params

    def soft_update(self, tau: float) -> None:
        """theta_target <- tau * theta + (1 - tau) * theta_target (Lillicrap et al.'s soft update)."""
        target = self.target.flat_params
        target *= 1.0 - tau
        target += tau * self.q.flat_params

    def act(self, obs, epsilon: float) -> int:
        """A random action with probability epsilon, else argmax_a Q(obs, a)."""
        if self.rng.random() < epsilon:
            return int(self.rng.integers(self.n_actions))
        return int(np.argmax(self.q.forward(obs[None])[0]))

    def learn(self) -> float:
        """One training step on a replayed mini-batch; returns its loss.

        The loss is 0.5 * (Q(s, a) - y)**2 averaged over the batch: the network's target
        for the taken action is y (Q(s, a) + clip(y - Q(s, a), -c, c) with ``td_clip`` c,
        the gradient of the Huber loss) and the other actions' targets are their own
        outputs, so their gradient is zero.
        """
        start = time.perf_counter()
        cfg = self.config
        s, a, r, s_next, done = self.buffer.sample(cfg.batch_size)
        y = td_targets(self.target.forward(s_next), r, done, cfg.gamma)
        q = self.q.forward(s, train=True)
        rows = np.arange(len(a))
        targets = q.copy()
        error = y - q[rows, a]
        targets[rows, a] += np.clip(error, -cfg.td_clip, cfg.td_clip) if cfg.td_clip > 0 else error
        loss = self.q.loss_fn.forward(q, targets)
        self.q.backward(input_grad=False)
        self.optimizer.step(self.q)
        self.train_steps += 1
        if cfg.tau > 0:
            self.soft_update(cfg.tau)
        elif self.train_steps % cfg.target_sync == 0:
            self.sync_target()
        self.train_seconds += time.perf_counter() - start
        return float(loss)


def make_env(seed: int):
    try:
        import gymnasium as gym
    except ImportError as error:
        raise SystemExit("dqn_cartpole: needs gymnasium: pip install 'fastnn[rl]'") from error
    env = gym.make("CartPole-v1")
    env.action_space.seed(seed)
    return env


def train(
    episodes: int = 500,
    seed: int = 0,
    config: DQNConfig | None = None,
    stop_when_solved: bool = True,
    max_env_steps: int | None = None,
    log=None,
) -> dict:
    """Train a DQN agent on CartPole-v1; returns the curve and the timings.

    Result keys: ``returns`` (per episode), ``running_mean`` (mean of the last <= 100),
    ``solved_at`` (the episode, from 1, whose 100-episode mean first reached 195, or None),
    ``env_steps``, ``train_steps``, ``train_steps_per_s`` (training steps over the time
    spent in them), ``env_steps_per_s`` (whole loop), ``seconds``, ``config``.
    ``log(episode, ret, mean, epsilon)`` is called after every episode.
    """
    config = config or DQNConfig()
    env = make_env(seed)
    agent = DQNAgent(env.observation_space.shape[0], int(env.action_space.n), config, seed=seed)
    returns, running_mean, solved_at, env_steps = [], [], None, 0
    start = time.perf_counter()
    for episode in range(1, episodes + 1):
        obs, _ = env.reset(seed=seed + episode)
        obs = obs.astype(np.float32)
        total, done = 0.0, False
        while not done:
            epsilon = epsilon_at(env_steps, config.epsilon_start, config.epsilon_end, config.epsilon_decay)
            action = agent.act(obs, epsilon)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            next_obs = next_obs.astype(np.float32)
            agent.buffer.push(obs, action, reward, next_obs, terminated)
            obs, total, env_steps = next_obs, total + reward, env_steps + 1
            done = terminated or truncated
            if env_steps > config.warmup:
                agent.learn()
            if max_env_steps is not None and env_steps >= max_env_steps:
                done = True
        returns.append(total)
        running_mean.append(float(np.mean(returns[-SOLVED_WINDOW:])))
        if log is not None:
            log(episode, total, running_mean[-1], epsilon)
        if solved_at is None and len(returns) >= SOLVED_WINDOW and running_mean[-1] >= SOLVED_MEAN:
            solved_at = episode
            if stop_when_solved:
                break
        if max_env_steps is not None and env_steps >= max_env_steps:
            break
    seconds = time.perf_counter() - start
    env.close()
    return {
        "returns": returns,
        "running_mean": running_mean,
        "solved_at": solved_at,
        "env_steps": env_steps,
        "train_steps": agent.train_steps,
        "train_steps_per_s": agent.train_steps / agent.train_seconds if agent.train_seconds else 0.0,
        "env_steps_per_s": env_steps / seconds if seconds else 0.0,
        "seconds": seconds,
        "config": asdict(config),
        "seed": seed,
    }


def text_curve(returns, running_mean, width: int = 60, height: int = 12) -> str:
    """An ASCII chart of the episode returns ('.') and their 100-episode running mean ('#'),
    episodes binned into ``width`` columns (each shows its bin's mean), with the 195 line ('-')."""
    n = len(returns)
    if n == 0:
        return "(no episodes)"
    top = max(max(returns), SOLVED_MEAN) * 1.05
    bins = np.array_split(np.arange(n), min(width, n))
    grid = [[" "] * len(bins) for _ in range(height)]

    def row(value):
        return height - 1 - min(int(value / top * height), height - 1)

    for col, idx in enumerate(bins):
        grid[row(SOLVED_MEAN)][col] = "-"
        grid[row(np.mean([returns[i] for i in idx]))][col] = "."
        grid[row(running_mean[idx[-1]])][col] = "#"
    lines = [f"{top * (height - 1 - i) / height:6.0f} |" + "".join(cells) for i, cells in enumerate(grid)]
    lines.append("       +" + "-" * len(bins))
    lines.append(f"        episodes 1..{n}   '.' return, '#' mean of the last 100, '-' {SOLVED_MEAN:.0f}")
    return "\n".join(lines)


def compare_backends(env_steps: int, seed: int = 0) -> dict:
    """Run the same seeded agent for ``env_steps`` environment steps on each backend (after
    one short run that compiles the kernels) and return their training steps per second."""
    results = {}
    for backend in ("numba", "numpy"):
        train(episodes=10_000, seed=seed, config=DQNConfig(backend=backend, warmup=64), max_env_steps=200)
        run = train(episodes=10_000, seed=seed, config=DQNConfig(backend=backend), max_env_steps=env_steps)
        results[backend] = {k: run[k] for k in ("train_steps", "train_steps_per_s", "env_steps_per_s")}
    return results


def profile_learn(steps: int, config: DQNConfig, seed: int = 0) -> str:
    """cProfile's table (sorted by internal time) of ``steps`` training steps on a buffer of
    random transitions, after 50 untimed ones: where a step's time goes."""
    import cProfile
    import io
    import pstats

    agent = DQNAgent(4, 2, config, seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(2 * config.batch_size):
        agent.buffer.push(rng.standard_normal(4), int(rng.integers(2)), 1.0, rng.standard_normal(4), False)
    for _ in range(50):
        agent.learn()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        agent.learn()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    return out.getvalue()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=500, help="at most this many episodes (500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", choices=["numba", "numpy"], default="numba")
    parser.add_argument("--no-stop", action="store_true", help="keep training after it is solved")
    parser.add_argument("--every", type=int, default=10, help="print a line every N episodes (10)")
    parser.add_argument("--plot", help="save the curve as a figure (needs matplotlib)")
    parser.add_argument("--json", help="write the curve and timings to this JSON file")
    parser.add_argument(
        "--compare-backends", type=int, metavar="STEPS", help="time STEPS environment steps on both backends"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="threads for fastnn's kernels (1: the arrays are tiny)"
    )
    for field, value in asdict(DQNConfig()).items():
        if field != "backend":
            flag = "--" + field.replace("_", "-")
            parser.add_argument(flag, type=type(value), default=value, help=f"DQNConfig.{field} ({value})")
    parser.add_argument("--profile", type=int, metavar="STEPS", help="profile STEPS training steps and exit")
    args = parser.parse_args(argv)
    fnn.set_num_threads(args.threads)
    config = DQNConfig(**{f: getattr(args, f) for f in asdict(DQNConfig())})

    if args.profile:
        print(profile_learn(args.profile, config, seed=args.seed))
        return 0

    if args.compare_backends:
        results = compare_backends(args.compare_backends, seed=args.seed)
        print(f"{'backend':8} {'train steps':>12} {'train steps/s':>14} {'env steps/s':>12}")
        for backend, r in results.items():
            steps, train_rate, env_rate = r["train_steps"], r["train_steps_per_s"], r["env_steps_per_s"]
            print(f"{backend:8} {steps:12d} {train_rate:14.0f} {env_rate:12.0f}")
        ratio = results["numba"]["train_steps_per_s"] / results["numpy"]["train_steps_per_s"]
        print(f"numba / numpy training steps per second: {ratio:.2f}x")
        return 0

    def log(episode, ret, mean, epsilon):
        if episode % args.every == 0 or episode == 1:
            print(f"episode {episode:4d}  return {ret:5.0f}  mean of last 100 {mean:6.1f}  eps {epsilon:.2f}")

    run = train(
        episodes=args.episodes,
        seed=args.seed,
        config=config,
        stop_when_solved=not args.no_stop,
        log=log,
    )
    print()
    print(text_curve(run["returns"], run["running_mean"]))
    print()
    print("returns:", " ".join(f"{r:.0f}" for r in run["returns"]))
    solved = f"solved at episode {run['solved_at']}" if run["solved_at"] else "not solved"
    print(
        f"{solved}; {run['env_steps']} environment steps, {run['train_steps']} training steps "
        f"({args.backend}: {run['train_steps_per_s']:.0f} training steps/s, "
        f"{run['env_steps_per_s']:.0f} environment steps/s overall) in {run['seconds']:.1f} s"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(run, f)
    if args.plot:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 4))
        ax.plot(np.arange(1, len(run["returns"]) + 1), run["returns"], ".", alpha=0.4, label="return")
        ax.plot(np.arange(1, len(run["returns"]) + 1), run["running_mean"], label="mean of the last 100")
        ax.axhline(SOLVED_MEAN, color="gray", ls="--", label="solved (195)")
        ax.set_xlabel("episode")
        ax.set_ylabel("return")
        ax.legend()
        fig.savefig(args.plot, dpi=100, bbox_inches="tight")
    return 0 if run["solved_at"] else 1


if __name__ == "__main__":
    sys.exit(main())
