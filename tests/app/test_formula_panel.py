"""The reverse view's formula panel: the equation of the step at the frame shown, for the pinned or hovered sample,
its result the next frame's point; *Copy as LaTeX* through the real action and its key sequence."""

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QGuiApplication

from diffvis.core.registry import SAMPLERS


@pytest.fixture
def window(moons_window):
    moons_window.tabs.setCurrentWidget(moons_window.reverse_view)
    return moons_window


def _sampled(view, qtbot, sampler, **settings):
    view.controls.combo.setCurrentIndex(view.controls.combo.findData(sampler))
    for name, value in settings.items():
        view.controls.settings[view.controls.sampler].editors[name].setValue(value)
    view.points.setValue(50)
    with qtbot.waitSignal(view.computed, timeout=60_000):
        assert view.compute()
    return view.model.trajectory


def _shown_result(view) -> np.ndarray:
    return view.formula.explanation.result_data


@pytest.mark.parametrize(("sampler", "settings"), [("ddim", {"steps": 10, "eta": 0.5}), ("heun", {"steps": 6})])
def test_the_panel_explains_the_frame_shown_and_its_result_is_the_next_frame(window, qtbot, sampler, settings):
    view = window.reverse_view
    traj = _sampled(view, qtbot, sampler, **settings)
    panel = view.formula_panel
    assert panel.isVisible() and panel.text.isVisible()
    view.timeline.slider.setValue(3)
    panel.point.setValue(7)
    assert view.formula.point == 7
    np.testing.assert_allclose(_shown_result(view), traj.frames[4, 7], rtol=1e-4, atol=1e-5)
    shown = panel.text.text()
    assert "frame 3 → 4, point 7" in shown and SAMPLERS[sampler].title in shown and "<sub>" in shown
    view.plot.setFocus()
    qtbot.keyClick(view.plot, Qt.Key.Key_Right)  # the next frame: the next step
    assert view.formula.explanation.frame == 4
    np.testing.assert_allclose(_shown_result(view), traj.frames[5, 7], rtol=1e-4, atol=1e-5)
    view.timeline.slider.setValue(traj.steps)  # the last frame explains the step that led to it
    assert view.formula.explanation.frame == traj.steps - 1
    np.testing.assert_allclose(_shown_result(view), traj.frames[-1, 7], rtol=1e-4, atol=1e-5)


def test_hovering_over_a_sample_explains_that_one(window, qtbot):
    view = window.reverse_view
    traj = _sampled(view, qtbot, "ddim", steps=8)
    view.timeline.slider.setValue(5)
    target = traj.frames[5, 12]
    scene_pos = view.plot.getPlotItem().vb.mapViewToScene(QPointF(*target))
    view._on_hover((scene_pos,))
    hovered = view.formula.hovered
    assert hovered is not None
    np.testing.assert_allclose(traj.frames[5, hovered], target, atol=0.05)  # it, or a sample drawn on top of it
    assert view.formula.explanation.point == hovered
    view._on_hover((QPointF(-10_000, -10_000),))  # off the plot: the pinned point again
    assert view.formula.hovered is None and view.formula.explanation.point == view.formula.point


