"""The Compare tab driven as a user would: presets and panel editors, the comparison computed in the background
and checked against an independent call of the core (shared noise, frames under the shared slider, captions,
metrics table), hover and pin, the quality-vs-NFE sweep, exports, and closing mid-computation."""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QApplication

from diffvis.app.models import compare as compare_model
from diffvis.app.models.compare import PROGRESS_FRAMES, SETTINGS, CompareModel, Panel, panel_frame
from diffvis.app.views.compare_view import METRICS as TABLE_METRICS
from diffvis.app.views.compare_view import panel_columns
from diffvis.core import compare as core_compare
from diffvis.core.classes import ALL_CLASSES, UNCONDITIONAL
from diffvis.core.compare import PRESETS, Reference, compare
from diffvis.core.datasets import Normaliser, make_dataset
from diffvis.core.fields import padded_extent
from diffvis.core.likelihood import METHODS as LIKELIHOOD_METHODS
from diffvis.core.metrics import METRICS
from diffvis.core.pipeline import request_model
from diffvis.core.pointfiles import load_points
from diffvis.core.request import SampleRequest as R
from diffvis.core.schedules import Schedule
from diffvis.core.sources import fresh_draw
from diffvis.core.training import TrainConfig
from diffvis.errors import ConfigError

LEFT = Qt.MouseButton.LeftButton
N_POINTS = 100  # samples per panel

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def open_window(make_window):
    """A main window on 100 moons (labelled: upper, lower), showing the Compare tab with N_POINTS a panel."""
    win = make_window()
    win.data_panel.source.setCurrentText("moons")
    win.data_panel.n.setValue(100)
    win.tabs.setCurrentWidget(win.compare_view)
    win.compare_view.points.setValue(N_POINTS)
    return win


@pytest.fixture
def window(make_window):
    return open_window(make_window)


@pytest.fixture
def lab():
    """What a model computes from, as LabState holds it: 60 moons and no run (the exact model, on a 50-step
    schedule)."""
    data = make_dataset("moons", 60)
    return SimpleNamespace(model_run=None, runs=[], data=data, data_info={"source": "moons", "n": 60},
                           train_config=TrainConfig(timesteps=50))  # fmt: skip


def run(work):
    """Run a model's ``work`` here and now, never cancelled."""
    return work(lambda i, n: False)


# --- helpers --------------------------------------------------------------------------------------------------------


def xy(item) -> np.ndarray:
    """(M, 2) the points a scatter or curve item holds (none: (0, 2))."""
    x, y = item.getData()
    if x is None or len(x) == 0:
        return np.zeros((0, 2))
    return np.column_stack([x, y])


def compute(view, qtbot, button=None, timeout=30_000):
    """Press the compute button (or ``button``) and wait for the comparison."""
    if view.job.busy:  # the computation the view started when first shown: cancel it, as a user would
        qtbot.mouseClick(view.compute_button, LEFT)
    assert not view.job.busy
    with qtbot.waitSignal(view.computed, timeout=timeout):
        qtbot.mouseClick(button or view.compute_button, LEFT)
    return view.result


def setting(editor, name: str):
    """The widget of setting ``name`` of the sampler an editor has chosen."""
    return editor.controls.settings[editor.controls.sampler].editors[name]


def asked(request, n: int = N_POINTS, seed: int = 0):
    """A preset's request as the model completes it: with its points and seed, and for every class in proportion
    (the moons' default, which w = 1 leaves unsaid)."""
    if request.label == ALL_CLASSES and request.guidance == 1.0:
        request = replace(request, label=None)
    return replace(request, n=n, seed=seed)


def seeded_noise(n: int, seed: int) -> np.ndarray:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)).numpy().astype(np.float64)


def pixel_of(view, panel, point) -> QPoint:
    """The pixel of the grid's viewport where ``panel`` draws data point ``point``."""
    view.grid.scene().prepareForPaint()  # view boxes apply a new range only when about to paint
    scene = panel.plot.getViewBox().mapViewToScene(QPointF(float(point[0]), float(point[1])))
    return view.grid.mapFromScene(scene)


def isolated_point(view, panel, frame: np.ndarray, exclude: int | None = None) -> int:
    """The index of a point of ``frame`` (not ``exclude``) well inside the panel's view whose nearest neighbour is
    farthest."""
    view.grid.scene().prepareForPaint()
    (x0, x1), (y0, y1) = panel.plot.getViewBox().viewRange()
    inside = (frame[:, 0] > x0 + 0.2 * (x1 - x0)) & (frame[:, 0] < x1 - 0.2 * (x1 - x0))
    inside &= (frame[:, 1] > y0 + 0.2 * (y1 - y0)) & (frame[:, 1] < y1 - 0.2 * (y1 - y0))
    d = np.linalg.norm(frame[:, None] - frame[None], axis=2)
    np.fill_diagonal(d, np.inf)
    nearest = np.where(inside, d.min(1), -np.inf)
    if exclude is not None:
        nearest[exclude] = -np.inf
    index = int(np.argmax(nearest))
    pixel = (x1 - x0) / panel.plot.getViewBox().width()
    assert nearest[index] > 6 * pixel, "no point stands alone enough to be hovered reliably"
    return index


def sampling(view, qtbot) -> None:
    """Wait until the comparison in flight reports sampling progress (the floors are drawn before it).

    Polled, not waited for with waitSignal: a blocker on a signal that a worker thread keeps emitting may still be
    called after it is torn down (PySide6 + pytest-qt: AttributeError, then a crash)."""
    qtbot.waitUntil(lambda: re.fullmatch(r"computing… \d+ %", view.timeline.label.text()) is not None, timeout=10_000)


def cell_number(text: str) -> float:
    """The leading number of a table cell: '0.0123 (1.52×)' → 0.0123."""
    return float(re.match(r"[-+0-9.eE]+", text).group())


def core_results(window, specs, seed):
    """The comparison recomputed by the core alone, as the view should have computed it."""
    state = window.state
    points = state.data.points
    reference = Reference.draw(fresh_draw(state.data_info, points, N_POINTS))
    return compare(
        specs, [None] * len(specs), state.data, Schedule.make("linear", 1000), reference, n=N_POINTS, seed=seed
    )


# --- the model ---------------------------------------------------------------------------------------------------


def record(model: CompareModel) -> list:
    """Every change the model announces, as (field, whether the results were empty by then)."""
    seen = []
    model.events.connect(lambda name, _: seen.append((name, model.result is None)))
    return seen


