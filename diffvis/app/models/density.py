"""The density view's state without Qt: which map it shows (the learned log p_θ, the reference log p, or their
difference), the grid and the likelihood solver it computes them with, whether the model's samples are drawn, the
maps it computed (``result``, a ``Densities``; one frame) and the clicked point (its ``DensityProbe``).

    model = DensityModel(resolution=16, steps=20)     # a fixed-step method's steps, or dopri5's tolerance
    model.result = model.work(state)(progress)   # the view runs this in its worker
    model.show = "difference"                     # drawn again, nothing recomputed
    model.add_probe(model.probe(point)(progress))  # the clicked point replaces the one before

The model is the lab's run (flow, DDPM or NCSN), or with no run the exact model of the distribution the data were
drawn from (``density.density_model``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diffvis.app.models.scene import SceneModel, lab_schedule
from diffvis.core.datasets import PointSet
from diffvis.core.density import (
    DEFAULT_RESOLUTION,
    DEFAULT_SOLVER,
    KDE,
    MAPS,
    DensityMap,
    DensityProbe,
    density_map,
    density_model,
    probe_density,
    reference_log_density,
    scott_bandwidth,
)
from diffvis.core.explain import Explanation
from diffvis.core.formulas import explain_log_density
from diffvis.core.likelihood import METHODS
from diffvis.core.progress import ReportProgress
from diffvis.core.run import SamplingModel
from diffvis.errors import ConfigError

TOLERANCES = (1e-3, 1e-4, 1e-5, 1e-6)  # dopri5's rtol = atol
LOG_RANGE = 12.0  # the log p maps colour this many nats below their highest value (lower: the darkest colour)


@dataclass(frozen=True)
class Densities:
    """What the density view computes: the model (a click reuses it), its ``map``, the training points it was
    computed for, the solver's settings, and in words whose density the map is and what its reference is."""

    model: SamplingModel
    map: DensityMap
    data: PointSet
    solver: dict
    about: str
    reference: str


@dataclass(frozen=True)
class Clicked:
    """A clicked point's ODE solve, and the reference log p there."""

    probe: DensityProbe
    reference: float


class DensityModel(SceneModel):
    """``show``: one of ``MAPS``; ``resolution``: grid points per side; ``method``: the likelihood solver (one of
    ``likelihood.METHODS``), ``steps`` for a fixed-step one, ``tolerance`` (rtol = atol) for dopri5;
    ``show_samples``: the model's samples, coloured by the value shown. ``probes`` holds the clicked point."""

    FIELDS = {**SceneModel.FIELDS, "show": MAPS[0], "resolution": DEFAULT_RESOLUTION,
              "method": DEFAULT_SOLVER["method"], "steps": 100, "tolerance": DEFAULT_SOLVER["rtol"],
              "show_samples": True}  # fmt: skip

    def __setattr__(self, name: str, value) -> None:
        if name == "show" and value not in MAPS:
            raise ConfigError(f"the density view shows one of {', '.join(MAPS)}, not {value!r}")
        if name == "method" and value not in METHODS:
            raise ConfigError(f"the likelihood solver is one of {', '.join(METHODS)}, not {value!r}")
        super().__setattr__(name, value)

    def frames_of(self, result: Densities) -> int:
        return 1

    @property
    def solver(self) -> dict:
        """``model_log_likelihood``'s solver settings."""
        return {"method": self.method, "steps": self.steps, "rtol": self.tolerance, "atol": self.tolerance}

    def work(self, state) -> Callable[[ReportProgress], Densities]:
        run, data, name = state.model_run, state.data, Path(str(state.data_info.get("source", "the data"))).name
        objective = run.objective if run is not None else state.model_config.objective
        schedule, resolution, solver = lab_schedule(state), self.resolution, self.solver

        def compute(progress: ReportProgress) -> Densities:
            model = density_model(run, data, objective, schedule)
            result = density_map(model, data, resolution=resolution, cancelled=progress, **solver)
            about = f"trained {objective} run on {name}" if run is not None else f"exact {objective} model of {name}"
            if model.classes is not None:
                about += f" (Σ_y π_y p(x | y) over its {len(model.classes)} classes)"
            reference = f"exact log p of the mixture {name} was drawn from"
            if result.reference_name == KDE:
                h = scott_bandwidth(data.points)
                reference = f"kernel density estimate of {name}, Scott's rule h = {h[0]:.2g} × {h[1]:.2g}"
            return Densities(model, result, data, solver, about, reference)

        return compute

    def probe(self, position: np.ndarray) -> Callable[[ReportProgress], Clicked] | None:
        """log p at ``position`` and its ODE path to the prior, solved as the maps were (None before a result)."""
        result = self.result
        if result is None:
            return None

        def compute(progress: ReportProgress) -> Clicked:
            probe = probe_density(result.model, position, cancelled=progress, **result.solver)
            reference, _ = reference_log_density(result.data, probe.point[None])
            return Clicked(probe, float(reference[0]))

        return compute

    def add_probe(self, probe: Clicked) -> None:
        """The clicked point replaces the one before."""
        self.probes = (probe,)

    FORMULA_HINT = "Click a point to see the terms of its log-likelihood here."

    def explain(self, point: int, frame: int) -> Explanation | None:
        """The clicked point's log p through the ODE, term by term (``point`` and ``frame`` play no part)."""
        return None if self.clicked is None else explain_log_density(self.clicked.probe)

    @property
    def clicked(self) -> Clicked | None:
        return self.probes[-1] if self.probes else None

    def shown(self) -> np.ndarray:
        """(R, R) the map shown; the difference only where either log p is coloured (NaN, drawn clear, where both
        are below the colour scale: two tails far from the data)."""
        m = self.result.map
        if self.show != "difference":
            return {"learned": m.learned, "reference": m.reference}[self.show]
        lo = self._log_p_levels()[0]
        return np.where((m.learned >= lo) | (m.reference >= lo), m.difference, np.nan)

    def shown_at_samples(self) -> np.ndarray:
        """(M,) the value shown at each of the model's samples."""
        m = self.result.map
        values = {"learned": m.sample_log_p, "reference": m.sample_reference}
        return values.get(self.show, m.sample_log_p - m.sample_reference)

    def levels(self) -> tuple[float, float]:
        """The colour scale of the map shown: for both log p maps the same, from ``LOG_RANGE`` nats below the
        highest value of either to it; for the difference, symmetric about 0, out to the largest |difference|
        where both log p are coloured (beyond, one of them is a tail far below the other: it saturates)."""
        lo, hi = self._log_p_levels()
        if self.show != "difference":
            return lo, hi
        m = self.result.map
        coloured = (m.learned >= lo) & (m.reference >= lo) & np.isfinite(m.difference)
        limit = float(np.abs(m.difference[coloured]).max(initial=0.0))
        return -max(limit, 1e-6), max(limit, 1e-6)

    def _log_p_levels(self) -> tuple[float, float]:
        m = self.result.map
        both = np.concatenate([m.learned.ravel(), m.reference.ravel()])
        both = both[np.isfinite(both)]
        hi = float(both.max())
        return max(float(both.min()), hi - LOG_RANGE), hi