def test_copy_as_latex_through_the_action_and_its_keys(window, qtbot):
    view = window.reverse_view
    _sampled(view, qtbot, "ddim", steps=5)
    panel = view.formula_panel
    clipboard = QGuiApplication.clipboard()
    clipboard.clear()
    panel.copy_action.trigger()
    copied = clipboard.text()
    assert copied.startswith("\\begin{align*}") and "\\hat\\epsilon" in copied and copied.endswith("\\end{align*}")
    clipboard.clear()
    panel.text.setFocus()
    qtbot.keyClick(panel.text, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert clipboard.text() == copied


def test_a_point_past_the_samples_says_why(window, qtbot):
    view = window.reverse_view
    _sampled(view, qtbot, "ddim", steps=5)
    view.formula_panel.point.setValue(50)  # 50 samples: 0 … 49
    assert view.formula.explanation is None and "point must be between 0 and 49" in view.formula_panel.text.text()


@pytest.mark.parametrize("view_name", ["langevin_view", "transport_view"])
def test_the_langevin_and_transport_views_explain_their_frames_too(window, qtbot, view_name):
    view = getattr(window, view_name)
    window.tabs.setCurrentWidget(view)
    if view.model.result is None or view.job.busy:
        with qtbot.waitSignal(view.computed, timeout=60_000):
            pass
    traj = view.model.result.trajectory
    view.timeline.slider.setValue(traj.steps // 2)
    view.formula_panel.point.setValue(4)
    e = view.formula.explanation
    assert e is not None and e.frame == traj.steps // 2 and e.point == 4
    np.testing.assert_allclose(e.result_data, traj.frames[traj.steps // 2 + 1, 4], rtol=1e-4, atol=1e-5)
    assert view.formula_panel.isVisible()


def test_the_forward_view_explains_x_t_of_the_frame_shown(window, qtbot):
    view = window.forward_view
    window.tabs.setCurrentWidget(view)
    noising = view.model.result
    view.timeline.slider.setValue(250)
    view.formula_panel.point.setValue(9)
    e = view.formula.explanation
    terms = {t.symbol: t.value for t in e.step.terms}
    assert (terms["t"], terms["ᾱ_t"]) == (250, noising.schedule.alphas_cumprod[249])
    np.testing.assert_allclose(e.step.result.value, view.frame_points(250)[9], rtol=1e-12)
    np.testing.assert_allclose(e.result_data, noising.normaliser.to_data(view.frame_points(250)[9][None])[0])
    assert "t = 250, point 9" in view.formula_panel.text.text() and view.formula_panel.isVisible()


@pytest.mark.parametrize("example_run", [None, "moons-flow-ot", "moons-ncsn"])
def test_the_score_view_explains_the_arrow_it_draws(window, qtbot, example_run):
    if example_run is not None:
        assert window.open_example(example_run)
    view = window.score_view
    view.resolution.setValue(6)
    view.levels.setValue(8)
    window.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.model.result is not None and not view.job.busy, timeout=60_000)
    view.timeline.slider.setValue(3)
    view.formula_panel.point.setValue(20)
    e = view.formula.explanation
    drawn = view.model.series.shown[3].reshape(-1, 2)[20]
    np.testing.assert_allclose(e.result_data, drawn, rtol=1e-4, atol=1e-6)
    assert e.where.startswith("grid point 20")


def test_the_score_view_explains_a_guided_field(window, qtbot):
    assert window.open_example("moons-ddpm")
    view = window.score_view
    view.resolution.setValue(6)
    view.levels.setValue(8)
    window.tabs.setCurrentWidget(view)
    view.model.update(label=0, field="guided", guidance=3.0)
    qtbot.waitUntil(lambda: view.model.result is not None and view.model.result.conditional is not None
                    and not view.job.busy, timeout=60_000)  # fmt: skip
    view.timeline.slider.setValue(5)
    view.formula_panel.point.setValue(7)
    drawn = view.model.series.shown[5].reshape(-1, 2)[7]
    np.testing.assert_allclose(view.formula.explanation.result_data, drawn, rtol=1e-4, atol=1e-6)


def test_the_compare_view_explains_the_panel_hovered(window, qtbot):
    view = window.compare_view
    view.model.apply_preset("eta")
    view.model.n = 200
    window.tabs.setCurrentWidget(view)
    with qtbot.waitSignal(view.computed, timeout=60_000):
        view.compute()
    view.timeline.slider.setValue(40)
    panel = view.panels[2]
    traj = panel.result.trajectory
    k = round(40 / 100 * (len(traj.frames) - 1))
    target = traj.frames[k, 11]
    box = panel.plot.getViewBox()
    view._on_hover(box.mapViewToScene(QPointF(*target)))
    e = view.formula.explanation
    assert view.model.formula_panel == 2 and e.point == view.highlight
    assert e.heading.startswith("panel 3 (") and e.frame == k
    np.testing.assert_allclose(e.result_data, traj.frames[k + 1, e.point], rtol=1e-4, atol=1e-5)
    assert view.model.result[2].label in e.heading and "η=0.6" in e.heading


def test_the_training_view_explains_one_examples_loss(window, qtbot):
    import torch

    assert window.open_example("moons-ddpm")
    view = window.training_view
    window.tabs.setCurrentWidget(view)
    view.formula_panel.point.setValue(5)
    e = view.formula.explanation
    terms = {t.symbol: t.value for t in e.step.terms}
    run, point = window.state.run, window.state.data.points[5]
    x0 = run.normaliser.to_std(point[None])[0]
    np.testing.assert_allclose(terms["x₀"], x0, rtol=1e-6)
    t, abar, eps = terms["t"], terms["ᾱ_t"], terms["ε"]
    assert abar == pytest.approx(run.schedule.alphas_cumprod[t], rel=1e-6)
    # by hand, for v-prediction: x_t = √ᾱ x₀ + √(1 − ᾱ) ε, v = √ᾱ ε − √(1 − ᾱ) x₀
    x_t = np.sqrt(abar) * x0 + np.sqrt(1 - abar) * eps
    v = np.sqrt(abar) * eps - np.sqrt(1 - abar) * x0
    label = torch.tensor([int(window.state.data.labels[5])])
    with torch.no_grad():
        out = run.ema(torch.tensor(x_t[None], dtype=torch.float32), torch.tensor([t]), label).numpy()[0]
    assert e.step.result.value == pytest.approx(np.mean((out - v) ** 2), rel=1e-4)
    mean = terms[next(s for s in terms if s.startswith("mean L"))]
    assert abs(mean - run.loss_history[-1]) < 0.2  # the objective over the data, near the training loss
    assert "training point 5" in view.formula_panel.text.text()
    # an opened run's loss per bucket: the same per-point losses, averaged by condition
    from diffvis.core.formulas import data_losses

    expected = data_losses(run, window.state.data.points, window.state.data.labels).per_bucket()
    np.testing.assert_allclose(view.bars.opts["height"], expected, rtol=1e-6)
    assert np.isfinite(expected).all() and (expected > 0).all()


def test_a_new_probe_is_explained_until_a_sample_is_picked(window, qtbot):
    view = window.reverse_view
    traj = _sampled(view, qtbot, "ddim", steps=10, eta=0.5)
    view.timeline.slider.setValue(3)
    with qtbot.waitSignal(view.probe_job.done, timeout=30_000):
        assert view.probe(traj.frames[3, 0] + 0.1)
    probe = view.model.probes[-1].trajectory
    e = view.formula.explanation
    assert e.heading.startswith("probe 1: frame 3 → 4") and e.point == 0
    np.testing.assert_allclose(e.result_data, probe.frames[4, 0], rtol=1e-4, atol=1e-5)
    assert "z" in {t.symbol for t in e.step.terms}  # its own noise, drawn again
    view.timeline.slider.setValue(6)
    np.testing.assert_allclose(view.formula.explanation.result_data, probe.frames[7, 0], rtol=1e-4, atol=1e-5)
    view.formula_panel.point.setValue(2)  # a sample picked: the samples again
    assert view.formula.explanation.point == 2 and not view.formula.explanation.heading
