"""The classic learning rules: the perceptron, Hebb's rule and the delta rule.

Small, exact and in plain NumPy: these are for learning and for tests, not for speed.

    p = Perceptron(2).fit(X, AND)          # converges: AND is linearly separable
    p.fit(X, XOR).converged                # False, and linearly_separable(X, XOR) is False
    xor_network()(X)                       # a 2-layer network of perceptrons computes XOR

Truth tables use inputs X = [[0, 0], [1, 0], [0, 1], [1, 1]] (see :data:`GATE_INPUTS`).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "GATE_INPUTS",
    "GATES",
    "step",
    "Perceptron",
    "linearly_separable",
    "xor_network",
    "hebbian_update",
    "hebbian_weights",
    "hopfield_recall",
    "delta_rule_update",
    "DeltaRule",
]

#: The four input pairs of a two-input logic gate.
GATE_INPUTS = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float64)

#: Truth tables over :data:`GATE_INPUTS`.
GATES = {
    "AND": np.array([0, 0, 0, 1], dtype=np.float64),
    "OR": np.array([0, 1, 1, 1], dtype=np.float64),
    "NAND": np.array([1, 1, 1, 0], dtype=np.float64),
    "XOR": np.array([0, 1, 1, 0], dtype=np.float64),
}


def step(a) -> np.ndarray:
    """The perceptron's activation: 1 where a > 0, else 0."""
    return (np.asarray(a) > 0).astype(np.float64)


def _xt(x, t=None, where="classic"):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{where}: expected x of shape (N, D), got {x.shape}")
    if t is None:
        return x
    t = np.asarray(t, dtype=np.float64)
    if len(t) != len(x):
        raise ValueError(f"{where}: x has {len(x)} samples but t has {len(t)}")
    return x, t


class Perceptron:
    """Rosenblatt's perceptron: y = step(x @ w + b).

    ``fit`` applies the perceptron rule one sample at a time, w += lr * (t - y) * x and
    b += lr * (t - y), sweeping the data until an epoch makes no mistake (``converged``)
    or ``max_epochs`` have run. By the perceptron convergence theorem this stops for
    every linearly separable problem; for one that is not (XOR) no weights exist, so
    it never converges.
    """

    def __init__(self, n_inputs: int, lr: float = 0.1, w=None, b: float = 0.0):
        self.w = np.zeros(n_inputs) if w is None else np.asarray(w, dtype=np.float64).copy()
        if self.w.shape != (n_inputs,):
            raise ValueError(f"Perceptron: expected w of shape ({n_inputs},), got {self.w.shape}")
        self.b = float(b)
        self.lr = float(lr)
        self.converged = False
        self.epochs_run = 0
        self.errors: list[int] = []  # mistakes per epoch

    def __call__(self, x) -> np.ndarray:
        """step(x @ w + b) for x (N, D): the perceptron's outputs (``predict`` is the same)."""
        return step(_xt(x, where="Perceptron") @ self.w + self.b)

    predict = __call__

    def fit(self, x, t, max_epochs: int = 100) -> "Perceptron":
        """Apply the perceptron rule sample by sample until an epoch makes no mistake or
        ``max_epochs`` have run.

        x (N, D), t (N,) of 0/1. Sets ``converged``, ``epochs_run`` and ``errors`` (mistakes per
        epoch); returns self.
        """
        x, t = _xt(x, t, "Perceptron.fit")
        self.converged, self.epochs_run, self.errors = False, 0, []
        for _ in range(max_epochs):
            mistakes = 0
            for xi, ti in zip(x, t):
                error = ti - step(xi @ self.w + self.b)
                if error != 0:
                    mistakes += 1
                    self.w += self.lr * error * xi
                    self.b += self.lr * error
            self.epochs_run += 1
            self.errors.append(mistakes)
            if mistakes == 0:
                self.converged = True
                break
        return self


def linearly_separable(x, t) -> bool:
    """Whether some (w, b) puts every t = 1 sample at x @ w + b >= 1 and every t = 0 sample
    at x @ w + b <= -1, i.e. whether a perceptron can compute t exactly.

    Decided exactly as a linear-programming feasibility problem (scipy's HiGHS). The
    margin of 1 loses nothing: any strict separator can be scaled to have it.

    Why XOR fails, by hand: a perceptron would need b <= 0 (0, 0 -> 0), w1 + b > 0 and
    w2 + b > 0 (1, 0 and 0, 1 -> 1), and w1 + w2 + b <= 0 (1, 1 -> 0). Adding the middle
    two gives w1 + w2 + b > -b >= 0, contradicting the last.
    """
    from scipy.optimize import linprog

    x, t = _xt(x, t, "linearly_separable")
    sign = np.where(t > 0.5, 1.0, -1.0)
    # -sign_n * (x_n @ w + b) <= -1 for every n; variables (w, b), free.
    A = -sign[:, None] * np.hstack([x, np.ones((len(x), 1))])
    result = linprog(
        np.zeros(x.shape[1] + 1),
        A_ub=A,
        b_ub=-np.ones(len(x)),
        bounds=[(None, None)] * (x.shape[1] + 1),
        method="highs",
    )
    return result.status == 0


