"""The score view's state without Qt: the model, grid and levels it computes score fields with, the class, which
field is shown and at what guidance, the overlays (exact score, error heatmap, noised data) and the probes.

    model = ScoreModel(resolution=8, levels=10)
    model.result = model.work(state)(progress)   # the view runs this in its worker
    model.update(label=1, field="guided", guidance=4.0)   # ``series`` is now u + 4 (c − u): nothing recomputed
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from diffvis.app.models.scene import Probe, SceneModel, follow, lab_schedule
from diffvis.core.classes import UNCONDITIONAL, dense_labels
from diffvis.core.explain import Explanation
from diffvis.core.fields import FieldSeries, field_series, guided_series, padded_extent, trajectory_scores
from diffvis.core.formulas import explain_field
from diffvis.core.guidance import check_guidance, guided
from diffvis.core.pipeline import sampling_model
from diffvis.core.progress import ReportProgress
from diffvis.core.registry import OBJECTIVES, sampler_info
from diffvis.core.request import SampleRequest
from diffvis.core.run import SamplingModel
from diffvis.errors import ConfigError

FIELD_KINDS = ("unconditional", "conditional", "guided")
PROBE_STEPS_PER_LEVEL = 20  # a probe on a σ ladder takes this many Langevin steps at each level


@dataclass(frozen=True)
class ScoreFields:
    """What the score view computes: the model, the unconditional fields, and those of class ``label`` (None when
    no class is chosen)."""

    model: SamplingModel
    unconditional: FieldSeries
    conditional: FieldSeries | None
    label: int | None


class ScoreModel(SceneModel):
    """``exact``: the exact model rather than the trained one; ``resolution``: arrows per side; ``levels``: the
    timesteps scrubbed (a σ ladder is scrubbed whole); ``label``: a class id or None; ``field``: which of
    ``FIELD_KINDS`` is shown for that class, guided at ``guidance``; ``show_exact``, ``show_error``,
    ``show_samples``: the overlays. ``series`` is the field series shown."""

    FIELDS = {**SceneModel.FIELDS, "exact": False, "resolution": 24, "levels": 50, "label": None,
              "field": "unconditional", "guidance": 1.0, "show_exact": False, "show_error": False,
              "show_samples": True}  # fmt: skip
    OPEN_AT_END = False  # a field first shows its noisiest level, smooth and readable; scrubbing sharpens it

    def __init__(self, **values) -> None:
        super().__init__(**values)
        object.__setattr__(self, "series", None)
        self.events.connect(self._choose_series)  # first: listeners see the series of the change

    def __setattr__(self, name: str, value) -> None:
        if name == "field" and value not in FIELD_KINDS:
            raise ValueError(f"a score field is one of {', '.join(FIELD_KINDS)}, not {value!r}")
        if name == "guidance":
            check_guidance(value)
        super().__setattr__(name, value)

    def frames_of(self, result: ScoreFields) -> int:
        return len(result.unconditional.times)

    def _choose_series(self, name: str, _value) -> None:
        """The unconditional, conditional or guided fields of the computed class."""
        if name not in ("result", "field", "guidance"):
            return
        fields, series = self.result, None
        if fields is not None:
            series = fields.unconditional
            if fields.conditional is not None and self.field == "conditional":
                series = fields.conditional
            elif fields.conditional is not None and self.field == "guided":
                series = guided_series(fields.unconditional, fields.conditional, self.guidance)
        object.__setattr__(self, "series", series)

    FORMULA_HINT = "Hover over an arrow (or pick a grid point) to see how it is computed."
    FORMULA_FIELDS = (*SceneModel.FORMULA_FIELDS, "field", "guidance")

    def explain(self, point: int, frame: int) -> Explanation | None:
        """The arrow shown at grid point ``point`` (row by row, ``FieldSeries.points``) at level ``frame``: the
        model's output there, guided as the field shown is (``core.formulas.explain_field``)."""
        series, fields = self.series, self.result
        if series is None:
            return None
        points = series.points
        if not 0 <= point < len(points):
            raise ConfigError(f"the grid point must be between 0 and {len(points) - 1}, got {point}")
        label, w = None, 1.0
        if fields.conditional is not None and self.field != "unconditional":
            label, w = fields.label, self.guidance if self.field == "guided" else 1.0
        net = guided(fields.model.model, label, w)
        frame = min(frame, len(series.times) - 1)
        return explain_field(fields.model, net, points[point], float(series.times[frame]), point)

    @property
    def guidance_params(self) -> dict:
        """The class and guidance scale of the field shown, as a request takes them (none: no class computed)."""
        fields = self.result
        if fields is None or fields.conditional is None:
            return {}
        if self.field == "unconditional":
            return {"label": UNCONDITIONAL}
        return {"label": fields.label, "guidance": self.guidance if self.field == "guided" else 1.0}

    @property
    def spacing(self) -> float:
        """The grid's spacing: the longest arrow."""
        return float(self.series.xs[1] - self.series.xs[0])

    def work(self, state) -> Callable[[ReportProgress], ScoreFields]:
        run = state.model_run
        exact = self.exact or run is None
        objective = run.objective if run is not None else state.model_config.objective
        schedule, data, label = lab_schedule(state), state.data, self.label
        points, extent = data.points, padded_extent(data.points)
        common = {"resolution": self.resolution, "frames": self.levels}

        def compute(progress: ReportProgress) -> ScoreFields:
            model = sampling_model(run, data, objective, exact=exact, schedule=schedule)
            labels = dense_labels(model.classes, data)
            unconditional = field_series(model, points, extent, labels=labels, cancelled=progress, **common)
            conditional = None
            if label is not None:
                conditional = field_series(model, points, extent, labels=labels, label=label, cancelled=progress,
                                           **common)  # fmt: skip
            return ScoreFields(model, unconditional, conditional, label)

        return compute

    def probe(self, position: np.ndarray) -> Callable[[ReportProgress], Probe] | None:
        """A particle placed at this level that follows the model down, seen as it enters each level and at the
        end: the probability-flow ODE over the scrubbed timesteps, or annealed Langevin from this σ."""
        if self.result is None:
            return None
        model, levels, guidance = self.result.model, len(self.series.times), self.guidance_params
        objective = OBJECTIVES[model.objective]
        info = sampler_info(objective.probe_sampler)
        per_level = PROBE_STEPS_PER_LEVEL if objective.levels == "sigma" else 1  # else one step a level
        steps = {info.steps_param: per_level if objective.levels == "sigma" else levels}
        request = SampleRequest(info.name, {**objective.probe_params, **steps}, **guidance)
        start, seed = self.frame * per_level, 1 + len(self.probes)

        def compute(progress: ReportProgress) -> Probe:
            traj = follow(model, request, position, start=start, seed=seed, progress=progress)
            at_levels = np.append(np.arange(levels) * per_level, traj.steps)  # the frame entering each level
            return Probe(traj.take(at_levels), trajectory_scores(traj, model)[at_levels])

        return compute
