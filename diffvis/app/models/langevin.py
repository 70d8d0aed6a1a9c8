"""The Langevin view's state without Qt: the request it samples (annealed Langevin on a score model: K, ε, the
points, trained or exact), the grid of its score arrows, the run it computed (``result``, an ``Annealed``) and the
frame shown.

    model = LangevinModel()
    model.request = replace(model.request, params={"steps_per_level": 3}, n=50)
    model.result = model.work(state)(progress)   # the view runs this in its worker
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from diffvis.app.models.scene import SceneModel, lab_schedule, levels_of
from diffvis.core.fields import FieldSeries, field_series, padded_extent
from diffvis.core.pipeline import request_model, sample_request
from diffvis.core.progress import ReportProgress
from diffvis.core.registry import OBJECTIVES
from diffvis.core.request import SampleRequest
from diffvis.core.run import SamplingModel
from diffvis.core.samplers import LangevinFrame, langevin_frame
from diffvis.core.trajectory import Trajectory

STEPS_PER_LEVEL = 20  # the view's K: fewer than the paper's, so that a run is seen level by level in a moment
LANGEVIN = next(o.full_sampler for o in OBJECTIVES.values() if levels_of(o.name) == "sigma")  # of score models


@dataclass(frozen=True)
class Annealed:
    """What the Langevin view computes: the model, its trajectory, its score field at every level, which score it
    is, in words, and the request sampled."""

    model: SamplingModel
    trajectory: Trajectory
    series: FieldSeries
    source: str
    request: SampleRequest | None = None  # what was sampled (the formula panel explains its steps)


class LangevinModel(SceneModel):
    """``request``: annealed Langevin's settings, the points and the model (the trained score network when the run
    is one and ``exact`` is not asked for; otherwise the exact score); ``resolution``: arrows per side."""

    FIELDS = {**SceneModel.FIELDS, "request": SampleRequest(LANGEVIN, {"steps_per_level": STEPS_PER_LEVEL}, n=1000),
              "resolution": 20}  # fmt: skip

    def frames_of(self, result: Annealed) -> int:
        return len(result.trajectory.frames)

    def where(self, frame: int) -> LangevinFrame:
        """Level, σ, inner step and step size of ``frame`` of the result."""
        traj = self.result.trajectory
        params = traj.params
        return langevin_frame(self.result.model.ladder, params["steps_per_level"], params["step_size"], frame)

    def work(self, state) -> Callable[[ReportProgress], Annealed]:
        run, request, data = state.model_run, self.request, state.data
        schedule, extent, resolution = lab_schedule(state), padded_extent(data.points), self.resolution

        def compute(progress: ReportProgress) -> Annealed:
            model, _ = request_model(request, run, data, schedule)
            traj = sample_request(model, request, callback=lambda s: progress(s.i, s.total))
            series = field_series(model, data.points, extent, resolution=resolution, max_noised=1)
            source = f"exact{request.exact_text.removeprefix(' · exact')} score" if model.exact else (
                f"trained {model.objective.upper()}")  # fmt: skip
            return Annealed(model, traj, series, source, request)

        return compute