def xor_network(
    nand: Perceptron | None = None, or_: Perceptron | None = None, and_: Perceptron | None = None
):
    """XOR as a 2-layer network of perceptrons: XOR(a, b) = AND(NAND(a, b), OR(a, b)).

    Each gate is trained by the perceptron rule unless given. Returns a function of x (N, 2).
    """
    nand = nand or Perceptron(2).fit(GATE_INPUTS, GATES["NAND"])
    or_ = or_ or Perceptron(2).fit(GATE_INPUTS, GATES["OR"])
    and_ = and_ or Perceptron(2).fit(GATE_INPUTS, GATES["AND"])

    def network(x):
        hidden = np.stack([nand(x), or_(x)], axis=1)
        return and_(hidden)

    return network


# ------------------------------------------------------------------------ Hebb


def hebbian_update(W, y_pre, y_post, lr: float = 0.1) -> np.ndarray:
    """Hebb's rule: Δw_ij = lr * y_i * y_j for the weight from unit j (pre) to unit i (post).

    W (M, D); y_pre (D,) and y_post (M,), or batches (N, D) and (N, M), whose
    per-sample updates are summed. Returns the new W (W itself is not modified).
    """
    W = np.asarray(W, dtype=np.float64)
    pre, post = np.asarray(y_pre, dtype=np.float64), np.asarray(y_post, dtype=np.float64)
    if pre.ndim == 1:
        pre, post = pre[None], post[None]
    if W.shape != (post.shape[1], pre.shape[1]) or len(pre) != len(post):
        raise ValueError(
            f"hebbian_update: W {W.shape} must be (post units, pre units) = ({post.shape[1]}, {pre.shape[1]})"
        )
    return W + lr * post.T @ pre


def hebbian_weights(patterns, lr: float | None = None) -> np.ndarray:
    """A Hopfield network's weights by Hebb's rule: W = lr * sum_p y_p y_p^T, zero diagonal.

    ``patterns`` (P, D) of +-1; ``lr`` defaults to 1/D.
    """
    patterns = np.asarray(patterns, dtype=np.float64)
    lr = 1.0 / patterns.shape[1] if lr is None else lr
    W = hebbian_update(np.zeros((patterns.shape[1],) * 2), patterns, patterns, lr)
    np.fill_diagonal(W, 0.0)
    return W


def hopfield_recall(W, y, steps: int = 10) -> np.ndarray:
    """Synchronous updates y <- sign(W @ y) (ties keep +1) until y stops changing."""
    y = np.asarray(y, dtype=np.float64).copy()
    for _ in range(steps):
        new = np.where(W @ y >= 0, 1.0, -1.0)
        if np.array_equal(new, y):
            break
        y = new
    return y


# ------------------------------------------------------------------ delta rule


def delta_rule_update(w, x, t, lr: float = 0.01) -> np.ndarray:
    """The delta (Widrow-Hoff, LMS) rule for a linear unit y = x @ w: Δw = lr * (t - y) * x.

    w (D,) or (D, M); x (D,) or a batch (N, D), whose per-sample updates are summed
    (lr * x^T (t - x w)). Returns the new w (w itself is not modified).
    """
    w = np.asarray(w, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if x.ndim == 1:
        return w + lr * np.multiply.outer(x, t - x @ w).reshape(w.shape)
    return w + lr * x.T @ (t - x @ w)


class DeltaRule:
    """ADALINE: a linear unit y = x @ w + b trained by the delta rule, one sample at a time.

    Minimises the squared error; with a small enough rate it approaches the
    least-squares solution.
    """

    def __init__(self, n_inputs: int, lr: float = 0.01):
        self.w = np.zeros(n_inputs)
        self.b = 0.0
        self.lr = float(lr)

    def __call__(self, x) -> np.ndarray:
        return _xt(x, where="DeltaRule") @ self.w + self.b

    def fit(self, x, t, epochs: int = 100, seed: int | None = 0) -> "DeltaRule":
        """Run ``epochs`` sweeps of the delta rule over x (N, D) and t (N,), each in a seeded
        random order; returns self."""
        x, t = _xt(x, t, "DeltaRule.fit")
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            for i in rng.permutation(len(x)):
                error = t[i] - (x[i] @ self.w + self.b)
                self.w += self.lr * error * x[i]
                self.b += self.lr * error
        return self
