"""The comparison's state without Qt: what each panel samples, the class, the shared points and seed, the preset
last applied, the shared progress (``frame``, 0 … 100 %), what the panels show (``result``), and the sweep's step
counts. The Compare tab draws it and writes back through it; ``render --compare`` and ``bench`` drive it the same
way, headless:

    model = CompareModel()
    model.apply_preset("eta")
    model.n = 500
    model.result = model.work(state)(progress)   # the view runs this in its worker
    model.frame = 50                             # 50 % of every panel's trajectory

Any change of what a comparison is computed from (``SETTINGS``) empties ``result`` before it is announced: old
samples never sit under new labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from diffvis.app.models.scene import SceneModel, lab_schedule
from diffvis.core.classes import ALL_CLASSES, UNCONDITIONAL
from diffvis.core.compare import (
    CFG,
    LAB_RUN,
    METRIC_POINTS,
    PRESETS,
    PanelResult,
    Reference,
    RunRole,
    SweepPoint,
    check_guide_choice,
    compare,
    guide_of,
    parse_step_counts,
    sweep,
    with_guide_choice,
)
from diffvis.core.datasets import MAX_POINTS
from diffvis.core.explain import Explanation, explain_frame
from diffvis.core.guidance import check_guidance
from diffvis.core.progress import ReportProgress
from diffvis.core.request import EXACT_DENSITY, SampleRequest
from diffvis.core.sources import fresh_draw
from diffvis.errors import ConfigError

PROGRESS_FRAMES = 100  # the shared progress runs over 0 … 100 % of every panel's trajectory
MIN_PANELS, MAX_PANELS = 2, 6
SWEEP_STEPS = (5, 10, 20, 50, 100, 250, 1000)
SETTINGS = ("panels", "panel_count", "label", "n", "seed")  # what a comparison is computed from


def panel_frame(progress: int, frames: int) -> int:
    """The frame of a trajectory with ``frames`` frames at shared progress ``progress`` (0 … 100 %)."""
    return round(progress / PROGRESS_FRAMES * (frames - 1))


@dataclass(frozen=True)
class Panel:
    """One panel's own settings: ``request`` names the sampler, its settings and the model (its class, points and
    seed are the comparison's), ``guidance`` is the panel's scale w, used when a class is asked for or a weak model
    guides, ``role`` the run it samples (the lab's, or the newest of another kind: see ``RunRole``), ``guide`` how
    it guides: (interval, guide_with), as ``compare.with_guide_choice`` takes it."""

    request: SampleRequest
    guidance: float = 1.0
    role: RunRole = LAB_RUN
    guide: tuple = CFG

    def __post_init__(self) -> None:
        check_guidance(self.guidance)
        check_guide_choice(self.guide)
        bare = SampleRequest(self.request.sampler, self.request.params, self.request.exact)
        object.__setattr__(self, "request", bare)

    @classmethod
    def of(cls, request: SampleRequest, role: RunRole = LAB_RUN) -> Panel:
        return cls(request, request.guidance, role, guide_of(request))

    def asked(self, label, n: int, seed: int) -> SampleRequest:
        """The panel's request of ``n`` points from ``seed`` for class ``label``: None is the model's default, and so
        is 'all' at w = 1 (every class in proportion); UNCONDITIONAL is f(x, t, ∅); otherwise guided at w as its
        ``guide`` says (``with_guide_choice``)."""
        choice = {}
        if label == UNCONDITIONAL:
            choice = {"label": label}
        elif label is not None and (label != ALL_CLASSES or self.guidance != 1.0):
            choice = {"label": label, "guidance": self.guidance}
        return with_guide_choice(replace(self.request, n=n, seed=seed, **choice), self.guide, self.guidance)


@dataclass(frozen=True)
class PickedRuns:
    """The run each panel samples (None: the exact model), or the reason one is missing, raised by ``check`` in
    the worker so that it reaches the user as any failure of the comparison does."""

    runs: list
    missing: ConfigError | None = None

    def check(self) -> None:
        if self.missing is not None:
            raise self.missing


def _preset_fields(key: str, panels: tuple[Panel, ...]) -> dict:
    """The fields a preset sets: its panels first (the others keep theirs), their count, its class (every class in
    proportion unless it names one) and its sweep's step counts."""
    if key not in PRESETS:
        raise ConfigError(f"unknown preset {key!r}; choose one of {', '.join(PRESETS)}")
    preset = PRESETS[key]
    requests = preset.requests
    label = ALL_CLASSES if requests[0].label is None else requests[0].label
    panels = (*(Panel.of(r, preset.role(i)) for i, r in enumerate(requests)), *panels[len(requests) :])
    return {
        "panels": panels,
        "panel_count": len(requests),
        "label": label,
        "preset": key,
        "step_counts": preset.step_counts or SWEEP_STEPS,
    }


def model_choices() -> list[tuple[str, RunRole, bool | str]]:
    """What a panel may sample, as (title, role, exact): the lab's run, the exact model of the points and of their
    known density, and each kind of run a preset asks for (the newest such run of the session)."""
    roles = dict.fromkeys(role for preset in PRESETS.values() for role in preset.roles if role.objective)
    return [
        ("trained", LAB_RUN, False),
        ("exact", LAB_RUN, True),
        ("exact density", LAB_RUN, EXACT_DENSITY),
        *((f"newest {r.title}", r, False) for r in roles),
    ]


DEFAULT_PRESET = next(iter(PRESETS))
_first = PRESETS[DEFAULT_PRESET].requests


class CompareModel(SceneModel):
    """``panels``: MAX_PANELS Panels, of which the first ``panel_count`` are shown; ``label``: the class asked for
    (see ``Panel.asked``); ``n`` points a panel from ``seed``; ``preset``: the one last applied; ``result``: the
    PanelResults of ``requests()``, or None; ``frame``: the shared progress in %; ``step_counts``: the sweep's."""

    FIELDS = {
        **SceneModel.FIELDS,
        **_preset_fields(DEFAULT_PRESET, tuple(Panel.of(_first[i % len(_first)]) for i in range(MAX_PANELS))),
        "n": 2000,
        "seed": 0,
        "formula_panel": 0,  # the panel whose step the formula panel explains (the one last hovered)
    }

    def __init__(self, **values) -> None:
        super().__init__(**values)
        self.events.connect(self._empty_on_change)  # first: listeners see the result emptied

    def frames_of(self, result) -> int:
        return PROGRESS_FRAMES + 1

    def __setattr__(self, name: str, value) -> None:
        super().__setattr__(name, self._checked(name, value))

    def _checked(self, name: str, value):
        """``value`` for field ``name``, or ConfigError with the reason."""
        limits = {"panel_count": (MIN_PANELS, MAX_PANELS, "the number of panels"),
                  "n": (1, MAX_POINTS, "the points a panel")}  # fmt: skip
        if name in limits:
            low, high, what = limits[name]
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= value <= high:
                raise ConfigError(f"{what} is a whole number from {low:,} to {high:,}, got {value!r}")
            return int(value)
        if name == "label":
            SampleRequest(label=value)  # refuses what is not a class
        elif name == "panels" and (len(value) != MAX_PANELS or not all(isinstance(p, Panel) for p in value)):
            raise ValueError(f"a comparison keeps {MAX_PANELS} panels, got {value!r}")
        elif name == "result" and value is not None:
            value = tuple(value)
            if [r.spec for r in value] != self.requests():
                raise ValueError("a result of other requests than the panels'")
        return value

    def _empty_on_change(self, name: str, _value) -> None:
        if name in SETTINGS:
            self.result = None

    # --- settings -------------------------------------------------------------------------------------------------
    FORMULA_FIELDS = (*SceneModel.FORMULA_FIELDS, "formula_panel")

    def explain(self, point: int, frame: int) -> Explanation | None:
        """Sample ``point``'s step in panel ``formula_panel`` at the shared progress ``frame`` (%): that panel's
        frame, explained as the reverse view explains one (``core.explain.explain_frame``)."""
        if not self.result:
            return None
        i = min(self.formula_panel, len(self.result) - 1)
        r = self.result[i]
        if r.model is None:
            return None
        traj = r.trajectory
        k = min(panel_frame(frame, len(traj.frames)), traj.steps - 1)
        e = explain_frame(r.model, r.sampled, traj, point, k)
        return replace(e, heading=f"panel {i + 1} ({r.label}): {e.where}")

    def apply_preset(self, key: str) -> None:
        """The preset's panels, their count and class (applied again when chosen again: edits are undone)."""
        self.update(**_preset_fields(key, self.panels))

    def set_panel(self, index: int, panel: Panel) -> None:
        panels = list(self.panels)
        panels[index] = panel
        self.panels = tuple(panels)

    def set_step_counts(self, text: str) -> None:
        """'5, 10, 20' → (5, 10, 20); ConfigError, with the reason, for anything else."""
        self.step_counts = tuple(parse_step_counts(text))

    def reseed(self) -> None:
        """New initial noise for every panel."""
        self.seed += 1

    def requests(self) -> list[SampleRequest]:
        """The shown panels' requests, complete: sampler and settings, model, class, points and seed."""
        return [panel.asked(self.label, self.n, self.seed) for panel in self.panels[: self.panel_count]]

    # --- computing ------------------------------------------------------------------------------------------------
    def work(self, state) -> Callable[[ReportProgress], list[PanelResult]]:
        """``fn(progress)`` comparing the current requests (taken now: the model may change while it runs) with the
        state's model and data; ``progress(i, n)`` returns True to cancel."""
        requests, n, seed = self.requests(), self.n, self.seed
        runs = self.runs(state)
        data, schedule, draw = self._sources(state)

        def run_all(progress: ReportProgress) -> list[PanelResult]:
            runs.check()
            reference = Reference.draw(draw, cancelled=lambda: progress(0, 1000))
            return compare(requests, runs.runs, data, schedule, reference, n=n, seed=seed, progress=progress)

        return run_all

    def sweep_work(self, state) -> Callable[[ReportProgress], list[SweepPoint]]:
        """``fn(progress)`` computing quality against NFE: one of each family of the current requests (their
        settings but the step count) at each of ``step_counts`` up to T."""
        picked = self.runs(state)
        lines = {(r.family, id(run)): (r, run) for r, run in zip(self.requests(), picked.runs, strict=True)}
        requests, runs = [r for r, _ in lines.values()], [run for _, run in lines.values()]
        n, seed = self.n, self.seed
        data, schedule, draw = self._sources(state)
        steps = [s for s in self.step_counts if s <= schedule.T]

        def run_all(progress: ReportProgress) -> list[SweepPoint]:
            picked.check()
            reference = Reference.draw(draw, cancelled=lambda: progress(0, len(requests) * len(steps)))
            return sweep(requests, steps, runs, data, schedule, reference, n=n, seed=seed, progress=progress)

        return run_all

    def runs(self, state) -> PickedRuns:
        """The run each shown panel samples, picked now, on the GUI thread (see ``PickedRuns``)."""
        try:
            return PickedRuns(
                [panel.role.pick(state.runs, state.model_run) for panel in self.panels[: self.panel_count]]
            )
        except ConfigError as e:
            return PickedRuns([None] * self.panel_count, e)

    def _sources(self, state) -> tuple:
        """The training points, the schedule an exact model takes (the lab's run's, or the lab's settings) and
        ``draw(seed)``: fresh data to score against, at most METRIC_POINTS of them."""
        run = state.model_run
        schedule = run.schedule if run is not None else lab_schedule(state)
        return state.data, schedule, fresh_draw(state.data_info, state.data.points, min(self.n, METRIC_POINTS))
