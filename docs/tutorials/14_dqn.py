# %% [markdown]
# # 14. Reinforcement learning with DQN
#
# *Deep Learning from Scratch*, chapter 8 (8.5, deep reinforcement learning); Mnih et al., "Human-level
# control through deep reinforcement learning" (2015).
#
# Every tutorial so far learned from labelled examples. Here nobody gives the answer: an **agent** acts
# in an **environment**, which answers each action with a new state and a **reward**, and the agent must
# find the actions that earn the most reward over time. The environment is gymnasium's CartPole-v1: push
# a cart left or right so that the pole hinged on it stays up. The state is four numbers (cart position
# and velocity, pole angle and angular velocity), there are two actions, and every step the pole stays
# up earns a reward of 1. An episode ends when the pole falls past 12 degrees or the cart leaves the
# track (*terminated*), or after 500 steps (*truncated*). "Solved" is the classic threshold: a mean
# return of at least 195 over 100 consecutive episodes.
#
# **Q-learning.** Q(s, a) is the return the agent can expect after taking action a in state s and acting
# well afterwards, with future rewards discounted by gamma per step:
#
# ```text
# Q(s, a) = r + gamma * max_a' Q(s', a')      (the Bellman equation; s' the next state, r the reward)
# ```
#
# Acting well is then easy: take argmax_a Q(s, a). A **deep Q-network** (DQN) approximates Q with a
# neural network, s in, one output per action, and trains it to make both sides of the equation agree:
# the right-hand side is the **TD target** y, the difference y − Q(s, a) the **TD error**, and the loss
# 0.5 (Q(s, a) − y)² (the book's `MeanSquaredError`). Three ideas make this stable; each is a cell below.
#
# The full agent, with its command line and timings, is `examples/dqn_cartpole.py`. Reduced (CI's
# default run) this page trains for a few episodes; with `FASTNN_TUTORIAL_FULL=1` it trains until the
# agent solves CartPole (at most 500 episodes).

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import fastnn as fnn

FULL = os.environ.get("FASTNN_TUTORIAL_FULL") == "1"
try:
    import gymnasium as gym
except ImportError as error:
    raise SystemExit("tutorial 14 needs gymnasium: pip install 'fastnn[rl]'") from error

fnn.set_num_threads(1)  # the arrays are tiny: one thread avoids the parallel kernels' start-up cost

# %% [markdown]
# ## The environment
#
# A random policy, for a baseline: the pole falls within a couple of dozen steps.

# %%
env = gym.make("CartPole-v1")
env.action_space.seed(0)
returns = []
for episode in range(20):
    obs, _ = env.reset(seed=episode)
    done, total = False, 0.0
    while not done:
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        total += reward
        done = terminated or truncated
    returns.append(total)
print("state:", obs.round(3), " actions:", env.action_space)
print(f"random policy: mean return {np.mean(returns):.1f} over {len(returns)} episodes")

# %% [markdown]
# ## Idea 1: experience replay
#
# Consecutive states are nearly the same, and a network trained on them in order forgets what it
# learned a few hundred steps ago. So every transition (s, a, r, s', done) goes into a buffer, and each
# training step fits a mini-batch drawn at random from the whole buffer.


# %%
class ReplayBuffer:
    """A ring buffer of transitions in preallocated arrays; sample(n) draws n uniformly."""

    def __init__(self, capacity, obs_dim, seed):
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.actions = np.zeros(capacity, np.int64)
        self.rewards = np.zeros(capacity, np.float32)
        self.dones = np.zeros(capacity, np.float32)
        self.capacity, self.size, self.next = capacity, 0, 0
        self.rng = np.random.default_rng(seed)

    def push(self, obs, action, reward, next_obs, done):
        i = self.next
        self.obs[i], self.actions[i], self.rewards[i] = obs, action, reward
        self.next_obs[i], self.dones[i] = next_obs, float(done)
        self.next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, n):
        i = self.rng.integers(0, self.size, size=n)
        return self.obs[i], self.actions[i], self.rewards[i], self.next_obs[i], self.dones[i]


# %% [markdown]
# ## Idea 2: a target network
#
# The TD target y = r + gamma · max_a' Q(s', a') moves whenever Q does, so the network chases its own
# tail. DQN computes y with a second copy of the network, the **target network**, that trails the
# trained one. Here it moves a small step towards it after every training step (a *soft update*):
#
# ```text
# theta_target <- tau * theta + (1 - tau) * theta_target        tau = 0.005
# ```
#
# A terminal state has no future: there y = r. A truncated episode (the 500-step limit) is not terminal,
# so its y still looks ahead.
#
# In fastnn all of a model's weights live in one flat buffer, `model.flat_params`, so the update is one
# line of NumPy.


# %%
def q_network(hidden, seed):
    """4 -> hidden -> hidden -> 2, ReLU: one Q value per action."""
    layers = [fnn.Dense(4, hidden), fnn.ReLU(), fnn.Dense(hidden, hidden), fnn.ReLU(), fnn.Dense(hidden, 2)]
    return fnn.Sequential(layers, loss=fnn.MeanSquaredError(), seed=seed)


