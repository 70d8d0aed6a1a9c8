"""The forward-process view: the slider shows exactly the core's x_t, the schedule cursor follows, play runs."""

import numpy as np
import pytest
from PySide6.QtCore import Qt

from diffvis.core.datasets import Normaliser
from diffvis.core.forward import q_sample


@pytest.fixture
def window(make_window):
    win = make_window()
    win.data_panel.n.setValue(1500)
    win.tabs.setCurrentWidget(win.forward_view)
    return win


def test_slider_shows_the_cores_noised_points(window):
    view, state = window.forward_view, window.state
    noising = view.model.result
    x0 = Normaliser.fit(state.data.points).to_std(state.data.points)
    np.testing.assert_allclose(noising.x0, x0)
    assert view.timeline.frame == view.model.frame == 0  # it opens on the clean data
    np.testing.assert_allclose(np.column_stack(view.scatter.getData()), x0, atol=1e-12)
    view.timeline.slider.setValue(300)
    assert view.model.frame == 300
    abar = noising.schedule.alphas_cumprod[299]
    np.testing.assert_allclose(np.column_stack(view.scatter.getData()), q_sample(x0, abar, noising.eps), atol=1e-12)
    assert all(cursor.value() == 300 for cursor in view.cursors)
    assert "t = 300 / 1000" in view.timeline.label.text()
    view.timeline.slider.setValue(1000)
    final = np.column_stack(view.scatter.getData())
    assert abs(final.mean()) < 0.1 and final.std() == pytest.approx(1.0, rel=0.05)  # N(0, I) at t = T


def test_schedule_change_redraws_and_arrow_keys_step(window, qtbot):
    view = window.forward_view
    window.model_panel.schedule.setCurrentText("cosine")
    window.model_panel.timesteps.setValue(200)
    schedule = view.model.result.schedule
    assert schedule.kind == "cosine" and schedule.T == 200
    assert view.timeline.slider.maximum() == 200 and view.model.count == 201
    np.testing.assert_allclose(view.curves["abar"].getData()[1], schedule.alphas_cumprod)
    view.timeline.slider.setValue(50)
    view.points_plot.setFocus()
    qtbot.keyClick(view.points_plot, Qt.Key.Key_Right)
    assert view.timeline.frame == 51
    qtbot.keyClick(view.points_plot, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: view.timeline.frame > 60, timeout=3000)
    assert view.warning.text() == ""
