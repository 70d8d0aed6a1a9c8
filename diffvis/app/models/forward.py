"""The forward view's state without Qt: the data noised by the schedule (``result``, a ``Noising``) and the
timestep shown. Frame t is x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε with one fixed ε per point, so every point travels a
continuous path; frame 0 is the clean data (where the view opens), frame T pure noise.

    model = ForwardModel()
    model.result = Noising.of(points, Schedule.make("cosine", 200))
    model.frame = 50
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from diffvis.app.models.scene import SceneModel
from diffvis.core.datasets import Normaliser
from diffvis.core.explain import Explanation
from diffvis.core.fields import NOISE_SEED
from diffvis.core.formulas import explain_noising
from diffvis.core.forward import q_sample
from diffvis.core.metrics import random_subset
from diffvis.core.schedules import Schedule
from diffvis.errors import ConfigError, DiffvisError

MAX_POINTS = 5000


@dataclass(frozen=True)
class Noising:
    """The standardised clean points x_0 (N, 2; at most MAX_POINTS of the data, none for fewer than two distinct
    points), their fixed noise ε and the schedule."""

    schedule: Schedule
    x0: np.ndarray
    eps: np.ndarray
    normaliser: Normaliser | None = None  # the data's (None: the points drawn are the standardised ones)

    @classmethod
    def of(cls, points: np.ndarray, schedule: Schedule) -> Noising:
        if len(points) > MAX_POINTS:
            points = points[random_subset(len(points), MAX_POINTS, seed=0)]
        try:
            normaliser = Normaliser.fit(points) if len(points) >= 2 else None
        except DiffvisError:
            normaliser = None
        x0 = normaliser.to_std(points) if normaliser is not None else np.zeros((0, 2))
        return cls(schedule, x0, np.random.default_rng(NOISE_SEED).standard_normal(x0.shape), normaliser)

    def abar(self, frame: int) -> float:
        """ᾱ after ``frame`` noising steps (frame 0 is the clean data, ᾱ = 1)."""
        return 1.0 if frame == 0 else float(self.schedule.alphas_cumprod[frame - 1])

    def points(self, frame: int) -> np.ndarray:
        """x_t at frame t (0 = the clean data, T = after the last noising step)."""
        return q_sample(self.x0, self.abar(frame), self.eps)

    def all_points(self) -> np.ndarray:
        """(T + 1, N, 2) x_t for every t, float32."""
        abar = np.concatenate([[1.0], self.schedule.alphas_cumprod])[:, None, None]
        return q_sample(self.x0[None], abar, self.eps[None]).astype(np.float32)


class ForwardModel(SceneModel):
    """``result``: the ``Noising`` shown, one frame per timestep 0 … T."""

    OPEN_AT_END = False

    def frames_of(self, result: Noising) -> int:
        return result.schedule.T + 1

    def explain(self, point: int, frame: int) -> Explanation | None:
        """x_t of sample ``point`` at frame t (``core.formulas.explain_noising``); None before any data."""
        noising = self.result
        if noising is None or not len(noising.x0):
            return None
        if not 0 <= point < len(noising.x0):
            raise ConfigError(f"the point must be between 0 and {len(noising.x0) - 1}, got {point}")
        return explain_noising(noising.x0[point], noising.eps[point], noising.abar(frame), frame, point,
                               noising.normaliser)  # fmt: skip
