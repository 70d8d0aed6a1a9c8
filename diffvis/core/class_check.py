"""How well samples drawn for one class fit that class, where its density is known (the ``tree`` mixture and the
other known densities): what guidance trades away made measurable.

For class c with density p_c (``GaussianMixture.of_class``):

* in support: the share of samples with log p_c(x) ≥ ℓ_c, the level whose superlevel set holds 99 % of the
  class's mass (ℓ_c: the 1 % quantile of log p_c over ``FRESH`` fresh draws of the class);
* recall: mean distance from a fresh draw of the class to its nearest sample (NN recall), next to its floor
  between two fresh draws: large when guidance collapses the samples onto the class's most typical part;
* NLL: the samples' mean −log p_c, next to the class's own entropy (the fresh draws' mean −log p_c): guidance
  lowers it below the entropy by concentrating samples where p_c is high.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from diffvis.core.gaussian_mixture import GaussianMixture
from diffvis.core.metrics import MetricResult, nn_recall

FRESH = 20_000
MASS = 0.99


@dataclass(frozen=True)
class ClassCheck:
    """Samples of one class against its known density (see the module)."""

    in_support: float
    recall: MetricResult
    nll: float
    entropy: float


def class_check(samples: np.ndarray, mixture: GaussianMixture, label: int, seed: int = 0) -> ClassCheck:
    """``samples`` (N, 2, data coordinates) drawn for class ``label`` of ``mixture`` (data coordinates)."""
    p = mixture.of_class(label)
    rng = np.random.default_rng(seed)
    fresh = p.sample(FRESH, rng)[0]
    log_fresh = p.log_prob(torch.as_tensor(fresh)).numpy()
    level = float(np.quantile(log_fresh, 1 - MASS))
    log_samples = p.log_prob(torch.as_tensor(samples, dtype=torch.float64)).numpy()
    n = len(samples)
    pairs = [(p.sample(n, rng)[0], p.sample(n, rng)[0]) for _ in range(4)]
    floor = [nn_recall(a, b) for a, b in pairs]
    recall = MetricResult("nn_recall", nn_recall(samples, fresh[:n]), float(np.mean(floor)), float(np.std(floor)))
    return ClassCheck(float((log_samples >= level).mean()), recall, float(-log_samples.mean()),
                      float(-log_fresh.mean()))  # fmt: skip