def quick(model: CompareModel) -> CompareModel:
    """The model at the 'eta' preset, each panel DDIM with 3 steps at its η, 40 points."""
    model.apply_preset("eta")
    for i, request in enumerate(model.requests()):
        model.set_panel(i, Panel(R("ddim", {"steps": 3, "eta": request.params["eta"]})))
    model.n = 40
    return model


@pytest.mark.parametrize("key", list(PRESETS))
def test_a_preset_sets_the_panels_their_count_and_class(key):
    model = CompareModel(n=50, seed=4)
    model.label = UNCONDITIONAL
    seen = record(model)
    model.apply_preset(key)
    named = PRESETS[key].requests[0].label  # a preset of one class (the guidance study) names it
    assert model.preset == key and model.panel_count == len(PRESETS[key].requests)
    assert model.label == (ALL_CLASSES if named is None else named)
    assert model.requests() == [asked(r, 50, 4) for r in PRESETS[key].requests]
    assert "label" in [name for name, _ in seen]  # announced


def test_a_preset_keeps_the_panels_it_does_not_set_and_undoes_edits():
    model = CompareModel()
    model.apply_preset("eta")
    eta = model.panels
    model.apply_preset("ddpm-vs-langevin")
    assert model.panels[2:] == eta[2:] and len(model.requests()) == 2  # shown again with a count of four
    model.set_panel(1, Panel(R("langevin", {"steps_per_level": 3})))
    model.apply_preset("ddpm-vs-langevin")  # chosen again: as the preset has it
    assert model.requests() == [asked(r, 2000) for r in PRESETS["ddpm-vs-langevin"].requests]


def test_the_class_choice_and_each_panels_guidance_make_the_requests():
    model = CompareModel()
    model.apply_preset("guidance")  # every class, w = 0, 1, 3, 7
    assert [(r.label, r.guidance) for r in model.requests()] == [
        (ALL_CLASSES, 0.0), (None, 1.0), (ALL_CLASSES, 3.0), (ALL_CLASSES, 7.0)]  # fmt: skip
    model.label = 1
    assert [(r.label, r.guidance) for r in model.requests()] == [(1, 0.0), (1, 1.0), (1, 3.0), (1, 7.0)]
    assert model.requests()[3].label_text == "DDIM S=50 η=0 w=7"
    model.label = UNCONDITIONAL  # f(x, t, ∅): no guidance, but each panel keeps its w
    assert [(r.label, r.guidance) for r in model.requests()] == [(UNCONDITIONAL, 1.0)] * 4
    model.label = None  # the model's default
    assert all(r.label is None for r in model.requests())
    model.label = ALL_CLASSES
    assert [r.guidance for r in model.requests()] == [0.0, 1.0, 3.0, 7.0]


def test_any_change_of_the_settings_empties_the_result_before_it_is_announced(lab):
    model = quick(CompareModel())
    changes = {"panels": lambda: model.set_panel(0, Panel(R("ddim", {"steps": 2}))), "panel_count": lambda: setattr(
        model, "panel_count", 3), "label": lambda: setattr(model, "label", 0), "n": lambda: setattr(model, "n", 30),
        "seed": model.reseed}  # fmt: skip
    assert set(changes) == set(SETTINGS)
    for name, change in changes.items():
        model.result = run(model.work(lab))
        assert [r.spec for r in model.result] == model.requests() and model.frame == PROGRESS_FRAMES
        seen = record(model)
        change()
        assert seen == [("result", True), (name, True)] and model.result is None, name
    # what is shown and how it is swept are no settings of the comparison
    model.result = results = run(model.work(lab))
    model.frame = 70
    model.set_step_counts("4, 2, 4")
    assert model.result == tuple(results) and model.step_counts == (2, 4) and model.frame == 70
    with pytest.raises(ValueError, match="other requests"):  # never old samples under new labels
        model.result = results[:-1]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("panel_count", 7, "the number of panels is a whole number from 2 to 6"), ("panel_count", 1, "from 2 to 6"),
     ("panel_count", 2.5, "whole number"), ("n", 0, "the points a panel"), ("label", "some", "a class is a number")],
)  # fmt: skip
def test_the_model_refuses_settings_out_of_range(field, value, message):
    model = CompareModel()
    before = getattr(model, field)
    with pytest.raises(ConfigError, match=message):
        setattr(model, field, value)
    assert getattr(model, field) == before


def test_the_model_refuses_unknown_presets_and_bad_step_counts():
    model = CompareModel()
    with pytest.raises(ConfigError, match="unknown preset 'nope'; choose one of ddpm-vs-ddim"):
        model.apply_preset("nope")
    with pytest.raises(ConfigError, match="whole numbers separated by commas"):
        model.set_step_counts("2, x")
    assert model.preset == "ddpm-vs-ddim" and model.step_counts == compare_model.SWEEP_STEPS


def test_the_models_sweep_runs_each_family_once_at_the_step_counts_up_to_t(lab):
    model = CompareModel(n=30)
    model.apply_preset("ddpm-vs-ddim")  # DDPM, DDIM 50 and DDIM 10: two families
    model.set_step_counts("2, 3, 5000")  # 5000 is more than the schedule's 50 steps
    work = model.sweep_work(lab)
    model.apply_preset("solvers")  # taken when the sweep was made, not when it runs
    points = run(work)
    assert [(p.label, p.steps, p.nfe) for p in points] == [
        ("DDPM (β̃) · exact", None, 50), ("DDIM η=0 · exact", 2, 2), ("DDIM η=0 · exact", 3, 3)]  # fmt: skip
    assert all(p.samples.shape == (30, 2) for p in points)


# --- presets and editors --------------------------------------------------------------------------------------------


