"""The coupling picture (Liu, Gong & Liu 2023, Fig. 2; Tong et al. 2024, Fig. 1): n source points x₀, each joined
by a straight line to its partner x₁ under a coupling π(x₀, x₁):

* independent (I-CFM's pairs): a random training point each; the lines cross everywhere
* ot (OT-CFM's pairs): the same n training points, reassigned by the exact assignment over those n
  (``coupling.ot_assignment``): of all pairings of these source and data points, the one with the least mean
  squared length; its lines do not cross
* reflow: ψ(x₀), where x₀'s path under the model's own flow ends, solved finely (``reflow.pair_request``): the
  pairs a reflowed run trains on

All three start from the same n source points (the model's own source, drawn with ``seed``), in data coordinates
(the normaliser's one scalar scale keeps the OT assignment the same as in the standardised space it trains in).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from diffvis.core.coupling import COUPLINGS, REFLOW, ot_assignment
from diffvis.core.datasets import PointSet
from diffvis.core.pipeline import request_model, sample_request
from diffvis.core.progress import ReportProgress
from diffvis.core.reflow import interruptible, pair_request
from diffvis.core.run import Run, SamplingModel
from diffvis.core.schedules import Schedule
from diffvis.errors import Cancelled, ConfigError

PICTURED = (*COUPLINGS, REFLOW)  # the couplings the picture draws
TITLES = {"independent": "independent", "ot": "minibatch OT", REFLOW: "the flow's ψ(x₀) (reflow)"}
SHORTEST = "ot"  # its pairs' mean squared length is the least of any pairing of the same points
DEFAULT_LINES = 300


@dataclass(frozen=True)
class CouplingLines:
    """``source`` (n, 2) points x₀ and their ``partner`` (n, 2) x₁ under coupling ``kind``, in data coordinates."""

    kind: str
    source: np.ndarray
    partner: np.ndarray

    @property
    def mean_squared_length(self) -> float:
        """E ‖x₁ − x₀‖² over the pairs (OT's is the least of any pairing of the same points)."""
        return float(((self.partner - self.source) ** 2).sum(axis=1).mean())


def coupling_model(run: Run | None, data: PointSet, schedule: Schedule) -> SamplingModel:
    """The flow whose source and ψ the picture draws: the run's, when it is a flow; otherwise the exact flow of
    ``data`` (from N(0, I)) with ``schedule``."""
    return request_model(pair_request(1), run, data, schedule)[0]


def coupling_lines(model: SamplingModel, data: np.ndarray, kind: str, *, n: int = DEFAULT_LINES, seed: int = 0,
                   progress: ReportProgress | None = None) -> CouplingLines:  # fmt: skip
    """n source points of ``model`` (drawn with ``seed``) and their partners under ``kind`` (one of ``PICTURED``):
    among ``data`` (the training points, (N, 2) data coordinates, drawn with ``seed``) or ψ(x₀). ``progress(i,
    n)`` may cancel (``Cancelled``), also within the solve of ψ."""
    if kind not in PICTURED:
        raise ConfigError(f"the coupling must be one of {', '.join(PICTURED)}, got {kind!r}")
    request = pair_request(n, seed)
    x0, _ = model.starting_points(request)
    source = model.normaliser.to_data(x0.cpu().numpy().astype(np.float64))
    if kind == REFLOW:
        if progress is not None:
            model = interruptible(model, lambda: progress(0, 1))
        traj = sample_request(model, request, x_T=x0.to(model.device))
        partner = traj.samples.astype(np.float64)
    else:
        partner = np.asarray(data, dtype=np.float64)[np.random.default_rng(seed).integers(len(data), size=n)]
        if kind != "independent":
            partner = partner[ot_assignment(source, partner)]
    if progress is not None and progress(1, 1):
        raise Cancelled("cancelled")
    return CouplingLines(kind, source, partner)
