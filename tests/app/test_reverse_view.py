"""The reverse-process view: a trajectory sampled in a worker, scrubbed frame by frame, x̂₀ overlay toggles."""

import numpy as np
import pytest
from PySide6.QtCore import Qt

from diffvis.app.models.reverse import FRESH_SEED
from diffvis.core.sources import fresh_sets


def choose_sampler(view, name: str) -> None:
    view.controls.combo.setCurrentIndex(view.controls.combo.findData(name))


def setting(view, name: str):
    """The editor of the chosen sampler's setting ``name``."""
    return view.controls.settings[view.controls.sampler].editors[name]


@pytest.fixture
def window(make_window):
    win = make_window()
    win.data_panel.source.setCurrentText("moons")
    win.data_panel.n.setValue(60)
    win.tabs.setCurrentWidget(win.reverse_view)
    return win


def test_exact_denoiser_trajectory_scrubs_and_lands_on_the_data(window, qtbot):
    view = window.reverse_view
    view.points.setValue(200)
    setting(view, "steps").setValue(40)
    assert view.model.request.n == 200 and view.model.request.params["steps"] == 40
    with qtbot.waitSignal(view.computed, timeout=30_000):
        assert view.compute()
    traj = view.model.trajectory
    assert traj.frames.shape == (41, 200, 2) and view.timeline.slider.maximum() == 40
    assert view.timeline.frame == view.model.frame == 40  # a first result opens on its samples
    np.testing.assert_array_equal(np.column_stack(view.scatter.getData()), traj.samples)
    view.timeline.slider.setValue(17)
    assert view.model.frame == 17
    np.testing.assert_array_equal(np.column_stack(view.scatter.getData()), traj.frames[17])
    assert len(view.x0_scatter.getData()[0]) == 0
    view.show_x0.setChecked(True)
    np.testing.assert_array_equal(np.column_stack(view.x0_scatter.getData()), traj.x0_hat[17])
    view.show_x0.setChecked(False)
    assert len(view.x0_scatter.getData()[0]) == 0
    view.plot.setFocus()
    qtbot.keyClick(view.plot, Qt.Key.Key_Right)
    assert view.timeline.frame == view.model.frame == 18
    # the exact denoiser memorises: the final samples sit on training points
    data = window.state.data.points
    gaps = np.linalg.norm(traj.samples[:, None] - data[None], axis=-1).min(1)
    assert gaps.max() < 0.05
    view.timeline.slider.setValue(40)
    on_points = (gaps <= 1e-3 * np.ptp(data, axis=0).max()).mean()
    assert on_points > 0.9
    # against what chance gives: fresh data of the same set, as near a training point
    chance = view.model.result.landed_by_chance
    fresh = fresh_sets(window.state.data_info, window.state.data, 200)(FRESH_SEED).points
    assert chance == np.mean(
        np.linalg.norm(fresh[:, None] - data[None], axis=-1).min(1) <= 1e-3 * np.ptp(data, axis=0).max()
    )
    assert chance < 0.5
    text = f"{100 * on_points:.0f} % of samples sit on a training point (fresh data: {100 * chance:.0f} %)"
    assert text in view.caption.text


def test_play_runs_through_every_frame_and_stops_on_the_last(window, qtbot):
    view = window.reverse_view
    view.points.setValue(50)
    setting(view, "steps").setValue(12)
    with qtbot.waitSignal(view.computed, timeout=30_000):
        view.compute()
    shown = []
    view.model.events.connect(lambda name, value: shown.append(value) if name == "frame" else None)
    qtbot.mouseClick(view.timeline.play_button, Qt.MouseButton.LeftButton)  # at the last frame: from the first
    assert view.timeline.playing
    qtbot.waitUntil(lambda: not view.timeline.playing, timeout=5000)
    assert shown == list(range(13))
    np.testing.assert_array_equal(np.column_stack(view.scatter.getData()), view.model.trajectory.frames[12])


def test_langevin_with_the_exact_score_recomputes_when_the_data_changes(window, qtbot):
    view = window.reverse_view
    choose_sampler(view, "langevin")
    setting(view, "steps_per_level").setValue(10)
    view.points.setValue(100)
    with qtbot.waitSignal(view.computed, timeout=30_000):
        view.compute()
    first = view.model.trajectory
    assert first.name == "langevin" and "σ =" in view.timeline.label.text()
    with qtbot.waitSignal(view.computed, timeout=30_000):  # visible: recomputed at once, in the background
        window.data_panel.n.setValue(80)
    assert view.model.trajectory is not first and not view.stale
    window.tabs.setCurrentWidget(window.forward_view)
    window.data_panel.n.setValue(70)  # hidden: only marked stale ...
    assert view.stale and "stale" in view.timeline.label.text() and not view.job.busy
    with qtbot.waitSignal(view.computed, timeout=30_000):  # ... and recomputed when shown
        window.tabs.setCurrentWidget(view)


def test_closing_while_sampling_cancels_at_once(window):
    view = window.reverse_view
    window.data_panel.n.setValue(2000)
    choose_sampler(view, "ddpm")  # 1000 exact-denoiser steps over 5,000 points: many seconds of work
    view.points.setValue(5000)
    assert view.compute()
    worker = view.job.worker
    window.close()
    assert worker.isFinished() and not view.job.busy  # cancelled and joined before close returned
    assert view.result is None  # the cancelled computation delivered nothing
