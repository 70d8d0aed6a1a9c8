"""The views' Qt-free models: importing them loads no Qt; a change emits once; a new result keeps the frame or
opens on the last; each model computes and probes headless exactly as the core does; and a view draws its model
and writes back through it, both ways, redrawing once per change."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from diffvis.app.models.brush import DRAWN, POINTS_PER_DAB, Brush
from diffvis.app.models.forward import MAX_POINTS, ForwardModel, Noising
from diffvis.app.models.langevin import STEPS_PER_LEVEL, LangevinModel
from diffvis.app.models.reverse import ReverseModel
from diffvis.app.models.scene import SceneModel
from diffvis.app.models.score import ScoreModel
from diffvis.core.classes import ALL_CLASSES, UNCONDITIONAL
from diffvis.core.datasets import Normaliser, PointSet
from diffvis.core.fields import NOISE_SEED, guided_series
from diffvis.core.forward import q_sample
from diffvis.core.metrics import random_subset
from diffvis.core.models import ModelConfig
from diffvis.core.pipeline import probe_trajectory, request_model, sample_request
from diffvis.core.request import SampleRequest
from diffvis.core.schedules import Schedule
from diffvis.core.sources import load_source
from diffvis.core.training import TrainConfig
from diffvis.errors import Cancelled, ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Frames(SceneModel):
    """A result is a list of frames."""

    def frames_of(self, result) -> int:
        return len(result)


def record(model) -> list:
    seen = []
    model.events.connect(lambda name, value: seen.append(name))
    return seen


def lab(source: str = "moons", n: int = 60) -> SimpleNamespace:
    """What a model reads of LabState, with no run: the exact model of ``n`` points."""
    data, info = load_source(source, n=n)
    return SimpleNamespace(model_run=None, runs=[], data=data, data_info=info, train_config=TrainConfig(),
                           model_config=ModelConfig())  # fmt: skip


def no_progress(i: int, n: int) -> bool:
    return False


# --- without Qt -----------------------------------------------------------------------------------------------------


def test_importing_every_model_loads_no_qt():
    """In a fresh interpreter, as render's and bench's callers, or a headless test, would."""
    code = (
        "import importlib, pkgutil, sys, diffvis.app.models as m\n"
        "for info in pkgutil.iter_modules(m.__path__):\n"
        "    importlib.import_module(f'diffvis.app.models.{info.name}')\n"
        "loaded = sorted(k for k in sys.modules if k.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6'))\n"
        "assert len(list(pkgutil.iter_modules(m.__path__))) >= 7\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- the shared frame rule ------------------------------------------------------------------------------------------


def test_the_frame_stays_within_the_result_and_each_change_emits_once():
    model = Frames()
    seen = record(model)
    assert (model.count, model.frame) == (0, 0)
    model.frame = 5  # nothing to show: frame 0
    assert model.frame == 0 and seen == []
    model.result = list(range(10))
    assert (model.count, model.frame) == (10, 9) and seen == ["result"]  # opens on the last frame, one event
    model.frame = 3
    model.frame = 3
    model.frame = 42
    model.frame = -1
    assert seen == ["result", "frame", "frame", "frame"] and model.frame == 0


def test_a_new_result_keeps_the_frame_unless_it_was_the_last_or_lies_past_the_end():
    model = Frames()
    model.result = list(range(10))
    model.frame = 4
    model.add_probe("a probe")
    seen = record(model)
    model.result = list(range(10))
    assert model.frame == 4 and model.probes == () and seen == ["result"]  # the probes belonged to the old one
    model.result = list(range(3))  # frame 4 is gone: the last
    assert model.frame == 2
    model.result = list(range(20))  # the last stays the last
    assert model.frame == 19
    model.result = None
    assert (model.count, model.frame) == (0, 0)
    forward = ForwardModel()  # opens on its first frame, the clean data
    forward.result = Noising.of(np.random.default_rng(0).normal(size=(50, 2)), Schedule.make("linear", 100))
    assert (forward.count, forward.frame) == (101, 0)


def test_overlays_and_settings_emit_once_per_change():
    model = ReverseModel()
    seen = record(model)
    model.update(show_x0=True, trails=5)
    model.update(show_x0=True, trails=5)
    model.request = replace(model.request, n=100)
    model.request = replace(model.request, n=100)
    assert seen == ["show_x0", "trails", "request"]


# --- the reverse model ----------------------------------------------------------------------------------------------


def test_the_reverse_request_keeps_its_class_apart():
    model = ReverseModel()
    model.set_request(SampleRequest("ddim", {"steps": 9}, exact=True, label=1, guidance=3.0, n=40, seed=2))
    assert model.request == SampleRequest("ddim", {"steps": 9}, exact=True, n=40, seed=2)  # no class in it
    assert (model.label, model.guidance) == (1, 3.0)
    assert model.full_request() == SampleRequest("ddim", {"steps": 9}, exact=True, label=1, guidance=3.0, n=40, seed=2)
    model.label = UNCONDITIONAL  # no class to guide towards: w is kept, not asked for
    assert model.guidance == 3.0 and model.full_request().guidance == 1.0
    model.set_request(SampleRequest())  # asks for no class: w stays for the next class chosen
    assert model.label is None and model.guidance == 3.0
    model.set_request(SampleRequest(label=ALL_CLASSES))  # every class, at w = 1
    assert model.guidance == 1.0
    with pytest.raises(ConfigError):
        model.label = "some class"
    with pytest.raises(ConfigError):
        model.guidance = -1.0


def test_the_reverse_model_samples_and_probes_as_the_core_does():
    state = lab()
    model = ReverseModel()
    model.set_request(SampleRequest("ddim", {"steps": 6}, exact=True, label=ALL_CLASSES, n=30))
    model.result = model.work(state)(no_progress)
    core_model, _ = request_model(model.full_request(), None, state.data, Schedule.make())
    alone = sample_request(core_model, model.full_request())
    np.testing.assert_array_equal(model.trajectory.frames, alone.frames)
    assert model.count == 7 and model.frame == 6

    with pytest.raises(ConfigError, match="before the last frame"):
        model.probe(np.zeros(2))
    model.frame = 2
    probe = model.probe(np.array([0.5, 0.2]))(no_progress)
    expected = probe_trajectory(core_model, model.result.request, np.array([[0.5, 0.2]]), start=2, seed=1)
    np.testing.assert_allclose(probe.trajectory.frames, expected.frames, rtol=1e-6, atol=1e-6, equal_nan=True)
    model.add_probe(probe)
    assert model.probes == (probe,)
    assert model.trails_at(3).shape == (30 * 5, 2)  # 30 paths of frames 0 … 3 and a NaN row each


def test_a_probe_reports_progress_and_stops_when_told():
    model = ReverseModel()
    model.set_request(SampleRequest("ddim", {"steps": 8}, exact=True, n=10))
    model.result = model.work(lab())(no_progress)
    model.frame = 0
    steps = []
    model.probe(np.zeros(2))(lambda i, n: steps.append((i, n)) and False)
    assert steps == [(i, 8) for i in range(1, 9)]
    told = []
    with pytest.raises(Cancelled):
        model.probe(np.zeros(2))(lambda i, n: told.append(i) or True)
    assert told == [1]


# --- the score, Langevin and forward models -------------------------------------------------------------------------


def test_the_score_model_switches_fields_without_recomputing():
    model = ScoreModel(resolution=6, levels=4, label=1)
    model.result = model.work(lab())(no_progress)
    fields = model.result
    assert model.series is fields.unconditional and model.guidance_params == {"label": UNCONDITIONAL}
    seen = record(model)
    model.field = "conditional"
    assert model.series is fields.conditional and model.guidance_params == {"label": 1, "guidance": 1.0}
    model.update(field="guided", guidance=2.5)
    expected = guided_series(fields.unconditional, fields.conditional, 2.5)
    np.testing.assert_allclose(model.series.exact, expected.exact)
    assert seen == ["field", "field", "guidance"] and model.result is fields
    with pytest.raises(ValueError):
        model.field = "sideways"


def test_the_langevin_model_runs_its_own_k_on_the_exact_score():
    model = LangevinModel()
    assert model.request.params["steps_per_level"] == STEPS_PER_LEVEL == 20
    model.request = replace(model.request, params={"steps_per_level": 2}, n=20)
    model.resolution = 6
    result = model.work(lab())(no_progress)
    model.result = result
    ladder = result.model.ladder
    assert result.model.exact and result.source == "exact score"
    assert model.count == 2 * ladder.L + 2 and model.frame == model.count - 1
    where = model.where(3)
    assert (where.level, where.inner) == (1, 1)


def test_the_forward_model_noises_a_subset_of_at_most_max_points():
    points = np.random.default_rng(3).normal(size=(MAX_POINTS + 10, 2))
    noising = Noising.of(points, Schedule.make("linear", 50))
    chosen = points[random_subset(len(points), MAX_POINTS, seed=0)]
    np.testing.assert_allclose(noising.x0, Normaliser.fit(chosen).to_std(chosen))
    np.testing.assert_array_equal(noising.eps, np.random.default_rng(NOISE_SEED).standard_normal(noising.x0.shape))
    abar = Schedule.make("linear", 50).alphas_cumprod[9]
    np.testing.assert_allclose(noising.points(10), q_sample(noising.x0, abar, noising.eps))
    assert noising.all_points().shape == (51, MAX_POINTS, 2)
    assert len(Noising.of(np.zeros((1, 2)), Schedule.make("linear", 50)).x0) == 0


def test_the_brush_paints_in_its_disc_and_erases_it():
    rng = np.random.default_rng(0)
    brush = Brush(radius=0.5, label=2)
    data, info = brush.dab(PointSet(np.zeros((0, 2))), 1.0, -1.0, rng)
    assert info == {"source": DRAWN, "n": POINTS_PER_DAB} and data.name == DRAWN
    assert np.all(np.hypot(data.points[:, 0] - 1.0, data.points[:, 1] + 1.0) <= 0.5)
    np.testing.assert_array_equal(data.labels, np.full(POINTS_PER_DAB, 2))
    brush.label = 0
    data, _ = brush.dab(data, 3.0, 3.0, rng)
    assert len(data) == 2 * POINTS_PER_DAB and set(data.labels) == {0, 2}
    brush.erase = True
    data, info = brush.dab(data, 1.0, -1.0, rng)
    assert len(data) == POINTS_PER_DAB and data.labels is None and info["n"] == POINTS_PER_DAB  # class 0 alone


# --- views bound to their models ------------------------------------------------------------------------------------


@pytest.fixture
def reverse(make_window, qtbot):
    """The reverse view with 20 DDIM steps of the exact model computed."""
    win = make_window()
    win.data_panel.source.setCurrentText("moons")
    win.data_panel.n.setValue(80)
    view = win.reverse_view
    view.model.request = replace(view.model.request, params={"steps": 20}, exact=True, n=40)
    with qtbot.waitSignal(view.computed, timeout=30_000):
        win.tabs.setCurrentWidget(view)
    return view


def count_draws(view) -> list:
    drawn, show = [], view.show_frame
    view.show_frame = lambda frame: (drawn.append(frame), show(frame))
    return drawn


def test_a_finished_computation_draws_once(reverse, qtbot):
    drawn = count_draws(reverse)
    with qtbot.waitSignal(reverse.computed, timeout=30_000):
        reverse.compute()
    assert drawn == [20]


def test_the_view_and_its_model_bind_both_ways(reverse, qtbot):
    view, model = reverse, reverse.model
    drawn = count_draws(view)
    seen = record(model)
    model.frame = 7  # the model moves the slider and the view draws that frame, once
    assert view.timeline.slider.value() == 7 and drawn == [7] and seen == ["frame"]
    np.testing.assert_array_equal(np.column_stack(view.scatter.getData()), model.trajectory.frames[7])
    view.timeline.slider.setValue(12)  # the slider moves the model
    assert model.frame == 12 and drawn == [7, 12]
    model.trails = 4  # an overlay: its widget shows it, the frame is drawn again, nothing is written back
    assert view.trails.value() == 4 and drawn == [7, 12, 12] and seen == ["frame", "frame", "trails"]
    view.show_x0.setChecked(True)  # a widget writes its field
    assert model.show_x0 and drawn[-1] == 12 and seen[-1] == "show_x0"
    view.points.setValue(60)
    assert model.request.n == 60 and seen[-1] == "request"
    model.request = replace(model.request, sampler="ddpm", params={"variance": "beta"})  # shown in the editors
    assert view.controls.sampler == "ddpm" and view.controls.params() == {"variance": "beta"}
    assert view.points.value() == 60 and seen.count("request") == 2
