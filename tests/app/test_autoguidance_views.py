"""Guidance choices in the app, driven as a user would: the reverse view's *Guide* combo (classifier-free, in an
interval, or autoguidance by the run's half-way snapshot) samples what the core samples for that request, and a
comparison panel's *Guide* combo writes its choice into the panel's request."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from diffvis.core.compare import GUIDES, STUDY_INTERVAL
from diffvis.core.models import ModelConfig
from diffvis.core.pipeline import make_trainer, request_model, sample_request
from diffvis.core.request import SNAPSHOT
from diffvis.core.run import Run
from diffvis.core.training import TrainConfig

LEFT = Qt.MouseButton.LeftButton
AUTO = next(i for i, (_, (_, weak)) in enumerate(GUIDES) if weak == SNAPSHOT)
INTERVAL = next(i for i, (_, (interval, _)) in enumerate(GUIDES) if interval == STUDY_INTERVAL)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def window(moons_window):
    """The window on 100 moons, with a tiny conditional run trained on them (it keeps its snapshots)."""
    win = moons_window
    trainer, norm = make_trainer(win.state.data, ModelConfig(width=16, depth=1), TrainConfig(steps=64, device="cpu"))
    trainer.run()
    win.state.set_run(Run.from_trainer(trainer, norm, dict(win.state.data_info)))
    return win


def sampled(view, qtbot):
    """Press the view's compute button and wait for the result."""
    if view.job.busy:
        qtbot.mouseClick(view.compute_button, LEFT)
    with qtbot.waitSignal(view.computed, timeout=30_000):
        qtbot.mouseClick(view.compute_button, LEFT)
    return view.result


def test_the_reverse_views_guide_combo_autoguides_with_the_half_way_snapshot(window, qtbot):
    view = window.reverse_view
    view.controls.combo.setCurrentIndex(view.controls.combo.findData("ddim"))
    view.controls.settings["ddim"].editors["steps"].setValue(6)
    view.points.setValue(80)
    window.tabs.setCurrentWidget(view)
    view.class_picker.setCurrentIndex(view.class_picker.findText("unconditional"))
    assert not view.guidance.isEnabled()  # no class and classifier-free: nothing to guide
    view.guide.setCurrentIndex(AUTO)
    assert view.guidance.isEnabled()  # autoguidance guides any model
    with qtbot.waitSignal(view.guidance.settled, timeout=5_000):
        view.guidance.slider.setValue(30)  # w = 3, as a drag that comes to rest
    result = sampled(view, qtbot)
    request = view.model.full_request()
    assert request.guide_with == SNAPSHOT and request.guidance == 3.0 and result.request == request
    model, label = request_model(request, window.state.model_run, window.state.data, window.state.run.schedule)
    assert "auto-guided by the half-way snapshot" in label
    np.testing.assert_allclose(result.trajectory.frames, sample_request(model, request).frames, atol=1e-5)

    view.class_picker.setCurrentIndex(view.class_picker.findText("lower"))
    view.guide.setCurrentIndex(INTERVAL)
    sampled(view, qtbot)
    request = view.model.full_request()
    assert request.label == 1 and request.interval == STUDY_INTERVAL and request.guide_with is None


def test_a_comparison_panels_guide_combo_sets_its_request(window, qtbot):
    view = window.compare_view
    window.tabs.setCurrentWidget(view)
    view.model.apply_preset("guidance-study")
    editors = view.editors[:4]
    assert [e.guide.currentIndex() for e in editors] == [0, 0, INTERVAL, AUTO]
    editors[1].guide.setCurrentIndex(AUTO)
    assert view.model.panels[1].guide == (None, SNAPSHOT)
    assert view.model.requests()[1].guide_with == SNAPSHOT and view.model.requests()[1].guidance == 3.0


def test_another_run_picked_in_the_app_guides_the_lab_run(window, qtbot, tmp_path, monkeypatch):
    """'autoguidance by another run…' asks for a run (the file dialog, here answered by a stand-in), adds it to
    the choices and samples with it; a cancelled dialog keeps the choice there was."""
    from diffvis.app.views import class_controls
    from diffvis.core.checkpoint import save_run

    weak, norm = make_trainer(window.state.data, ModelConfig(width=16, depth=1), TrainConfig(steps=16, device="cpu"))
    weak.run()
    folder = tmp_path / "weak"
    save_run(Run.from_trainer(weak, norm, dict(window.state.data_info)), folder)
    view = window.reverse_view
    view.controls.combo.setCurrentIndex(view.controls.combo.findData("ddim"))
    view.controls.settings["ddim"].editors["steps"].setValue(4)
    view.points.setValue(40)
    window.tabs.setCurrentWidget(view)
    other = view.guide.findText(class_controls.OTHER_RUN)
    view.guide.pick = lambda parent: None  # cancelled
    view.guide.setCurrentIndex(other)
    assert view.guide.currentIndex() == 0 and view.model.guide == (None, None)
    view.guide.pick = lambda parent: str(folder)
    view.guide.setCurrentIndex(other)
    assert view.guide.currentText() == "autoguidance by weak" and view.model.guide == (None, str(folder))
    result = sampled(view, qtbot)
    assert result.request.guide_with == str(folder) and not result.model.exact
    assert result.model.guide is not None
