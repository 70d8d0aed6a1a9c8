"""The reverse view's state without Qt: what it samples (``request``, ``label``, ``guidance``), the trajectory it
sampled (``result``, a ``Sampled``), the frame shown, the overlays (trails, x̂₀, density) and the probes.

    model = ReverseModel()
    model.set_request(SampleRequest(params={"steps": 40}, exact=True, n=500))   # DDIM, the default sampler
    model.result = model.work(state)(progress)   # the view runs this in its worker
    model.frame = 17
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from diffvis.app.models.scene import SampledScene, lab_schedule, nan_separated
from diffvis.core.compare import CFG, METRIC_POINTS, check_guide_choice, guide_of, with_guide_choice
from diffvis.core.datasets import DATASETS
from diffvis.core.guidance import check_guidance
from diffvis.core.metrics import memorised_fraction
from diffvis.core.pipeline import ClassScore, request_model, sample_request, score_classes
from diffvis.core.progress import ReportProgress
from diffvis.core.registry import OBJECTIVES
from diffvis.core.request import SampleRequest
from diffvis.core.run import SamplingModel
from diffvis.core.sources import fresh_sets
from diffvis.core.trajectory import Trajectory

MEMORISED_TOL = 1e-3  # a sample this close to a training point (× the data's extent) sits on it
FRESH_SEED = 77_777  # the fresh draw whose share within that distance is what chance gives (dense data)


@dataclass(frozen=True)
class Sampled:
    """What the reverse view computes: the model and the request (probes reuse them), the trajectory, the fraction
    of its final samples that sit on a training point, per class how its samples fare (empty for unconditional
    sampling), and the fraction of fresh data that sits as near a training point (None for a point file, whose
    fresh data are its own points): on dense data, chance alone puts many points there."""

    model: SamplingModel
    request: SampleRequest
    trajectory: Trajectory
    landed: float
    class_scores: list[ClassScore]
    landed_by_chance: float | None = None


def trail_paths(frames: np.ndarray, upto: int, count: int) -> np.ndarray:
    """(…, 2) the paths of ``count`` evenly chosen points over frames 0 … upto, separated by NaN rows."""
    n = frames.shape[1]
    index = np.unique(np.linspace(0, n - 1, min(count, n)).astype(int))
    return nan_separated(frames[: upto + 1, index].transpose(1, 0, 2))


class ReverseModel(SampledScene):
    """``request``: the sampler and its settings, the trained or exact model, the points and the seed (its class
    is ``label``: None, ``ALL_CLASSES``, ``UNCONDITIONAL`` or a class id; ``guidance`` is the scale w towards it,
    ``guide`` how it guides, (interval, guide_with) as ``compare.with_guide_choice`` takes it); ``trails``: how
    many points draw their path; ``show_x0``, ``show_density``: the overlays."""

    FIELDS = {**SampledScene.FIELDS, "request": SampleRequest(), "label": None, "guidance": 1.0, "guide": CFG,
              "trails": 30, "show_x0": False, "show_density": False}  # fmt: skip

    def __setattr__(self, name: str, value) -> None:
        if name == "request":
            value = replace(value, label=None, guidance=1.0, interval=None, guide_with=None)
        elif name == "label":
            SampleRequest(label=value)  # refuses what is not a class
        elif name == "guidance":
            check_guidance(value)
        elif name == "guide":
            check_guide_choice(value)
        super().__setattr__(name, value)

    def frames_of(self, result: Sampled) -> int:
        return len(result.trajectory.frames)

    @property
    def trajectory(self) -> Trajectory | None:
        return None if self.result is None else self.result.trajectory

    def full_request(self) -> SampleRequest:
        """What is sampled: ``request`` for the class ``label``, guided at w as ``guide`` says when a class is asked
        for or a weak model guides (``compare.with_guide_choice``)."""
        return with_guide_choice(replace(self.request, label=self.label), self.guide, self.guidance)

    @property
    def guides(self) -> bool:
        """True when w acts: a class is asked for, or a weak model guides."""
        request = self.full_request()
        return request.conditional or request.guide_with is not None

    def follow(self, objective: str | None) -> None:
        """The lab's run is now of ``objective`` (None: no run): when the trained network is asked for but the
        request's sampler cannot drive such a model (DDIM and a flow or EDM run), sample it with its objective's
        preview sampler instead of falling back to the exact model of another kind."""
        if objective is None or self.request.exact or objective in self.request.info.objectives:
            return
        info = OBJECTIVES[objective]
        self.request = replace(SampleRequest(info.preview_sampler, info.preview_params), n=self.request.n,
                               seed=self.request.seed)  # fmt: skip

    def set_request(self, request: SampleRequest) -> None:
        """Sample ``request``: its settings, class, guidance and how it guides (w stays as it was when it asks for
        no class and no weak model)."""
        guided = request.conditional or request.guide_with is not None
        self.update(request=request, label=request.label, guidance=request.guidance if guided else self.guidance,
                    guide=guide_of(request))  # fmt: skip

    def work(self, state) -> Callable[[ReportProgress], Sampled]:
        run, request, data = state.model_run, self.full_request(), state.data
        schedule = lab_schedule(state)
        fresh = fresh_sets(state.data_info, data, min(request.n, METRIC_POINTS))
        drawn_again = state.data_info.get("source") in DATASETS  # a file's fresh data are its own points

        def compute(progress: ReportProgress) -> Sampled:
            model, _ = request_model(request, run, data, schedule)
            traj = sample_request(model, request, callback=lambda s: progress(s.i, s.total))
            points = data.points
            tol = MEMORISED_TOL * float(np.ptp(points, axis=0).max())
            landed = memorised_fraction(traj.samples, points, tol)
            chance = memorised_fraction(fresh(FRESH_SEED).points, points, tol) if drawn_again else None
            scores = []
            if traj.labels is not None:
                m = METRIC_POINTS
                scores = score_classes(traj.samples[:m].astype(np.float64), traj.labels[:m], model.classes, fresh)
            return Sampled(model, request, traj, landed, scores, chance)

        return compute

    def trails_at(self, frame: int) -> np.ndarray:
        """(…, 2) the trails drawn at ``frame`` (none: (0, 2))."""
        if self.result is None or not self.trails:
            return np.zeros((0, 2))
        return trail_paths(self.trajectory.frames, frame, self.trails)
