"""The density view draws exactly the core's log-density maps, chosen through its real widgets, for flow, DDPM and
NCSN runs and the exact model of a known density; a click on the plot shows that point's log p and its ODE path;
what cannot be mapped says why in the caption; cancel and close leave no thread running; `diffvis render --view
density` writes the picture headless, in-process and in a process of its own."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt

from diffvis.app.models.density import TOLERANCES
from diffvis.app.state import LabState
from diffvis.app.views.density_view import DensityView
from diffvis.cli import main
from diffvis.core.checkpoint import save_run
from diffvis.core.datasets import PointSet
from diffvis.core.density import KDE, NO_DENSITY, density_map, density_model, probe_density
from diffvis.core.models import ModelConfig
from diffvis.core.pipeline import train_run
from diffvis.core.schedules import Schedule
from diffvis.core.sources import load_source
from diffvis.core.training import TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")
RES, STEPS = 16, 8
SOLVER = {"method": "rk4", "steps": STEPS}
SIZE = (400, 300)


def background_jobs(folder: Path) -> dict[str, dict]:
    """A tiny gmm8 flow trained, then `diffvis render --view density` of it, each in a process of its own (one torch
    thread), started at the end of collection (the conftest's ``Background``)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", QT_QPA_PLATFORM="offscreen")

    def diffvis(*argv) -> list[str]:
        return [sys.executable, "-m", "diffvis", *map(str, argv)]

    train = diffvis("train", "--data", "gmm8", "--n", "500", "--steps", "50", "--width", "16", "--depth", "1",
                    "--batch", "128", "--objective", "flow", "--unconditional", "--device", "cpu", "--quiet",
                    "--out", folder / "RUN")  # fmt: skip
    render = diffvis("render", "--run", folder / "RUN", "--view", "density", "--sampler", "rk4", "--steps", STEPS,
                     "--size", f"{SIZE[0]}x{SIZE[1]}", "--out", folder / "density.png")  # fmt: skip
    return {"train": {"argv": train, "env": env}, "render": {"argv": render, "env": env, "after": "train"}}


@pytest.fixture(scope="module")
def gmm8():
    return load_source("gmm8", n=300)


@pytest.fixture(scope="module")
def runs(gmm8):
    """A tiny unconditional run of each objective on 300 gmm8 points."""
    data, info = gmm8
    cfg = TrainConfig(steps=30, batch=64, conditional=False)
    return {
        o: train_run(data, ModelConfig(objective=o, width=16, depth=1), cfg, info) for o in ("flow", "ddpm", "ncsn")
    }


@pytest.fixture
def make_view(qtbot):
    views = []

    def make(state: LabState) -> DensityView:
        view = DensityView(state)
        qtbot.addWidget(view)
        view.resize(900, 700)
        views.append(view)
        return view

    yield make
    for view in views:
        view.shutdown()
        view.close()


def lab(data, info, run=None, objective="flow") -> LabState:
    state = LabState()
    state.set_data(data, info)
    state.set_model_config(replace(state.model_config, objective=objective))
    if run is not None:
        state.set_run(run)
    return state


def choose(box, data) -> None:
    box.setCurrentIndex(box.findData(data))


def small(view) -> None:
    """A 16 × 16 grid solved with RK4 × 8, set through the widgets."""
    view.resolution.setValue(RES)
    choose(view.method, "rk4")
    view.steps.setValue(STEPS)


def compute(view, qtbot) -> None:
    with qtbot.waitSignal(view.computed, timeout=60_000):
        qtbot.mouseClick(view.compute_button, Qt.MouseButton.LeftButton)


def drawn(view) -> np.ndarray:
    return view.image.image


@pytest.mark.parametrize("source", ["flow", "ddpm", "ncsn", "exact flow"])
def test_the_maps_drawn_are_the_cores(make_view, qtbot, runs, gmm8, source):
    data, info = gmm8
    run = None if source.startswith("exact") else runs[source]
    state = lab(data, info, run)
    view = make_view(state)
    small(view)
    assert (view.model.resolution, view.model.method, view.model.steps) == (RES, "rk4", STEPS)
    assert not view.tolerance.isEnabled() and view.steps.isEnabled()
    compute(view, qtbot)
    model = density_model(run, data, "flow", Schedule.make())
    expected = density_map(model, data, resolution=RES, rtol=view.model.tolerance, atol=view.model.tolerance,
                           **SOLVER)  # fmt: skip
    np.testing.assert_allclose(drawn(view), expected.learned, atol=1e-9)
    rect = view.image.mapRectToParent(view.image.boundingRect())
    x_min, x_max, y_min, y_max = expected.extent
    np.testing.assert_allclose([rect.left(), rect.right(), rect.top(), rect.bottom()], [x_min, x_max, y_min, y_max])
    np.testing.assert_allclose(np.column_stack(view.samples.getData()), expected.samples)
    assert f"{expected.sample_log_p.mean():.3f}" in view.caption.text
    learned_levels = view.bar.levels()

    choose(view.show_box, "reference")
    assert view.model.show == "reference"
    np.testing.assert_allclose(drawn(view), expected.reference)
    assert view.bar.levels() == learned_levels  # one colour scale for both log p maps
    assert f"{expected.sample_reference.mean():.3f}" in view.caption.text

    choose(view.show_box, "difference")
    lo = min(expected.learned.min(), expected.reference.min())
    lo = max(lo, max(expected.learned.max(), expected.reference.max()) - 12.0)
    coloured = (expected.learned >= lo) | (expected.reference >= lo)
    np.testing.assert_allclose(drawn(view)[coloured], expected.difference[coloured])
    assert np.isnan(drawn(view)[~coloured]).all()
    low, high = view.bar.levels()
    assert -low == high > 0  # centred at 0
    gap = (expected.sample_log_p - expected.sample_reference).mean()
    assert f"{gap:+.3f}" in view.caption.text


def test_a_click_shows_the_points_log_p_and_its_path_to_the_source(make_view, qtbot, runs, gmm8):
    data, info = gmm8
    view = make_view(lab(data, info, runs["flow"]))
    small(view)
    compute(view, qtbot)
    vb = view.plot.getPlotItem().vb
    view.plot.scene().prepareForPaint()
    pixel = view.plot.mapFromScene(vb.mapViewToScene(QPointF(1.5, 0.5)))
    with qtbot.waitSignal(view.probe_job.done, timeout=30_000):
        qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=pixel)
    clicked = view.model.clicked
    point = clicked.probe.point
    np.testing.assert_allclose(point, [1.5, 0.5], atol=0.05)
    probe = probe_density(view.result.model, point, **SOLVER)
    np.testing.assert_allclose(np.column_stack(view.path.getData()), probe.path)
    assert len(probe.path) == STEPS + 1 and probe.accumulated[0] == 0  # a fixed-step solve: its own S + 1 u
    np.testing.assert_allclose(np.column_stack(view.ends.getData()), probe.path[[0, -1]])
    assert f"log p_θ = {probe.log_p:.3f} = log p_source {probe.prior:.3f}" in view.caption.text
    labels = [label.textItem.toPlainText() for label in view.end_labels]
    assert labels == [f"log p_θ {probe.log_p:.2f}", f"−∫∇·f {probe.accumulated[-1]:+.2f}"]
    assert all(label.isVisible() for label in view.end_labels)
    # the formula panel: log p = log p_start + (−∫ ∇·f du) + (−2 ln s), term by term, the clicked point's
    e = view.formula.explanation
    terms = {t.symbol: t.value for t in e.step.terms}
    assert e.step.result.value == clicked.probe.log_p and terms["log p_{start}(y_{start})"] == clicked.probe.prior
    assert sum(terms[s] for _, s in e.step.combination) == pytest.approx(clicked.probe.log_p, abs=1e-9)
    assert "log p(x)" in view.formula_panel.text.text() and not view.formula_panel.point.isVisible()
    with qtbot.waitSignal(view.computed, timeout=60_000):  # a new grid: the old click goes
        view.resolution.setValue(RES + 8)
    assert view.model.clicked is None and not any(label.isVisible() for label in view.end_labels)
    assert view.formula.explanation is None and "Click a point" in view.formula_panel.text.text()