def td_targets(q_next, rewards, dones, gamma):
    """y = r + gamma * (1 - done) * max_a' Q_target(s', a')."""
    return rewards + gamma * (1.0 - dones) * q_next.max(axis=1)


q, target = q_network(128, seed=0), q_network(128, seed=0)
target.flat_params[...] = q.flat_params

# the TD target by hand for two transitions, the second terminal
q_next = np.array([[1.0, 3.0], [2.0, 5.0]], np.float32)
print("y =", td_targets(q_next, np.array([1.0, 1.0]), np.array([0.0, 1.0]), gamma=0.99), "(1 + 0.99 * 3, 1)")

# %% [markdown]
# ## The training step
#
# Only the taken action has a target. The network's target for the other action is its own output,
# so the loss 0.5 Σ (output − target)² gives that output no gradient. This is fastnn's loss and
# backward pass, then one fused Adam step over the whole flat buffer:

# %%
GAMMA, BATCH, TAU = 0.99, 64, 0.005
optimizer = fnn.optim.Adam(lr=5e-4)


def learn(buffer):
    s, a, r, s_next, done = buffer.sample(BATCH)
    y = td_targets(target.forward(s_next), r, done, GAMMA)
    out = q.forward(s, train=True)
    wanted = out.copy()
    wanted[np.arange(BATCH), a] = y
    loss = q.loss_fn.forward(out, wanted)  # 0.5 * mean over the batch of (Q(s, a) - y)^2
    q.backward(input_grad=False)
    optimizer.step(q)
    target.flat_params[...] = TAU * q.flat_params + (1 - TAU) * target.flat_params
    return loss


# %% [markdown]
# ## Idea 3: epsilon-greedy exploration
#
# An agent that always takes its best-looking action never finds out that another one is better. With
# probability epsilon it acts at random instead; epsilon falls linearly from 1 to 0.05 over the first
# 5,000 steps, from exploring to exploiting.

# %%
rng = np.random.default_rng(2)


def epsilon_at(step, start=1.0, end=0.05, decay_steps=5_000):
    return start + (end - start) * min(step / decay_steps, 1.0)


def act(obs, epsilon):
    if rng.random() < epsilon:
        return int(rng.integers(2))
    return int(np.argmax(q.forward(obs[None])[0]))


print("epsilon at steps 0, 2500, 5000, 10000:", [round(epsilon_at(s), 3) for s in (0, 2500, 5000, 10000)])

# %% [markdown]
# ## Training
#
# The first 1,000 steps only fill the buffer (random actions); after that, one training step per
# environment step. The reduced run fills only 200 and stops after 30 episodes, long before the agent
# is any good; the
# full run goes on until the mean return of the last 100 episodes reaches 195 (with these settings and
# seeds it did well within the 500 allowed, see the printed episode).

# %%
buffer = ReplayBuffer(50_000, 4, seed=1)
episodes, warmup = (500, 1_000) if FULL else (30, 200)
returns, means, steps, solved_at = [], [], 0, None
for episode in range(1, episodes + 1):
    obs, _ = env.reset(seed=episode)
    obs = obs.astype(np.float32)
    done, total = False, 0.0
    while not done:
        action = act(obs, epsilon_at(steps))
        next_obs, reward, terminated, truncated, _ = env.step(action)
        next_obs = next_obs.astype(np.float32)
        buffer.push(obs, action, reward, next_obs, terminated)
        obs, total, steps = next_obs, total + reward, steps + 1
        done = terminated or truncated
        if steps > warmup:
            learn(buffer)
    returns.append(total)
    means.append(np.mean(returns[-100:]))
    if episode % (20 if FULL else 10) == 0:
        print(f"episode {episode:3d}  return {total:5.0f}  mean of the last 100 {means[-1]:6.1f}")
    if len(returns) >= 100 and means[-1] >= 195:
        solved_at = episode
        break
print(
    f"{steps} environment steps, {max(steps - warmup, 0)} training steps;",
    f"solved at episode {solved_at}" if solved_at else "not solved (yet)",
)

# %% [markdown]
# ## The learning curve
#
# Each episode's return, and the mean of the last 100. Early on the returns are those of the random
# policy; once epsilon is low and the network has learned that a cart drifting towards the end of the
# track is as bad as a falling pole, the episodes grow long.

# %%
fig, ax = plt.subplots(figsize=(8, 4))
ax.plot(np.arange(1, len(returns) + 1), returns, ".", alpha=0.5, label="return")
ax.plot(np.arange(1, len(means) + 1), means, label="mean of the last 100")
ax.axhline(195, color="gray", ls="--", label="solved (195)")
ax.set_xlabel("episode")
ax.set_ylabel("return")
ax.legend()
plt.show()

# %% [markdown]
# ## The learned policy
#
# Five episodes with epsilon = 0: the greedy policy alone. (After the reduced run it is still poor.)

# %%
greedy = []
for episode in range(5):
    obs, _ = env.reset(seed=10_000 + episode)
    done, total = False, 0.0
    while not done:
        obs, reward, terminated, truncated, _ = env.step(act(obs.astype(np.float32), 0.0))
        total += reward
        done = terminated or truncated
    greedy.append(total)
env.close()
print("greedy returns:", greedy)