def test_presets_and_panel_count_set_panels_and_editors(window, qtbot):
    view = window.compare_view
    qtbot.waitExposed(view)
    assert len(view.panels) == 3
    assert view.model.requests() == [asked(r) for r in PRESETS["ddpm-vs-ddim"].requests]

    view.model.apply_preset("eta")
    assert view.preset.currentData() == "eta" and view.count.value() == 4
    assert len(view.panels) == 4
    assert [e.isVisible() for e in view.editors] == [True] * 4 + [False] * 2
    assert [setting(e, "eta").value() for e in view.editors[:4]] == [0.0, 0.3, 0.6, 1.0]
    assert all(e.controls.sampler == "ddim" and setting(e, "steps").value() == 50 for e in view.editors[:4])
    # the requests spell out the spacing the samplers default to
    assert view.model.requests() == [asked(r) for r in PRESETS["eta"].requests]
    assert all(r.params["spacing"] == "leading" for r in view.model.requests())

    for count in (2, 6, 5, 3, 4):
        view.count.setValue(count)
        assert view.model.panel_count == count and len(view.panels) == count
        assert [e.isVisible() for e in view.editors] == [i < count for i in range(6)]
        columns = view.columns
        assert columns == panel_columns(count, view.grid.width(), view.grid.height())
        layout = view.grid.ci.layout
        for i, panel in enumerate(view.panels):  # filled row by row
            assert layout.itemAt(i // columns, i % columns) is panel.plot and panel.plot.isVisible()
        assert layout.count() == count and not any(p.plot.isVisible() for p in view.all_panels[count:])
        assert len(view.model.requests()) == count
    view.count.setValue(1)  # clamped by the spin box
    assert view.count.value() == 2 and len(view.panels) == 2
    view.count.setValue(7)
    assert view.count.value() == 6 and len(view.panels) == 6

    # the editor's panel follows its widgets: the chosen sampler's own settings, from the registry
    editor = view.editors[0]
    editor.controls.combo.setCurrentIndex(editor.controls.combo.findData("ddpm"))
    assert editor.controls.pages.currentWidget() is editor.controls.settings["ddpm"]
    assert editor.panel() == Panel(R("ddpm", {"variance": "beta_tilde"}))
    setting(editor, "variance").setCurrentText("beta")
    assert view.model.panels[0] == Panel(R("ddpm", {"variance": "beta"}))
    assert view.model.requests()[0].label_text == "DDPM (β)"
    setting(editor, "variance").setCurrentText("beta_tilde")
    editor.controls.combo.setCurrentIndex(editor.controls.combo.findData("langevin"))
    setting(editor, "steps_per_level").setValue(20)
    editor.model_choice.setCurrentIndex(editor.model_choice.findText("exact"))
    assert view.model.panels[0] == Panel(R("langevin", {"steps_per_level": 20}, exact=True))
    assert view.model.requests()[0].label_text == "Langevin K=20 · exact"


def test_the_widgets_draw_the_model_and_write_back_through_it(window, qtbot):
    view, model = window.compare_view, window.compare_view.model
    qtbot.waitExposed(view)
    # the model, drawn
    model.n = 345
    assert view.points.value() == 345
    model.panel_count = 5
    assert view.count.value() == 5 and len(view.panels) == 5 and view.editors[4].isVisible()
    model.set_panel(4, Panel(R("heun", {"steps": 7, "spacing": "linspace"}), guidance=2.5))
    editor = view.editors[4]
    assert editor.controls.combo.currentData() == "heun" and editor.controls.pages.currentWidget().info.name == "heun"
    assert setting(editor, "steps").value() == 7 and setting(editor, "spacing").currentText() == "linspace"
    assert editor.guidance.value() == 2.5 and editor.model_choice.currentText() == "trained"
    assert editor.panel() == model.panels[4]
    model.label = 1
    assert view.class_picker.currentText() == "lower"
    model.label = UNCONDITIONAL
    assert view.class_picker.currentText() == "unconditional"
    model.label = 5  # a class the data does not have: the picker's default, written back
    assert view.class_picker.currentText() == "all, in proportion" and model.label == ALL_CLASSES
    model.apply_preset("solvers")
    assert view.preset.currentData() == "solvers" and view.count.value() == 4
    model.step_counts = (3, 9)
    assert view.sweep.steps.text() == "3, 9"

    # the widgets, written back
    view.points.setValue(120)
    assert model.n == 120
    view.count.setValue(3)
    assert model.panel_count == 3
    view.class_picker.setCurrentIndex(view.class_picker.findText("upper"))
    assert model.label == 0
    view.class_picker.setCurrentIndex(view.class_picker.findText("unconditional"))
    assert model.label == UNCONDITIONAL  # the run's classes left out: f(x, t, ∅)
    editor = view.editors[1]
    editor.controls.combo.setCurrentIndex(editor.controls.combo.findData("dpmpp_2m"))
    setting(editor, "steps").setValue(12)
    editor.guidance.setValue(3.5)
    editor.model_choice.setCurrentIndex(editor.model_choice.findText("exact"))
    assert model.panels[1] == Panel(R("dpmpp_2m", {"steps": 12}, exact=True), guidance=3.5)
    choose_preset(view, qtbot, "eta")
    assert model.preset == "eta" and model.panel_count == 4
    view.sweep.steps.selectAll()
    qtbot.keyClicks(view.sweep.steps, "8, 4")
    qtbot.keyClick(view.sweep.steps, Qt.Key.Key_Return)
    assert model.step_counts == (4, 8)

    # the shared progress, once there is something to scrub
    assert model.frame == 0 and view.timeline.slider.maximum() == 0
    quick(model)
    compute(view, qtbot)
    model.frame = 40
    assert view.timeline.frame == 40 and view.timeline.label.text() == "progress 40 %"
    traj = view.panels[0].result.trajectory
    np.testing.assert_array_equal(xy(view.panels[0].scatter), traj.frames[panel_frame(40, len(traj.frames))])
    view.timeline.slider.setValue(65)
    assert model.frame == 65


def test_panel_columns_give_each_panel_the_largest_square():
    assert panel_columns(4, 960, 720) == 2  # 2 x 2: 440 px squares (4 x 1: 200 px)
    assert panel_columns(4, 940, 230) == 4  # a wide, low window: one row (2 x 2 would leave 90 px)
    assert panel_columns(3, 960, 720) == 2 and panel_columns(3, 1500, 400) == 3
    assert panel_columns(6, 960, 720) == 3 and panel_columns(6, 400, 900) == 2
    assert panel_columns(2, 300, 900) == 1  # a tall picture: one above the other
    assert panel_columns(5, 10, 10) in range(1, 6)  # too small for any: still a grid


def test_the_grid_follows_the_figure_shape(window, qtbot):
    view = window.compare_view
    view.model.apply_preset("eta")
    for size in ((1200, 800), (1000, 1400), (1600, 700)):
        window.resize(*size)
        qtbot.waitUntil(lambda: view.columns == panel_columns(4, view.grid.width(), view.grid.height()))
        layout = view.grid.ci.layout
        for i, panel in enumerate(view.panels):
            assert layout.itemAt(i // view.columns, i % view.columns) is panel.plot


# --- computing and scrubbing ----------------------------------------------------------------------------------------


def test_compare_with_the_exact_model_frames_slider_and_captions(window, qtbot):
    view = window.compare_view
    view.model.apply_preset("ddpm-vs-ddim")
    results = compute(view, qtbot)
    assert view.has_content() and view.frame_count() == PROGRESS_FRAMES + 1
    assert view.timeline.slider.maximum() == PROGRESS_FRAMES  # opened on the samples, where the metrics are
    assert view.timeline.frame == view.model.frame == PROGRESS_FRAMES
    assert [r.label for r in results] == ["DDPM (β̃) · exact", "DDIM S=50 η=0 · exact", "DDIM S=10 η=0 · exact"]
    assert tuple(p.result for p in view.panels) == results
    assert [len(r.trajectory.frames) for r in results] == [1001, 51, 11]

    # one noise for all: the seeded N(0, I) noise in data coordinates
    norm = Normaliser.fit(window.state.data.points)
    first = results[0].trajectory.frames[0]
    np.testing.assert_allclose(first, norm.to_data(seeded_noise(N_POINTS, 0)), rtol=1e-5, atol=1e-5)
    for r in results:
        np.testing.assert_array_equal(r.trajectory.frames[0], first)

    # the same numbers as the core computes alone
    for r, alone in zip(results, core_results(window, view.model.requests(), 0), strict=True):
        np.testing.assert_array_equal(r.trajectory.frames, alone.trajectory.frames)
        assert r.label == alone.label and r.trajectory.nfe == alone.trajectory.nfe
        for name in METRICS:
            assert r.metrics[name].value == pytest.approx(alone.metrics[name].value, rel=1e-12)
            assert r.metrics[name].floor == pytest.approx(alone.metrics[name].floor, rel=1e-12)

    for k in (0, 1, 7, 33, 50, 99, 100):
        view.timeline.slider.setValue(k)
        assert view.timeline.label.text() == f"progress {k} %"
        for panel, r in zip(view.panels, results, strict=True):
            traj = r.trajectory
            f = panel_frame(k, len(traj.frames))
            assert f == round(k * (len(traj.frames) - 1) / 100)
            np.testing.assert_array_equal(xy(panel.scatter), traj.frames[f])
            t = traj.times[f]
            when = "clean" if t < 0 else f"t = {int(t)}"
            assert panel.caption.text == f"{r.label} · {when} · NFE {traj.evals[f]}/{traj.nfe}"
    # the last position is every panel's clean samples, after all their evaluations
    for panel, r in zip(view.panels, results, strict=True):
        assert panel.caption.text.endswith(f"clean · NFE {r.trajectory.nfe}/{r.trajectory.nfe}")
        np.testing.assert_array_equal(xy(panel.scatter), r.trajectory.samples)
    assert view.panels[0].caption.text == "DDPM (β̃) · exact · clean · NFE 1000/1000"
    view.timeline.slider.setValue(30)
    assert view.panels[0].caption.text == "DDPM (β̃) · exact · t = 699 · NFE 300/1000"
    assert view.panels[2].caption.text == "DDIM S=10 η=0 · exact · t = 600 · NFE 3/10"  # leading: 900, 800, …


def test_a_langevin_panel_starts_from_the_noise_scaled_by_sigma_1(window, qtbot):
    view = window.compare_view
    view.model.apply_preset("ddpm-vs-langevin")
    setting(view.editors[1], "steps_per_level").setValue(3)
    ddpm, langevin = compute(view, qtbot)
    assert langevin.label == "Langevin K=3 · exact" and langevin.trajectory.nfe == 31
    norm = Normaliser.fit(window.state.data.points)
    model, _ = request_model(langevin.spec, None, window.state.data, Schedule.make())
    sigma_1 = model.ladder.sigmas[0]
    np.testing.assert_allclose(norm.to_std(langevin.trajectory.frames[0].astype(np.float64)),
                               sigma_1 * norm.to_std(ddpm.trajectory.frames[0].astype(np.float64)),
                               rtol=1e-4, atol=1e-4)  # fmt: skip
    view.timeline.slider.setValue(50)
    traj = langevin.trajectory
    f = panel_frame(50, len(traj.frames))
    assert view.panels[1].caption.text == f"Langevin K=3 · exact · σ = {traj.times[f]:.3g} · NFE {traj.evals[f]}/31"


def test_new_noise_draws_other_noise_for_every_panel(window, qtbot):
    view = window.compare_view
    view.model.apply_preset("solvers")
    first = compute(view, qtbot)
    before = first[0].trajectory.frames[0]
    view.timeline.slider.setValue(40)
    second = compute(view, qtbot, button=view.new_noise)
    assert view.model.seed == 1 and view.timeline.frame == PROGRESS_FRAMES  # opened on the new samples
    after = second[0].trajectory.frames[0]
    assert not np.allclose(after, before, atol=1e-3)
    norm = Normaliser.fit(window.state.data.points)
    np.testing.assert_allclose(after, norm.to_data(seeded_noise(N_POINTS, 1)), rtol=1e-5, atol=1e-5)
    for r in second:
        np.testing.assert_array_equal(r.trajectory.frames[0], after)
    view.timeline.slider.setValue(0)
    for panel, r in zip(view.panels, second, strict=True):
        np.testing.assert_array_equal(xy(panel.scatter), r.trajectory.frames[0])
    # the Compare button keeps the noise
    third = compute(view, qtbot)
    np.testing.assert_array_equal(third[0].trajectory.frames[0], after)


def test_the_metrics_table_shows_every_panel_and_marks_the_best(window, qtbot):
    view = window.compare_view
    view.model.apply_preset("solvers")
    results = compute(view, qtbot)
    table, rows = view.table, len(results)
    assert rows == 4 and table.rowCount() == rows + 1 and table.columnCount() == 8 + len(TABLE_METRICS)
    for row, r in enumerate(results):
        assert table.item(row, 0).text() == r.label
        assert int(table.item(row, 1).text()) == r.trajectory.nfe
        assert float(table.item(row, 2).text()) == pytest.approx(r.seconds, abs=5e-4)
        for col, name in enumerate(TABLE_METRICS, start=3):
            m = r.metrics[name]
            value, ratio = re.fullmatch(r"(\S+) \((\S+)×\)", table.item(row, col).text()).groups()
            assert float(value) == pytest.approx(m.value, rel=5e-3)
            assert float(ratio) == pytest.approx(m.ratio, abs=5e-3)
    assert [int(table.item(row, 1).text()) for row in range(rows)] == [10, 9, 10, 1000]

    # the last row: every metric's floor (two fresh draws), with its spread
    assert [table.item(rows, col).text() for col in range(3)] == ["floor (fresh data)", "", ""]
    for col, name in enumerate(TABLE_METRICS, start=3):
        mean, std = re.fullmatch(r"(\S+) ± (\S+)", table.item(rows, col).text()).groups()
        assert float(mean) == pytest.approx(results[0].metrics[name].floor, rel=5e-3)
        assert float(std) == pytest.approx(results[0].metrics[name].floor_std, rel=5e-2)
        assert {r.metrics[name].floor for r in results} == {results[0].metrics[name].floor}

    assert (*METRICS, "w2") == TABLE_METRICS
    npe, nll = table.columnCount() - 5, table.columnCount() - 4
    assert table.horizontalHeaderItem(npe).text() == "NPE"  # DDPM's trajectories have no path energy: an empty
    assert all(table.item(row, npe).text() == "" and not table.item(row, npe).font().bold() for row in range(rows))
    assert table.horizontalHeaderItem(nll).text() == "NLL (nats)"  # an ODE solver's held-out NLL, others empty
    for row, r in enumerate(results):
        if r.nll is None:
            assert table.item(row, nll).text() == "" and not table.item(row, nll).font().bold()
        else:
            assert table.item(row, nll).text() == f"{r.nll[0]:.3f} ± {r.nll[1]:.3f}"
    assert [r.nll is not None for r in results] == [r.spec.sampler in LIKELIHOOD_METHODS for r in results]

    # the best (smallest) figure of each column among the panels is bold on yellow; nothing else is
    for col in range(npe):
        bold = [row for row in range(rows + 1) if table.item(row, col).font().bold()]
        if col == 0:
            assert bold == []
            continue
        shown = [cell_number(table.item(row, col).text()) for row in range(rows)]
        assert len(bold) == 1 and bold[0] < rows, f"column {col}: rows {bold} bold"
        assert shown[bold[0]] == min(shown)
        assert table.item(bold[0], col).background().color().name() == "#fff0a8"
    assert table.item(1, 1).font().bold()  # Heun's 9 evaluations are the fewest


# --- framing and stale results --------------------------------------------------------------------------------------

RUNAWAYS = np.array([[500.0, -500.0], [-500.0, 250.0], [480.0, 500.0]])


def test_panels_frame_the_data_not_a_few_far_flung_samples(window, qtbot, monkeypatch):
    """A trained network flings about one DDIM sample in 500 far away: the panels still frame the data."""

    def flinging(*args, **kwargs):
        results = compare(*args, **kwargs)
        for r in results:
            r.trajectory.frames[-1, : len(RUNAWAYS)] = RUNAWAYS
        return results

    monkeypatch.setattr(compare_model, "compare", flinging)
    view = window.compare_view  # the default preset, first shown after the data was set (as after training)
    compute(view, qtbot)
    view.timeline.slider.setValue(PROGRESS_FRAMES)
    view.grid.scene().prepareForPaint()  # view boxes apply a new range only when about to paint
    x_min, x_max, y_min, y_max = padded_extent(window.state.data.points)
    for panel in view.panels:
        shown = xy(panel.scatter)
        np.testing.assert_array_equal(shown[: len(RUNAWAYS)], RUNAWAYS)  # drawn, ...
        (x0, x1), (y0, y1) = panel.plot.getViewBox().viewRange()
        assert max(abs(x0), abs(x1), abs(y0), abs(y1)) < 20  # ... but far outside the frame
        tol = 1e-6 * (x_max - x_min)
        assert x0 <= x_min + tol and x1 >= x_max - tol and y0 <= y_min + tol and y1 >= y_max - tol  # all the data
        # the data fills the panel along one axis (equal aspect widens the other to the panel's shape; linked
        # panels whose axes differ by a few pixels widen it a little more)
        assert min((x1 - x0) / (x_max - x_min), (y1 - y0) / (y_max - y_min)) < 1.15


def choose_preset(view, qtbot, key: str) -> None:
    """Pick ``key`` in the preset combo box with the keyboard, as a user would (each step is 'activated')."""
    view.preset.setFocus()
    target = view.preset.findData(key)
    while view.preset.currentIndex() != target:
        qtbot.keyClick(view.preset, Qt.Key.Key_Down if view.preset.currentIndex() < target else Qt.Key.Key_Up)


def assert_nothing_shown(view, caption: str) -> None:
    """No panel shows samples, each names its new settings, and the metrics table has no numbers."""
    assert not view.has_content() and view.frame_count() == 0  # nothing to scrub or export
    for panel, spec in zip(view.panels, view.model.requests(), strict=True):
        assert panel.result is None and len(xy(panel.scatter)) == 0
        assert panel.caption.text == f"{spec.label_text} · {caption}"
    assert view.table.rowCount() == 0


def test_a_new_preset_never_shows_old_results_and_compares_again(window, qtbot):
    view = window.compare_view
    view.model.apply_preset("ddpm-vs-ddim")
    old = compute(view, qtbot)
    view.timeline.slider.setValue(PROGRESS_FRAMES)
    assert view.table.rowCount() == len(old) + 1

    choose_preset(view, qtbot, "solvers")
    assert view.preset.currentData() == "solvers" and len(view.panels) == 4
    assert_nothing_shown(view, "computing…")  # at once: old samples never sit under the new labels
    assert view.timeline.label.text() == "settings changed: comparing again…"
    with qtbot.waitSignal(view.computed, timeout=30_000):
        pass  # the visible view compares again once the settings rest
    new = view.result
    assert [r.spec for r in new] == view.model.requests()
    assert [r.label for r in new] == [
        "DDIM S=10 η=0 · exact", "Heun S=5 · exact", "DPM-Solver++(2M) S=10 · exact", "DDPM (β̃) · exact"]  # fmt: skip
    assert [view.table.item(row, 0).text() for row in range(4)] == [r.label for r in new]
    view.timeline.slider.setValue(PROGRESS_FRAMES)
    for panel, r in zip(view.panels, new, strict=True):
        np.testing.assert_array_equal(xy(panel.scatter), r.trajectory.samples)

    # one panel's steps, typed: that panel's label changes, and nothing old is shown under it
    qtbot.keyClick(setting(view.editors[0], "steps"), Qt.Key.Key_Up)
    assert view.model.requests()[0].label_text == "DDIM S=11 η=0"
    assert_nothing_shown(view, "computing…")
    with qtbot.waitSignal(view.computed, timeout=30_000):
        pass
    assert view.result[0].label == "DDIM S=11 η=0 · exact" and view.result[0].trajectory.nfe == 11


def test_changed_settings_compare_again_once_they_rest(window, qtbot):
    view, model = window.compare_view, window.compare_view.model
    quick(model)
    compute(view, qtbot)
    computed = []
    view.computed.connect(lambda: computed.append(view.result))
    for n in (61, 62, 63):  # typed digit by digit, or set by a script: each change empties the panels at once
        model.n = n
        assert not view.has_content() and view.frame_count() == 0
    assert_nothing_shown(view, "computing…")
    qtbot.waitUntil(view.has_content, timeout=30_000)
    assert len(computed) == 1  # once, when the settings rested
    assert [r.spec for r in model.result] == model.requests() and model.requests()[0].n == 63
    assert all(len(panel.result.trajectory.samples) == 63 for panel in view.panels)
    assert view.table.rowCount() == len(view.panels) + 1

    # a cancelled comparison stops following the settings: they wait for the button
    assert view.compute()
    qtbot.mouseClick(view.compute_button, LEFT)  # "Cancel"
    assert not view.job.busy and view.timeline.label.text() == "cancelled"
    model.n = 64
    assert_nothing_shown(view, "press Compare")
    assert not view.rest.isActive() and not view.job.busy


def test_a_hidden_view_marks_changed_settings_and_compares_when_shown(window, qtbot):
    view = window.compare_view
    view.model.apply_preset("ddpm-vs-ddim")
    compute(view, qtbot)
    window.tabs.setCurrentWidget(window.forward_view)
    view.model.apply_preset("eta")  # e.g. a script, or the menu, while another tab is shown
    assert_nothing_shown(view, "compared when shown")
    assert not view.job.busy
    with qtbot.waitSignal(view.computed, timeout=30_000):
        window.tabs.setCurrentWidget(view)
    assert [r.spec for r in view.result] == view.model.requests() and view.preset.currentData() == "eta"
    assert all(len(xy(p.scatter)) == N_POINTS for p in view.panels)


# --- hover and pin --------------------------------------------------------------------------------------------------


def markers_follow(view, index: int, k: int) -> None:
    for panel in view.panels:
        traj = panel.result.trajectory
        f = panel_frame(k, len(traj.frames))
        np.testing.assert_array_equal(xy(panel.marker), traj.frames[f : f + 1, index])
        np.testing.assert_array_equal(xy(panel.path), traj.frames[: f + 1, index])


def test_hovering_highlights_a_point_in_every_panel_and_a_click_pins_it(window, qtbot):
    view = window.compare_view
    view.model.apply_preset("ddpm-vs-ddim")
    qtbot.waitExposed(view)
    compute(view, qtbot)
    k = 20
    view.timeline.slider.setValue(k)
    assert view.highlight is None and all(len(xy(p.marker)) == 0 for p in view.panels)
    moves = []  # every move the scene sees (QTest drops a move to where it last moved the mouse)
    view.grid.scene().sigMouseMoved.connect(moves.append)

    def hover(pixel: QPoint) -> None:
        seen = len(moves)
        qtbot.mouseMove(view.grid.viewport(), pixel)
        assert len(moves) == seen + 1

    panel = view.panels[1]
    frame = panel.result.trajectory.frames[panel_frame(k, len(panel.result.trajectory.frames))]
    index = isolated_point(view, panel, frame)
    hover(pixel_of(view, panel, frame[index]))
    assert view.highlight == index and not view.pinned
    markers_follow(view, index, k)
    assert not np.allclose(xy(view.panels[0].marker), xy(view.panels[2].marker))  # each in its own trajectory

    # another point under the mouse: the highlight follows it
    other = view.panels[2]
    other_frame = other.result.trajectory.frames[panel_frame(k, len(other.result.trajectory.frames))]
    second = isolated_point(view, other, other_frame, exclude=index)
    assert second != index
    hover(pixel_of(view, other, other_frame[second]))
    assert view.highlight == second
    markers_follow(view, second, k)

    # a click pins the point under it; moving elsewhere keeps it
    qtbot.mouseClick(view.grid.viewport(), LEFT, pos=pixel_of(view, panel, frame[index]))
    assert view.pinned and view.highlight == index
    hover(pixel_of(view, other, other_frame[second]) + QPoint(0, 1))
    assert view.highlight == index
    markers_follow(view, index, k)
    view.timeline.slider.setValue(80)  # the pinned point is followed along the timeline
    markers_follow(view, index, 80)
    # a second click unpins; then hovering moves the highlight again
    qtbot.wait(QApplication.styleHints().mouseDoubleClickInterval() + 50)  # not a double click
    qtbot.mouseClick(view.grid.viewport(), LEFT, pos=pixel_of(view, panel, frame[index]))
    assert not view.pinned
    view.timeline.slider.setValue(k)
    hover(pixel_of(view, other, other_frame[second]) + QPoint(1, 0))
    assert view.highlight == second
    markers_follow(view, second, k)


# --- the sweep ------------------------------------------------------------------------------------------------------


def test_sweep_plots_quality_against_nfe_per_family(window, qtbot):
    view = window.compare_view
    view.model.apply_preset("solvers")  # DDIM 10, Heun 5, DPM-Solver++(2M) 10, DDPM
    view.sweep.steps.setText("4, 2")
    with qtbot.waitSignal(view.sweep.job.done, timeout=30_000):
        qtbot.mouseClick(view.sweep.button, LEFT)
    assert view.sweep.button.isEnabled() and view.bottom.currentWidget() is view.sweep
    assert view.model.step_counts == (2, 4)
    points = view.sweep.points
    assert [(p.label, p.steps, p.nfe) for p in points] == [
        ("DDIM η=0 · exact", 2, 2), ("DDIM η=0 · exact", 4, 4), ("Heun · exact", 2, 3), ("Heun · exact", 4, 7),
        ("DPM-Solver++(2M) · exact", 2, 2), ("DPM-Solver++(2M) · exact", 4, 4),
        ("DDPM (β̃) · exact", None, 1000)]  # fmt: skip

    # the sweep's numbers are the core's own
    state = window.state
    reference = Reference.draw(fresh_draw(state.data_info, state.data.points, N_POINTS))
    specs = [R("ddim", {"steps": 10}), R("heun", {"steps": 5}), R("dpmpp_2m", {"steps": 10}), R("ddpm")]
    alone = core_compare.sweep(specs, [2, 4], [None] * len(specs), state.data, Schedule.make(), reference, n=N_POINTS)
    for p, q in zip(points, alone, strict=True):
        assert (p.label, p.steps, p.nfe) == (q.label, q.steps, q.nfe)
        for name in METRICS:
            assert p.metrics[name].value == pytest.approx(q.metrics[name].value, rel=1e-12)

    curves = view.sweep.plot.listDataItems()
    families = ["DDIM η=0", "Heun", "DPM-Solver++(2M)", "DDPM (β̃)"]
    assert [c.name() for c in curves] == [f"{family} · exact" for family in families]
    assert view.sweep.metric.currentData() == "energy"
    for curve in curves:
        mine = sorted((p.nfe, p.metrics["energy"].ratio) for p in points if p.label == curve.name())
        np.testing.assert_allclose(np.column_stack([curve.xData, curve.yData]), mine, rtol=1e-12)
    # another metric redraws the same families
    view.sweep.metric.setCurrentIndex(view.sweep.metric.findData("nn_recall"))
    curves = view.sweep.plot.listDataItems()
    assert len(curves) == 4
    np.testing.assert_allclose(curves[1].yData, [p.metrics["nn_recall"].ratio for p in points[2:4]], rtol=1e-12)

    # bad step counts are refused with a message
    view.sweep.steps.setText("2, x")
    assert not view.sweep.start()
    assert "whole numbers" in window.statusBar().currentMessage()
    view.sweep.steps.setText("0")
    assert not view.sweep.start()


# --- a sampler of the registry only -----------------------------------------------------------------------------


def test_a_registered_sampler_is_offered_compared_and_swept(dummy_sampler, make_window, qtbot):
    window = open_window(make_window)  # made after the registration: the editors offer what the registry holds
    view, model = window.compare_view, window.compare_view.model
    model.panel_count = 2
    model.set_panel(0, Panel(R("ddim", {"steps": 3})))
    editor = view.editors[1]
    combo = editor.controls.combo
    assert combo.itemText(combo.findData("dummy")) == "Dummy"
    combo.setCurrentIndex(combo.findData("dummy"))  # chosen as a user would
    assert set(editor.controls.settings["dummy"].editors) == {"steps", "nudge"}
    assert editor.controls.pages.currentWidget() is editor.controls.settings["dummy"]
    setting(editor, "steps").setValue(4)
    setting(editor, "nudge").setValue(1.5)
    assert model.panels[1] == Panel(R("dummy", {"steps": 4, "nudge": 1.5}))

    ddim, dummy = compute(view, qtbot)
    assert dummy.label == "Dummy S=4 · exact" and dummy.trajectory.nfe == 4 and dummy_sampler[-1] == 1.5
    samples = dummy.trajectory.samples
    assert samples.shape == (N_POINTS, 2) and np.isfinite(samples).all()
    np.testing.assert_array_equal(dummy.trajectory.frames[0], ddim.trajectory.frames[0])  # the shared noise
    view.timeline.slider.setValue(PROGRESS_FRAMES)
    assert view.panels[1].caption.text == "Dummy S=4 · exact · clean · NFE 4/4"
    assert view.table.item(1, 0).text() == "Dummy S=4 · exact"

    view.sweep.steps.setText("2, 3")
    with qtbot.waitSignal(view.sweep.job.done, timeout=30_000):
        qtbot.mouseClick(view.sweep.button, LEFT)
    assert [(p.label, p.steps, p.nfe) for p in view.sweep.points if p.sampler == "dummy"] == [
        ("Dummy · exact", 2, 2), ("Dummy · exact", 3, 3)]  # fmt: skip
    assert [curve.name() for curve in view.sweep.plot.listDataItems()] == ["DDIM η=0 · exact", "Dummy · exact"]


# --- exports --------------------------------------------------------------------------------------------------------


def test_exports_animate_every_progress_step(window, qtbot, tmp_path):
    window.resize(800, 600)  # smaller frames: 101 of them are grabbed and encoded
    view = window.compare_view
    view.model.apply_preset("ddpm-vs-ddim")
    qtbot.waitExposed(view)
    view.points.setValue(50)
    results = compute(view, qtbot)
    view.timeline.slider.setValue(37)

    # the DDPM panel's caption ("t = …", "NFE …") differs at every one of the 101 positions, so Pillow merges none
    assert view.export(tmp_path / "c.gif")
    assert window.statusBar().currentMessage() == f"exported 101 frames to {tmp_path / 'c.gif'}"
    with Image.open(tmp_path / "c.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == 101
        assert gif.size == (view.grid.width(), view.grid.height())
    assert view.timeline.frame == 37  # the export left the frame as it was
    for panel, r in zip(view.panels, results, strict=True):
        np.testing.assert_array_equal(xy(panel.scatter), r.trajectory.frames[panel_frame(37, len(r.trajectory.frames))])

    assert view.export(tmp_path / "c.png")
    with Image.open(tmp_path / "c.png") as png:
        png.load()
        assert png.format == "PNG" and png.size == (view.grid.width(), view.grid.height())

    assert view.export(tmp_path / "c.npy")
    frames = np.load(tmp_path / "c.npy")
    assert frames.shape == (101, 3 * 50, 2)
    for k in (0, 37, 100):
        expected = [r.trajectory.frames[panel_frame(k, len(r.trajectory.frames))] for r in results]
        np.testing.assert_array_equal(frames[k], np.concatenate(expected))

    assert view.export(tmp_path / "c.csv")
    np.testing.assert_allclose(load_points(tmp_path / "c.csv").points, frames[37], rtol=1e-7, atol=1e-7)


# --- closing mid-computation ----------------------------------------------------------------------------------------


def test_closing_while_comparing_cancels_at_once(window, qtbot, close_at_once):
    view = window.compare_view
    view.model.apply_preset("ddpm-vs-langevin")
    setting(view.editors[1], "steps_per_level").setValue(1000)  # 10,000 Langevin steps after 1,000 DDPM: seconds
    view.points.setValue(200)
    assert view.compute()
    sampling(view, qtbot)
    worker = view.job.worker
    assert worker is not None and worker.isRunning()
    close_at_once(window, worker)
    assert not view.job.busy and view.result is None


def test_closing_while_sweeping_many_short_runs_cancels_at_once(window, qtbot, close_at_once):
    view = window.compare_view
    view.model.apply_preset("eta")  # four families of short DDIM runs: the sweep checks between runs
    view.sweep.steps.setText(", ".join(str(s) for s in range(1, 41)))
    assert view.sweep.start()
    qtbot.waitUntil(lambda: view.sweep.bar.maximum() == 160 and view.sweep.bar.value() >= 1, timeout=10_000)
    worker = view.sweep.job.worker
    assert worker is not None and worker.isRunning() and not view.sweep.button.isEnabled()
    close_at_once(window, worker)
    assert not view.sweep.job.busy and view.sweep.points == []


# --- known bugs -----------------------------------------------------------------------------------------------------


def test_closing_while_the_floors_are_computed_cancels_at_once(window, qtbot, monkeypatch, close_at_once):
    view = window.compare_view
    view.points.setValue(2000)  # the default
    entered = threading.Event()
    floors = core_compare.floors

    def watched(*args, **kwargs):
        entered.set()
        return floors(*args, **kwargs)

    monkeypatch.setattr(core_compare, "floors", watched)
    assert view.compute()
    assert entered.wait(10)
    close_at_once(window, view.job.worker)


def test_closing_during_one_long_sweep_run_cancels_at_once(window, qtbot, close_at_once):
    view = window.compare_view
    view.model.apply_preset("ddpm-vs-langevin")
    view.model.set_panel(0, Panel(R("langevin", {"steps_per_level": 20})))  # the long run first
    view.model.set_panel(1, Panel(R("ddpm")))
    view.sweep.steps.setText("1000")
    view.points.setValue(200)
    assert view.sweep.start()
    qtbot.waitUntil(lambda: view.sweep.bar.maximum() == 2, timeout=10_000)  # progress(0, 2): the first run starts
    close_at_once(window, view.sweep.job.worker)


def test_the_backdrop_follows_the_data(window, qtbot):
    view = window.compare_view
    compute(view, qtbot)
    window.data_panel.n.setValue(150)  # new data: the visible view recomputes
    qtbot.waitSignal(view.computed, timeout=30_000).wait()
    assert len(window.state.data) == 150
    for panel in view.panels:
        np.testing.assert_array_equal(xy(panel.backdrop), window.state.data.points)


def test_changing_the_panel_count_while_comparing(window, qtbot):
    view = window.compare_view
    view.model.apply_preset("ddpm-vs-ddim")
    with qtbot.captureExceptions() as exceptions, qtbot.waitSignal(view.job.done, timeout=30_000):
        assert view.compute()
        view.count.setValue(4)  # while the three panels are computed
    assert [str(e) for _, e, _ in exceptions] == []
    assert view.result is None or all(panel.result is not None for panel in view.panels)


# --- runs side by side --------------------------------------------------------------------------------------------


def tiny_runs(state) -> dict:
    """A DDPM run, a flow run and that flow reflowed once, trained (barely) on the state's points."""
    from diffvis.core.models import ModelConfig
    from diffvis.core.pipeline import train_run
    from diffvis.core.reflow import draw_pairs, reflow_run

    cfg = TrainConfig(steps=20, batch=64, device="cpu", warmup=0, timesteps=50)
    ddpm, flow = (train_run(state.data, ModelConfig(objective=o, width=16, depth=1, embed_dim=8), cfg, state.data_info)
                  for o in ("ddpm", "flow"))  # fmt: skip
    return {"ddpm": ddpm, "flow": flow, "reflowed": reflow_run(flow, draw_pairs(flow, 64), steps=5)}


def test_the_objectives_preset_compares_the_sessions_runs_and_says_which_is_missing(window, qtbot):
    view, state = window.compare_view, window.state
    runs = tiny_runs(state)
    state.set_run(runs["ddpm"])
    choose_preset(view, qtbot, "objectives")
    assert [e.model_choice.currentText() for e in view.editors[:3]] == [
        "newest ddpm run", "newest flow run", "newest flow run reflowed once"]  # fmt: skip
    assert view.sweep.model.step_counts == (1, 2, 4, 8)
    if view.job.busy:
        qtbot.waitUntil(lambda: not view.job.busy, timeout=30_000)
    qtbot.mouseClick(view.compute_button, LEFT)
    qtbot.waitUntil(lambda: not view.job.busy, timeout=30_000)
    assert view.result is None and "needs a flow run: train one, or load it" in view.timeline.label.text()

    state.set_run(runs["flow"])
    state.set_run(runs["reflowed"])
    assert state.runs == [runs["ddpm"], runs["flow"], runs["reflowed"]]
    results = compute(view, qtbot)
    assert [r.label for r in results] == ["Euler S=2 · ddpm", "Euler S=2 · flow (independent)",
                                          "Euler S=2 · flow reflowed ×1"]  # fmt: skip
    npe = view.table.columnCount() - 5
    assert view.table.item(0, npe).text() == ""
    assert [float(view.table.item(row, npe).text()) for row in (1, 2)] == pytest.approx(
        [results[1].npe, results[2].npe], rel=5e-3)  # fmt: skip
    # its sweep: one line per run, at the preset's step counts (here two of them)
    assert view.sweep.steps.text() == "1, 2, 4, 8"
    view.sweep.steps.setText("1, 2")
    with qtbot.waitSignal(view.sweep.job.done, timeout=60_000):
        qtbot.mouseClick(view.sweep.button, LEFT)
    assert [(p.label, p.steps) for p in view.sweep.points] == [
        (r.label.replace(" S=2", ""), s) for r in results for s in (1, 2)]  # fmt: skip
    assert len(view.sweep.plot.getPlotItem().listDataItems()) == 3
    # the same points again keep the session's runs; other points forget them
    state.set_data(state.data, state.data_info)
    assert len(state.runs) == 3
    window.data_panel.n.setValue(120)
    assert state.runs == []