def test_a_flow_from_a_data_set_says_log_p_needs_a_gaussian_source(make_view, qtbot, gmm8):
    data, info = gmm8
    cfg = TrainConfig(steps=5, batch=64, conditional=False, source="moons")
    run = train_run(data, ModelConfig(objective="flow", width=16, depth=1), cfg, info)
    view = make_view(lab(data, info, run))
    small(view)
    with qtbot.waitSignal(view.job.failed, timeout=30_000):
        qtbot.mouseClick(view.compute_button, Qt.MouseButton.LeftButton)
    assert "log p needs a N(0, I) source" in view.caption.text
    assert view.result is None and view.compute_button.text() == view.compute_text


def test_points_of_no_known_density_and_no_run_say_why(make_view, qtbot, gmm8):
    data, info = gmm8
    view = make_view(lab(PointSet(data.points), {"source": "points.csv"}))
    with qtbot.waitSignal(view.job.failed, timeout=30_000):
        view.compute()
    assert view.caption.text == NO_DENSITY


def test_the_solver_and_tolerance_widgets_write_the_model(make_view, gmm8):
    data, info = gmm8
    view = make_view(lab(data, info))
    assert view.model.method == "dopri5" and view.tolerance.isEnabled() and not view.steps.isEnabled()
    choose(view.tolerance, TOLERANCES[0])
    assert view.model.solver == {"method": "dopri5", "steps": 100, "rtol": TOLERANCES[0], "atol": TOLERANCES[0]}
    view.show_samples.setChecked(False)
    assert view.model.show_samples is False
    view.model.update(method="heun", steps=12)  # and the model shows in the widgets
    assert (view.method.currentData(), view.steps.value()) == ("heun", 12)


