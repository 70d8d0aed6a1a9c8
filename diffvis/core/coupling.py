"""Couplings π(x₀, x₁) of flow-matching batches: which source point each data point is joined to.

* independent (I-CFM): x₀ and x₁ drawn independently; the paths cross, and the learned flow curves.
* reflow: fixed pairs (x₀, ψ(x₀)) drawn from a trained flow (``diffvis.core.reflow``); each data row is paired
  with its own source point.
* ot (OT-CFM, Tong et al. 2024, Algorithm 3): each sub-batch of m source and m data points is paired by the exact
  assignment σ that minimises Σ_i ‖x₀_i − x₁_σ(i)‖² (scipy's ``linear_sum_assignment``, a shortest augmenting
  path method; for equal uniform masses the optimal plan is a permutation, so this is exact optimal transport
  between the two sub-batches). Paths of an optimal plan do not cross, and the flow comes out nearly straight.

An exact 1024 × 1024 assignment takes about 0.1 s on a CPU core, thirty training steps. ``PairStream`` therefore
pairs sub-batches of at most m = 64 points of one class (0.34 ms each; the cost grows as m³), and each pair serves
``reuse`` = 16 consecutive batches (a batch is the fresh pairs of its step and of the fifteen steps before). On the
moons (10,000 steps; W₂ / floor at one and two Euler steps, floor against the samples' reference): reuse 16
1.30 / 1.23, reuse 8 1.18 / 1.19 at twice the pairing (OT-CFM then trained at 0.75–0.76× I-CFM's steps per second,
against 0.87× with 16). Measured before W₂'s floor shared the reference (ratios ~1.3× higher): reuse 8 and 4 alike
(1.72 and 1.79 at one step), sub-batches of 32 worse (2.29), cutting sub-batches from one class at a time
(``pair_within_classes``) better (1.60), sub-batches of 128 1.58 at twice the cost. (Pairing ahead in a background
thread was tried and was slower: on two cores the thread competed with the training loop's OpenMP threads and for
the GIL.) The stream is a fixed sequence drawn from its own seed, so a run is reproducible. A class-conditional run
is paired within each class, so that every class's source points stay distributed as the source.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable

import numpy as np
import torch

from diffvis.errors import ConfigError

COUPLINGS = ("independent", "ot")  # what a run trained from a data set may choose
REFLOW = "reflow"  # a reflowed run's: fixed pairs drawn from another run's flow (``diffvis.core.reflow``)


@functools.cache
def _linear_sum_assignment():
    """scipy's solver, imported once on first use: scipy loads in ~0.2 s (only runs that pair by OT pay it), and
    an import statement in the function itself cost more than a 64 × 64 assignment on every call."""
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment


def ot_assignment(x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """The permutation p minimising Σ_i ‖x₀_i − x₁_{p_i}‖² for two (m, 2) point sets (rows come back sorted)."""
    d = x0[:, None, :] - x1[None, :, :]
    return _linear_sum_assignment()(np.einsum("ijk,ijk->ij", d, d))[1]


def pair_within_classes(x0: np.ndarray, x1: np.ndarray, labels: np.ndarray | None, sub_batch: int) -> np.ndarray:
    """The order of x₁ (and its labels) that pairs it with x₀ by ``ot_assignment`` within each class, in
    sub-batches of at most ``sub_batch`` rows of one class (so a class-conditional run's assignments are as large
    as an unconditional one's: pairing sub-batches of mixed classes within each class halved them on the moons)."""
    groups = [np.arange(len(x1))] if labels is None else [np.flatnonzero(labels == y) for y in np.unique(labels)]
    order = np.empty(len(x1), dtype=np.int64)
    for rows in groups:
        for start in range(0, len(rows), sub_batch):
            part = rows[start : start + sub_batch]
            order[part] = part[ot_assignment(x0[part], x1[part])]
    return order


Draw = Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray, np.ndarray | None]]


class PairStream:
    """Batches of ``batch`` OT-paired (x₀, x₁, labels), as CPU tensors.

    ``draw(n, rng)`` gives n source points, n data points (float32) and their labels (or None) as numpy arrays;
    each step brings batch/reuse fresh pairs, assigned in sub-batches of ``sub_batch``, and reuses the fresh pairs
    of the ``reuse`` − 1 steps before. The sequence is fixed by ``seed``."""

    def __init__(self, draw: Draw, *, batch: int, sub_batch: int, reuse: int, seed: int):
        fresh = batch // reuse
        if batch % reuse or fresh % min(sub_batch, fresh):
            raise ConfigError(f"the batch ({batch}) must split into {reuse} parts of whole OT sub-batches of "
                              f"{sub_batch}")  # fmt: skip
        self.draw, self.fresh, self.sub_batch = draw, fresh, min(sub_batch, fresh)
        self.rng = np.random.default_rng(seed)
        self.recent: deque = deque(maxlen=reuse)

    def _paired_block(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        x0, x1, labels = self.draw(self.fresh, self.rng)
        order = pair_within_classes(x0.astype(np.float64), x1.astype(np.float64), labels, self.sub_batch)
        return x0, x1[order], None if labels is None else labels[order]

    def next(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The next batch: this step's fresh pairs and those of the ``reuse`` − 1 steps before."""
        self.recent.append(self._paired_block())
        while len(self.recent) < self.recent.maxlen:
            self.recent.append(self._paired_block())
        parts = list(zip(*self.recent, strict=True))
        labels = None if parts[2][0] is None else torch.from_numpy(np.concatenate(parts[2]))
        return torch.from_numpy(np.concatenate(parts[0])), torch.from_numpy(np.concatenate(parts[1])), labels
