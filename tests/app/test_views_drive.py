"""The scene views driven as a user would: real widgets, real workers, and every drawn number checked against an
independent call of the core (score fields, Langevin frames, trails, density, probes, recomputation, exports)."""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace

import av
import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt

from diffvis.core.checkpoint import load_run
from diffvis.core.classes import ALL_CLASSES
from diffvis.core.datasets import Normaliser
from diffvis.core.exact import ExactNoisePredictor, ExactScore
from diffvis.core.fields import (
    ddpm_score,
    density_grid,
    ncsn_score,
    padded_extent,
    score_field,
)
from diffvis.core.forward import q_sample
from diffvis.core.pipeline import probe_trajectory, sample_request, sampling_model
from diffvis.core.pointfiles import load_points
from diffvis.core.request import SampleRequest
from diffvis.core.run import SamplingModel
from diffvis.core.samplers import ddim_timesteps, langevin_frame
from diffvis.core.schedules import Schedule, SigmaLadder, max_pairwise_distance

LEFT = Qt.MouseButton.LeftButton
TINY = ["--n", "300", "--steps", "60", "--width", "16", "--depth", "1", "--batch", "64", "--device", "cpu", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# Run after the other modules (the conftest): two tiny trainings, about 8 s each in the background.
BACKGROUND_HEAVY = True


def background_jobs(folder):
    """Two tiny runs trained through `diffvis train` (one torch thread each, as here), each in its own process
    started at the end of collection (the conftest's ``Background``)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return {objective: {"argv": [sys.executable, "-m", "diffvis", "train", "--data", "moons", *TINY, "--objective",
                                 objective, "--out", str(folder / objective)], "env": env}
            for objective in ("ddpm", "ncsn")}  # fmt: skip


@pytest.fixture(scope="module")
def runs(background):
    """{'ddpm': dir, 'ncsn': dir} (one not yet started runs here, beside the other)."""
    for objective in ("ncsn", "ddpm"):
        done = background.result(__name__, objective)
        assert done.returncode == 0, done.stderr
    return {objective: background.folder(__name__) / objective for objective in ("ddpm", "ncsn")}


@pytest.fixture
def window(moons_window):
    return moons_window


# --- helpers --------------------------------------------------------------------------------------------------------


def xy(item) -> np.ndarray:
    """(M, 2) the points a scatter or curve item holds (none yet: (0, 2))."""
    x, y = item.getData()
    if x is None:
        return np.zeros((0, 2))
    return np.column_stack([x, y])


def arrow_segments_drawn(quiver) -> np.ndarray:
    """(M, 6, 2): every arrow the quiver's curves draw, as shaft (base, tip) and two barbs (tip, back)."""
    return np.concatenate([xy(curve) for curve in quiver.curves]).reshape(-1, 6, 2)


def setting(view, name: str):
    """The reverse view's editor of the chosen sampler's setting ``name``."""
    return view.controls.settings[view.controls.sampler].editors[name]


def choose_sampler(view, name: str) -> None:
    view.controls.combo.setCurrentIndex(view.controls.combo.findData(name))


def compute(view, qtbot, timeout=30_000):
    """Press the view's compute button and wait for its result."""
    if view.job.busy:  # the computation the view started when first shown: cancel it, as a user would
        qtbot.mouseClick(view.compute_button, LEFT)
    assert not view.job.busy
    with qtbot.waitSignal(view.computed, timeout=timeout):
        qtbot.mouseClick(view.compute_button, LEFT)
    return view.result


def click_plot(view, qtbot, point) -> np.ndarray:
    """Left-click the plot at data point ``point``; returns the data position the clicked pixel stands for."""
    vb = view.plot.getPlotItem().vb
    view.plot.scene().prepareForPaint()  # the view box applies a new range only when about to paint
    pixel = view.plot.mapFromScene(vb.mapViewToScene(QPointF(float(point[0]), float(point[1]))))
    qtbot.mouseClick(view.plot.viewport(), LEFT, pos=pixel)
    clicked = vb.mapSceneToView(view.plot.mapToScene(pixel))
    return np.array([clicked.x(), clicked.y()])


def pixel_size(view) -> float:
    (x_min, x_max), _ = view.plot.getPlotItem().vb.viewRange()
    return (x_max - x_min) / view.plot.viewport().width()


def exact_ddpm_field(points, t, resolution):
    norm = Normaliser.fit(points)
    std = torch.as_tensor(norm.to_std(points), dtype=torch.float32)
    schedule = Schedule.make("linear", 1000)
    fn = ddpm_score(ExactNoisePredictor(std, schedule), schedule, t)
    return score_field(fn, norm, padded_extent(points), resolution)


def exact_score_at(points, t, x, labels=None, label=None) -> np.ndarray:
    """The exact DDPM score of ``points`` (of class ``label`` among their dense ``labels``) at timestep t, at data
    points x (M, 2), in data coordinates."""
    norm = Normaliser.fit(points)
    std = torch.as_tensor(norm.to_std(points), dtype=torch.float32)
    schedule = Schedule.make("linear", 1000)
    ideal = ExactNoisePredictor(std, schedule, labels)
    fn = ddpm_score(ideal if label is None else lambda x, t: ideal(x, t, label), schedule, t)
    with torch.inference_mode():
        return fn(torch.as_tensor(norm.to_std(x), dtype=torch.float32)).numpy().astype(np.float64) / norm.scale


# --- 1, 2: the score view -------------------------------------------------------------------------------------------


def test_score_view_draws_the_exact_field_of_each_level(window, qtbot):
    view, points = window.score_view, window.state.data.points
    window.tabs.setCurrentWidget(view)
    view.resolution.setValue(8)
    view.levels.setValue(10)
    fields = compute(view, qtbot)
    model, series = fields.model, fields.unconditional
    assert model.exact and series.learned is None
    assert view.timeline.slider.maximum() == 9 == len(series.times) - 1
    np.testing.assert_array_equal(series.times, np.round(np.linspace(0, 999, 10))[::-1])

    k = 4
    view.timeline.slider.setValue(k)
    t = int(series.times[k])
    expected = exact_ddpm_field(points, t, 8)
    vectors = expected.vectors.reshape(-1, 2)
    assert len(view.quiver.base) == 64  # every grid point has a finite, non-zero score
    np.testing.assert_allclose(view.quiver.base, expected.points, atol=1e-12)
    np.testing.assert_allclose(view.quiver.vectors, vectors, rtol=1e-5, atol=1e-9)

    # each drawn shaft starts at its grid point and points along the core's vector, its length capped
    segments = arrow_segments_drawn(view.quiver)
    assert segments.shape == (64, 6, 2)
    order = np.argmin(np.linalg.norm(segments[:, None, 0] - expected.points[None], axis=2), axis=1)
    assert sorted(order) == list(range(64))
    np.testing.assert_allclose(segments[:, 0], expected.points[order], atol=1e-9)
    shaft = segments[:, 1] - segments[:, 0]
    length = np.linalg.norm(shaft, axis=1)
    direction = vectors[order] / np.linalg.norm(vectors[order], axis=1, keepdims=True)
    np.testing.assert_allclose(shaft / length[:, None], direction, atol=1e-6)
    spacing = expected.xs[1] - expected.xs[0]
    assert np.all(length <= 0.9 * spacing * (1 + 1e-9)) and np.all(length >= 0.2 * 0.9 * spacing * (1 - 1e-9))
    magnitude = np.linalg.norm(vectors[order], axis=1)
    np.testing.assert_allclose(
        length, 0.9 * spacing * np.clip(magnitude / np.percentile(magnitude, 90), 0.2, 1.0), rtol=1e-6
    )
    abar = Schedule.make("linear", 1000).alphas_cumprod[t]
    assert view.timeline.label.text().startswith(f"t = {t} · ᾱ = {abar:.4f} · |score| ")
    assert "median error" not in view.timeline.label.text()

    # exact overlay: red arrows, the same field for the exact model
    assert len(arrow_segments_drawn(view.exact_quiver)) == 0
    view.show_exact.setChecked(True)
    assert arrow_segments_drawn(view.exact_quiver).shape == (64, 6, 2)
    np.testing.assert_allclose(view.exact_quiver.vectors, vectors, rtol=1e-5, atol=1e-9)
    view.show_exact.setChecked(False)
    assert len(arrow_segments_drawn(view.exact_quiver)) == 0

    # error heatmap: nothing to compare the exact model with
    view.show_error.setChecked(True)
    assert view.error_image.image is None
    view.show_error.setChecked(False)

    # the noised data: the data noised to t with one fixed ε per point
    norm = Normaliser.fit(points)
    eps = np.random.default_rng(1234).standard_normal(points.shape)
    noised = norm.to_data(q_sample(norm.to_std(points), abar, eps))
    np.testing.assert_allclose(xy(view.samples), noised, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(xy(view.samples), series.noised[k])
    view.show_samples.setChecked(False)
    assert len(xy(view.samples)) == 0
    view.show_samples.setChecked(True)
    np.testing.assert_array_equal(xy(view.samples), series.noised[k])

    # another frame: the field follows the slider
    view.timeline.slider.setValue(9)
    np.testing.assert_allclose(view.quiver.vectors, exact_ddpm_field(points, 0, 8).vectors.reshape(-1, 2), rtol=1e-5)
    np.testing.assert_array_equal(xy(view.samples), series.noised[9])


def test_score_view_of_a_trained_run_differs_from_the_exact_field(window, qtbot, runs):
    assert window.open_run(runs["ddpm"])
    view, points = window.score_view, window.state.data.points
    assert len(points) == 300
    window.tabs.setCurrentWidget(view)
    view.resolution.setValue(8)
    view.levels.setValue(10)
    assert view.model_choice.currentText() == "trained"
    fields = compute(view, qtbot)
    model, series = fields.model, fields.unconditional
    assert not model.exact and series.learned is not None
    k = 6
    view.timeline.slider.setValue(k)
    t = int(series.times[k])
    run = load_run(runs["ddpm"])
    learned = score_field(ddpm_score(SamplingModel.of_run(run).model, run.schedule, t), run.normaliser,
                          padded_extent(points), 8)  # fmt: skip
    np.testing.assert_allclose(view.quiver.vectors, learned.vectors.reshape(-1, 2), rtol=1e-4, atol=1e-6)
    exact = exact_ddpm_field(points, t, 8).vectors
    np.testing.assert_allclose(series.exact[k], exact, rtol=1e-5, atol=1e-9)
    error = np.linalg.norm(learned.vectors - exact, axis=-1) / np.linalg.norm(exact, axis=-1)
    assert np.median(error) > 0.05  # 60 steps of training are far from the exact score
    assert f"median error vs exact {np.median(error):.2f}" in view.timeline.label.text()

    view.show_exact.setChecked(True)
    np.testing.assert_allclose(view.exact_quiver.vectors, exact.reshape(-1, 2), rtol=1e-5, atol=1e-9)
    assert not np.allclose(view.exact_quiver.vectors, view.quiver.vectors, rtol=0.01)

    view.show_error.setChecked(True)
    image = view.error_image.image
    assert image is not None and image.shape == (8, 8)
    assert image.min() >= 0.0 and image.max() <= 1.0
    np.testing.assert_allclose(image, np.clip(error, 0.0, 1.0), rtol=1e-4, atol=1e-6)
    view.show_error.setChecked(False)
    assert view.error_image.image is None

    # the exact model of the same run: no learned field, so no heatmap even when asked for
    view.show_error.setChecked(True)
    view.model_choice.setCurrentText("exact")
    assert view.model.exact
    fields = compute(view, qtbot)
    model, series = fields.model, fields.unconditional
    assert model.exact and series.learned is None
    assert view.error_image.image is None
    assert "median error" not in view.timeline.label.text()


# --- 3: the Langevin view -------------------------------------------------------------------------------------------


def test_langevin_view_frames_levels_and_field_with_the_exact_score(window, qtbot):
    view, points = window.langevin_view, window.state.data.points
    window.tabs.setCurrentWidget(view)
    view.model_choice.setCurrentText("exact score")
    view.editors["steps_per_level"].setValue(3)
    view.points.setValue(50)
    view.resolution.setValue(8)
    assert view.model.request.exact and view.model.request.params["steps_per_level"] == 3
    result = compute(view, qtbot)
    model, traj, series = result.model, result.trajectory, result.series
    norm = Normaliser.fit(points)
    std = norm.to_std(points)
    ladder = SigmaLadder.geometric(max_pairwise_distance(std))
    L, K, eps = ladder.L, 3, view.editors["step_size"].value()
    assert eps == view.model.request.params["step_size"] == 5e-5
    np.testing.assert_allclose(model.ladder.sigmas, ladder.sigmas, rtol=1e-6)  # from float32 points
    assert traj.frames.shape == (L * K + 2, 50, 2)
    assert view.timeline.slider.maximum() == L * K + 1
    x_T = torch.randn(50, 2, generator=torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_allclose(traj.frames[0], norm.to_data(ladder.sigmas[0] * x_T), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(series.times, model.ladder.sigmas)

    grid = np.stack(np.meshgrid(series.xs, series.ys), axis=-1).reshape(-1, 2)
    for k in (0, 7, L * K - 1, L * K):
        view.timeline.slider.setValue(k)
        np.testing.assert_array_equal(xy(view.scatter), traj.frames[k])
        level, inner = min(k // K, L - 1), (k % K if k < L * K else K)
        where = langevin_frame(model.ladder, K, eps, k)
        assert (where.level, where.inner) == (level, inner)
        sigma = ladder.sigmas[level]
        text = view.timeline.label.text()
        expected = f"exact score · frame {k}/{L * K + 1} · level {level + 1}/{L} · σ = {sigma:.3g} · step {inner}/{K}"
        assert text.startswith(expected)
        assert f"α = {eps * (sigma / ladder.sigmas[-1]) ** 2:.2e}" in text
        assert view.caption.text == text
        field = score_field(ncsn_score(ExactScore(std), sigma), norm,
                            padded_extent(points), 8)  # fmt: skip
        vectors = field.vectors.reshape(-1, 2)
        keep = np.isfinite(vectors).all(1) & (np.linalg.norm(vectors, axis=1) > 0)
        np.testing.assert_allclose(view.quiver.base, grid[keep], atol=1e-12)
        np.testing.assert_allclose(view.quiver.vectors, vectors[keep], rtol=1e-5, atol=1e-9)
        np.testing.assert_array_equal(view.quiver.vectors, series.shown[level].reshape(-1, 2)[keep])
    view.timeline.slider.setValue(L * K + 1)
    assert "denoised" in view.timeline.label.text()
    np.testing.assert_array_equal(xy(view.scatter), traj.frames[-1])
    gaps = np.linalg.norm(traj.frames[-1][:, None] - points[None], axis=2).min(1)
    assert np.median(gaps) < 0.1  # the exact score draws the data back


def test_langevin_view_falls_back_to_the_exact_score_for_a_ddpm_run(window, qtbot, runs):
    view = window.langevin_view
    assert window.open_run(runs["ddpm"])
    window.tabs.setCurrentWidget(view)
    view.editors["steps_per_level"].setValue(2)
    view.points.setValue(30)
    view.resolution.setValue(6)
    # a DDPM run has no score network: the picker says so and the exact score is chosen
    assert view.model_choice.currentText() == "exact score" and view.model.request.exact
    assert view.model_choice.itemText(0) == "trained: none (the run is DDPM)"
    assert not view.model_choice.model().item(0).isEnabled()
    compute(view, qtbot)
    assert view.result.model.exact and view.result.model.objective == "ncsn"
    assert view.caption.text.startswith("exact score · frame")
    assert view.compute_button.text() == "Sample"

    with qtbot.waitSignal(view.computed, timeout=30_000):  # on screen: recomputed for the new run at once
        assert window.open_run(runs["ncsn"])
        window.tabs.setCurrentWidget(view)
    result = view.result
    model, traj, series = result.model, result.trajectory, result.series
    assert view.model_choice.currentText() == "trained NCSN" and view.model_choice.model().item(0).isEnabled()
    assert not view.model.request.exact
    run = load_run(runs["ncsn"])
    L = run.ladder.L
    assert not model.exact and model.objective == "ncsn"
    assert traj.frames.shape == (L * 2 + 2, 30, 2) and np.isfinite(traj.frames).all()
    assert series.learned is not None
    k = 5
    view.timeline.slider.setValue(k)
    level = k // 2
    assert f"level {level + 1}/{L} · σ = {run.ladder.sigmas[level]:.3g}" in view.timeline.label.text()
    points = window.state.data.points
    field = score_field(ncsn_score(run.ema, run.ladder.sigmas[level]), run.normaliser, padded_extent(points), 6)
    np.testing.assert_allclose(view.quiver.vectors, field.vectors.reshape(-1, 2), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(xy(view.scatter), traj.frames[k])


# --- 4: trails and density in the reverse view ----------------------------------------------------------------------


def test_reverse_view_trails_and_density_follow_the_frame(window, qtbot):
    from diffvis.app.models.reverse import trail_paths

    view, points = window.reverse_view, window.state.data.points
    window.tabs.setCurrentWidget(view)
    view.model_choice.setCurrentText("exact")
    setting(view, "steps").setValue(10)
    view.points.setValue(50)
    view.trails.setValue(5)
    assert view.model.trails == 5
    compute(view, qtbot)
    traj = view.model.trajectory
    assert traj.frames.shape == (11, 50, 2)
    chosen = [0, 12, 24, 36, 49]  # five points spread evenly over the 50
    for k in (0, 3, 10):
        view.timeline.slider.setValue(k)
        drawn = xy(view.trail_curve)
        assert drawn.shape == (5 * (k + 2), 2)
        paths = drawn.reshape(5, k + 2, 2)
        assert np.isnan(paths[:, -1]).all() and np.isfinite(paths[:, :-1]).all()
        np.testing.assert_array_equal(paths[:, :-1], traj.frames[: k + 1, chosen].transpose(1, 0, 2))
        np.testing.assert_array_equal(drawn, trail_paths(traj.frames, k, 5))
    view.trails.setValue(0)
    assert len(xy(view.trail_curve)) == 0
    view.trails.setValue(1)
    np.testing.assert_array_equal(xy(view.trail_curve)[:-1], traj.frames[:, 0])

    assert view.extent == pytest.approx(padded_extent(points))
    assert view.density.image is None
    view.timeline.slider.setValue(4)
    view.show_density.setChecked(True)
    grid = density_grid(traj.frames[4], padded_extent(points), 80)
    assert grid.sum() > 0
    np.testing.assert_allclose(view.density.image, grid, rtol=1e-12)
    x_min, x_max, y_min, y_max = view.extent
    rect = view.density.mapRectToParent(view.density.boundingRect())
    assert (rect.left(), rect.right(), rect.top(), rect.bottom()) == pytest.approx((x_min, x_max, y_min, y_max))
    assert view.density.levels[1] == pytest.approx(np.percentile(grid[grid > 0], 99))
    view.timeline.slider.setValue(10)  # the heatmap follows the slider
    np.testing.assert_allclose(view.density.image, density_grid(traj.frames[10], view.extent, 80), rtol=1e-12)
    view.show_density.setChecked(False)
    assert view.density.image is None


# --- 5: probes ------------------------------------------------------------------------------------------------------


def test_reverse_view_probe_placed_by_a_click(window, qtbot):
    view, points = window.reverse_view, window.state.data.points
    window.tabs.setCurrentWidget(view)
    qtbot.waitExposed(view)
    view.model_choice.setCurrentText("exact")
    setting(view, "steps").setValue(20)
    view.points.setValue(50)
    compute(view, qtbot)
    view.timeline.slider.setValue(5)
    target = points[0]
    with qtbot.waitSignal(view.probe_job.done, timeout=30_000):
        clicked = click_plot(view, qtbot, target)
    assert np.abs(clicked - target).max() <= pixel_size(view)  # the click landed on the pixel of the point
    assert len(view.model.probes) == 1
    probe = view.model.probes[0]
    frames = probe.trajectory.frames
    assert frames.shape == (21, 1, 2)
    assert np.isnan(frames[:5]).all() and np.isfinite(frames[5:]).all()
    np.testing.assert_allclose(frames[5, 0], clicked, atol=1e-5)
    np.testing.assert_allclose(xy(view.probe_layer.marker), frames[5], atol=1e-12)
    np.testing.assert_allclose(xy(view.probe_layer.path)[:-1], frames[:, 0])

    # the probe is the core's DDIM run from that frame, and its arrow is the exact score there
    # (moons has classes: the view samples every class in proportion, the default, and so does the core)
    model = sampling_model(None, window.state.data, "ddpm", schedule=Schedule.make("linear", 1000))
    request = SampleRequest("ddim", {"steps": 20}, label=ALL_CLASSES)
    assert view.model.result.request == replace(request, exact=True, n=50)
    alone = probe_trajectory(model, request, clicked[None], start=5, seed=1)
    np.testing.assert_allclose(frames, alone.frames, rtol=1e-5, atol=1e-5, equal_nan=True)
    t = int(probe.trajectory.times[5])
    assert t == ddim_timesteps(1000, 20)[5]
    np.testing.assert_allclose(view.probe_layer.arrows.vectors, probe.scores[5], atol=1e-12)
    labels, own = window.state.data.labels, int(probe.trajectory.labels[0])  # the probe's class (moons: dense = raw)
    exact = exact_score_at(points, t, frames[5], labels, own)
    np.testing.assert_allclose(probe.scores[5], exact, rtol=2e-3, atol=1e-3)
    np.testing.assert_allclose(view.probe_layer.arrows.base, frames[5], atol=1e-12)

    view.timeline.slider.setValue(12)
    np.testing.assert_allclose(xy(view.probe_layer.marker), frames[12], atol=1e-12)
    np.testing.assert_allclose(view.probe_layer.arrows.vectors, probe.scores[12], atol=1e-12)
    t12 = int(probe.trajectory.times[12])
    np.testing.assert_allclose(
        probe.scores[12], exact_score_at(points, t12, frames[12], labels, own), rtol=2e-3, atol=1e-3
    )
    view.timeline.slider.setValue(20)
    np.testing.assert_allclose(xy(view.probe_layer.marker), frames[20], atol=1e-12)
    assert len(view.probe_layer.arrows.vectors) == 0  # no score at the clean frame
    assert np.linalg.norm(points - frames[20], axis=1).min() < 0.05  # the exact denoiser lands on a data point

    # a click outside the plot area (on the title above it) places nothing
    qtbot.mouseClick(view.plot.viewport(), LEFT, pos=view.plot.viewport().rect().topLeft() + QPoint(3, 3))
    assert not view.probe_job.busy and len(view.model.probes) == 1
    # the last frame takes no probe
    click_plot(view, qtbot, points[1])
    qtbot.wait(50)
    assert not view.probe_job.busy and len(view.model.probes) == 1
    assert "before the last frame" in window.statusBar().currentMessage()

    qtbot.mouseClick(view.clear_probes, LEFT)
    assert view.model.probes == ()
    assert len(xy(view.probe_layer.marker)) == 0 and len(xy(view.probe_layer.path)) == 0
    assert len(view.probe_layer.arrows.vectors) == 0


def test_score_view_probe_follows_ddim_down_the_levels(window, qtbot):
    view, points = window.score_view, window.state.data.points
    window.tabs.setCurrentWidget(view)
    qtbot.waitExposed(view)
    view.resolution.setValue(8)
    view.levels.setValue(10)
    fields = compute(view, qtbot)
    model, series = fields.model, fields.unconditional
    view.timeline.slider.setValue(3)
    target = points[5]
    with qtbot.waitSignal(view.probe_job.done, timeout=30_000):
        clicked = click_plot(view, qtbot, target)
    assert np.abs(clicked - target).max() <= pixel_size(view)
    assert len(view.model.probes) == 1
    traj = view.model.probes[0].trajectory
    assert traj.frames.shape == (11, 1, 2) and traj.name == "ddim"
    np.testing.assert_array_equal(traj.times[:-1], series.times)
    assert np.isnan(traj.frames[:3]).all() and np.isfinite(traj.frames[3:]).all()
    np.testing.assert_allclose(traj.frames[3, 0], clicked, atol=1e-5)
    request = SampleRequest("ddim", {"steps": 10, "eta": 0.0, "spacing": "linspace"}, label=None)
    alone = probe_trajectory(model, request, clicked[None], start=3, seed=1)
    np.testing.assert_allclose(traj.frames, alone.frames, rtol=1e-5, atol=1e-5, equal_nan=True)
    np.testing.assert_allclose(xy(view.probe_layer.marker), traj.frames[3], atol=1e-12)
    view.timeline.slider.setValue(9)
    np.testing.assert_allclose(xy(view.probe_layer.marker), traj.frames[9], atol=1e-12)


def test_score_view_of_an_ncsn_run_probes_with_annealed_langevin(window, qtbot, runs):
    assert window.open_run(runs["ncsn"])
    view, points = window.score_view, window.state.data.points
    window.tabs.setCurrentWidget(view)
    qtbot.waitExposed(view)
    view.resolution.setValue(6)
    fields = compute(view, qtbot)
    model, series = fields.model, fields.unconditional
    run = load_run(runs["ncsn"])
    L = run.ladder.L
    np.testing.assert_allclose(series.times, run.ladder.sigmas, rtol=1e-6)  # the σ ladder, not timesteps
    assert view.timeline.slider.maximum() == L - 1
    view.timeline.slider.setValue(2)
    assert view.timeline.label.text().startswith(f"σ = {run.ladder.sigmas[2]:.3g} · |score| ")
    field = score_field(ncsn_score(run.ema, run.ladder.sigmas[2]), run.normaliser, padded_extent(points), 6)
    np.testing.assert_allclose(view.quiver.vectors, field.vectors.reshape(-1, 2), rtol=1e-4, atol=1e-6)

    with qtbot.waitSignal(view.probe_job.done, timeout=30_000):
        clicked = click_plot(view, qtbot, points[7])
    probe = view.model.probes[0]
    traj = probe.trajectory
    K = 20  # annealed Langevin steps per level; the probe is seen as it enters each level, then at the end
    assert traj.name == "langevin" and traj.frames.shape == (L + 1, 1, 2)
    assert np.isnan(traj.frames[:2]).all() and np.isfinite(traj.frames[2:]).all()
    np.testing.assert_allclose(traj.frames[2, 0], clicked, atol=1e-5)
    alone = probe_trajectory(
        model, SampleRequest("langevin", {"steps_per_level": K}), clicked[None], start=2 * K, seed=1
    )
    at_levels = np.append(np.arange(L) * K, alone.steps)
    np.testing.assert_allclose(traj.frames, alone.frames[at_levels], rtol=1e-5, atol=1e-5, equal_nan=True)
    np.testing.assert_allclose(xy(view.probe_layer.marker), traj.frames[2], atol=1e-12)
    np.testing.assert_allclose(view.probe_layer.arrows.vectors, probe.scores[2], atol=1e-12)
    view.timeline.slider.setValue(L - 1)
    np.testing.assert_allclose(xy(view.probe_layer.marker), traj.frames[L - 1], atol=1e-12)


def test_a_probe_of_the_old_model_is_not_added_after_a_recompute(window, qtbot, runs):
    window.data_panel.n.setValue(3000)  # a slow probe: 1000 DDPM steps of the exact denoiser of 3,000 points
    view = window.reverse_view
    window.tabs.setCurrentWidget(view)
    qtbot.waitExposed(view)
    view.model_choice.setCurrentText("exact")
    choose_sampler(view, "ddpm")
    view.points.setValue(10)
    compute(view, qtbot)
    assert view.timeline.frame == 1000  # the samples
    view.timeline.slider.setValue(0)
    click_plot(view, qtbot, window.state.data.points[0])
    assert view.probe_job.busy
    choose_sampler(view, "ddim")  # the recompute is one DDIM step: done long before the probe
    setting(view, "steps").setValue(1)
    with qtbot.waitSignal(view.computed, timeout=30_000):
        window.state.add_preview(100, np.zeros((10, 2)), load_run(runs["ddpm"]))
    assert view.model.trajectory.steps == 1 and view.model.probes == ()
    qtbot.waitUntil(lambda: not view.probe_job.busy, timeout=30_000)
    qtbot.wait(20)
    # the probe was placed on the old trajectory with the old model: it does not belong to this one
    assert view.model.probes == ()


# --- 6: recomputing when the model changes --------------------------------------------------------------------------


def test_new_snapshot_recomputes_a_visible_view_and_marks_a_hidden_one_stale(window, qtbot, runs):
    view = window.reverse_view
    window.tabs.setCurrentWidget(view)
    setting(view, "steps").setValue(5)
    view.points.setValue(20)
    compute(view, qtbot)
    first = view.model.trajectory
    assert view.result.model.exact  # no run yet: the exact model
    run = load_run(runs["ddpm"])
    samples = np.zeros((10, 2))
    with qtbot.waitSignal(view.computed, timeout=30_000):
        window.state.add_preview(100, samples, run)
    second = view.model.trajectory
    assert second is not first and not view.stale
    assert view.result.model.model.net is run.ema  # seen as ε (the default predicts v)
    alone = sample_request(SamplingModel.of_run(run), SampleRequest("ddim", {"steps": 5}, n=20))
    np.testing.assert_allclose(second.frames, alone.frames, rtol=1e-5, atol=1e-5)
    assert not np.allclose(second.frames[-1], first.frames[-1], atol=1e-3)

    window.tabs.setCurrentWidget(window.forward_view)
    window.state.add_preview(200, samples, load_run(runs["ddpm"]))
    assert view.stale and not view.job.busy and view.model.trajectory is second
    assert "stale" in view.timeline.label.text()
    with qtbot.waitSignal(view.computed, timeout=30_000):
        window.tabs.setCurrentWidget(view)
    assert view.model.trajectory is not second and not view.stale
    np.testing.assert_allclose(view.model.trajectory.frames, alone.frames, rtol=1e-5, atol=1e-5)


# --- 7: exports -----------------------------------------------------------------------------------------------------


def gif_frame_count(path) -> int:
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        return gif.n_frames


def mp4_frame_count(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_reverse_view_exports_every_format(window, qtbot, tmp_path):
    view = window.reverse_view
    window.tabs.setCurrentWidget(view)
    qtbot.waitExposed(view)
    setting(view, "steps").setValue(20)
    setting(view, "eta").setValue(1.0)
    view.points.setValue(50)
    compute(view, qtbot)
    traj = view.model.trajectory
    assert traj.frames.shape == (21, 50, 2)
    view.timeline.slider.setValue(7)

    # every frame's caption differs ("frame k/20 · t = …"), so Pillow has no identical frames to merge
    assert view.export(tmp_path / "x.gif")
    assert gif_frame_count(tmp_path / "x.gif") == 21
    assert window.statusBar().currentMessage() == f"exported 21 frames to {tmp_path / 'x.gif'}"
    assert view.timeline.frame == view.model.frame == 7
    np.testing.assert_array_equal(xy(view.scatter), traj.frames[7])  # the export left the frame as it was

    assert view.export(tmp_path / "x.mp4")
    assert mp4_frame_count(tmp_path / "x.mp4") == 21

    assert view.export(tmp_path / "x.csv")
    np.testing.assert_allclose(load_points(tmp_path / "x.csv").points, traj.frames[7], rtol=1e-7, atol=1e-7)

    assert view.export(tmp_path / "x.npy")
    frames = np.load(tmp_path / "x.npy")
    assert frames.shape == (21, 50, 2)
    np.testing.assert_array_equal(frames, traj.frames)

    assert view.export(tmp_path / "x.png")
    with Image.open(tmp_path / "x.png") as png:
        assert png.format == "PNG"
        assert png.size == (view.plot.width(), view.plot.height())
    assert view.export(tmp_path / "x.svg")
    assert ET.parse(tmp_path / "x.svg").getroot().tag == "{http://www.w3.org/2000/svg}svg"

    assert not view.export(tmp_path / "x.jpg")
    assert ".jpg" in window.statusBar().currentMessage()
    assert not (tmp_path / "x.jpg").exists()


def test_forward_and_training_views_export_at_most_300_frames(window, qtbot, tmp_path):
    window.resize(800, 560)  # smaller frames: 300 of them are grabbed and encoded
    forward = window.forward_view
    window.tabs.setCurrentWidget(forward)
    qtbot.waitExposed(forward)
    assert forward.frame_count() == 1001
    assert forward.export(tmp_path / "f.gif")
    assert gif_frame_count(tmp_path / "f.gif") == 300

    training = window.training_view
    window.tabs.setCurrentWidget(training)
    assert training.frame_count() == 0
    rng = np.random.default_rng(0)
    for step in (100, 200, 300, 400, 500):
        window.state.add_preview(step, rng.normal(size=(40, 2)))
    assert training.frame_count() == 5
    assert training.export(tmp_path / "t.gif")
    assert gif_frame_count(tmp_path / "t.gif") == 5
    assert training.export(tmp_path / "t.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "t.npy"), np.stack([s for _, s in window.state.previews]))


def test_file_menu_export_action(window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    actions = {a.text(): a for a in window.menuBar().actions()}
    file_menu = actions["&File"].menu()
    export = next(a for a in file_menu.actions() if a.text() == "&Export view…")
    assert export.shortcut().toString() == "Ctrl+E"
    # with nothing to export, triggering it says so and opens no dialog
    window.tabs.setCurrentWidget(window.score_view)
    export.trigger()
    assert window.statusBar().currentMessage() == "Nothing to export yet."
    # otherwise it exports the current tab to the file the dialog names
    chosen = tmp_path / "data.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *args, **kwargs: (str(chosen), "")))
    window.tabs.setCurrentWidget(window.data_view)
    export.trigger()
    assert chosen.exists() and f"exported 1 frame to {chosen}" in window.statusBar().currentMessage()


# --- 8: closing mid-computation -------------------------------------------------------------------------------------


def test_closing_while_computing_score_fields_cancels_at_once(window, close_at_once):
    view = window.score_view
    window.data_panel.n.setValue(2000)
    view.resolution.setValue(64)  # 1000 levels of 64² arrows over 2,000 points: many seconds of work
    view.levels.setValue(1000)
    assert view.compute()
    worker = view.job.worker
    assert worker is not None and worker.isRunning()
    close_at_once(window, worker)
    assert not view.job.busy and view.result is None


def test_the_data_view_exports_its_points_and_picture(window, tmp_path):
    from diffvis.core.pointfiles import load_points

    view = window.data_view
    window.tabs.setCurrentWidget(view)
    assert view.export(tmp_path / "data.csv") and view.export(tmp_path / "data.png")
    np.testing.assert_allclose(load_points(tmp_path / "data.csv").points, window.state.data.points, rtol=1e-8)
    assert (tmp_path / "data.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert view.export(tmp_path / "data.npy")
    assert np.load(tmp_path / "data.npy").shape == (1, len(window.state.data), 2)