def test_a_kde_reference_for_a_point_file_run(make_view, qtbot, runs, gmm8):
    data, info = gmm8
    file = PointSet(data.points)  # read from a file: no known density
    view = make_view(lab(file, {"source": "points.csv"}, runs["flow"]))
    small(view)
    compute(view, qtbot)
    assert view.result.map.reference_name == KDE
    choose(view.show_box, "reference")
    assert "kernel density estimate" in view.caption.text and "KDE" in view.plot.getPlotItem().titleLabel.whole


def test_cancel_then_close_leave_no_thread_running(make_view, qtbot, runs, gmm8):
    data, info = gmm8
    view = make_view(lab(data, info, runs["flow"]))
    view.resolution.setValue(128)  # dopri5 on 16,384 points: seconds of work
    assert view.compute() and view.compute_button.text() == "Cancel"
    worker = view.job.worker
    qtbot.mouseClick(view.compute_button, Qt.MouseButton.LeftButton)
    assert not view.job.busy and view.timeline.label.text() == "cancelled"
    assert view.compute()
    second = view.job.worker
    view.close()
    view.shutdown()
    assert worker.isFinished() and second.isFinished() and view.result is None


def test_closing_the_window_while_mapping_stops_at_once(make_window, qtbot, close_at_once):
    window = make_window()
    window.data_panel.source.setCurrentText("gmm8")
    view = window.density_view
    view.resolution.setValue(128)
    window.tabs.setCurrentWidget(view)  # a first look computes
    worker = view.job.worker
    assert worker is not None and worker.isRunning()
    close_at_once(window, worker)
    assert not view.job.busy and view.result is None


def test_render_draws_each_map_and_refuses_settings_of_no_solver(runs, tmp_path, capsys, qapp):
    save_run(runs["flow"], tmp_path / "run")
    for show in ("reference", "difference"):
        out = tmp_path / f"{show}.png"
        argv = ["render", "--run", tmp_path / "run", "--view", "density", "--density-show", show, "--sampler", "rk4",
                "--steps", STEPS, "--size", f"{SIZE[0]}x{SIZE[1]}", "--out", out]  # fmt: skip
        assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
        assert_drawn(out)
    csv = tmp_path / "samples.csv"
    argv = ["render", "--run", tmp_path / "run", "--view", "density", "--sampler", "euler", "--steps", "4", "--out",
            csv]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    assert len(csv.read_text().splitlines()) == 1 + 500  # a header, then the model's samples
    capsys.readouterr()
    for bad, reason in ((["--sampler", "ddim"], "solves its ODE with"), (["--sampler", "rk4", "--rtol", "1e-3"],
                        "not a setting"), (["--rtol", "1e-3", "--atol", "1e-4"], "one tolerance")):  # fmt: skip
        argv = ["render", "--run", tmp_path / "run", "--view", "density", *bad, "--out", tmp_path / "bad.png"]
        assert main([str(a) for a in argv]) == 2
        err = capsys.readouterr().err
        assert reason in err and len(err.splitlines()) == 1, err


def assert_drawn(path: Path) -> None:
    """A PNG of ``SIZE`` with many colours, a good share of pixels unlike the background."""
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == SIZE
        flat = np.asarray(image.convert("RGB")).reshape(-1, 3)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    assert len(colours) > 30 and counts.max() / len(flat) < 0.9


def test_render_in_its_own_process_exits_cleanly_with_a_picture(background):
    trained = background.result(__name__, "train", timeout=240)
    assert trained.returncode == 0, trained.stderr[-3000:]
    done = background.result(__name__, "render", timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "wrote 1 frame of the density view" in done.stdout
    assert_drawn(background.folder(__name__) / "density.png")
