"""The real main window, driven offscreen with pytest-qt: data, drawing, training, runs, bad files, closing."""

import threading

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from diffvis.app.main_window import MainWindow
from diffvis.app.settings import Settings
from diffvis.core.checkpoint import load_run

TINY = {"steps": 400, "batch": 128}


@pytest.fixture
def window(make_window):
    win = make_window()
    win.model_panel.width.setValue(16)
    win.data_panel.n.setValue(2000)
    return win


def _train(window, qtbot, **cfg):
    window.state.update_train_config(**{**TINY, **cfg})
    assert window.start_training()
    qtbot.waitUntil(lambda: len(window.state.progress_history) > 0, timeout=10_000)


def test_picking_a_data_set_previews_it(window):
    panel, state = window.data_panel, window.state
    panel.source.setCurrentText("moons")
    assert state.data.name == "moons" and len(state.data) == 2000
    assert set(np.unique(state.data.labels)) == {0, 1}
    panel.n.setValue(500)
    assert len(state.data) == 500
    np.testing.assert_array_equal(window.data_view.scatter.getData()[0], state.data.points[:, 0])
    assert "500 points" in panel.summary.text() and "2 classes" in panel.summary.text()


def _mouse(widget, kind, pos, buttons):
    event = QMouseEvent(kind, QPointF(pos), widget.mapToGlobal(QPointF(pos)), Qt.MouseButton.LeftButton,
                        buttons, Qt.KeyboardModifier.NoModifier)  # fmt: skip
    QApplication.sendEvent(widget, event)


def test_drawing_points_with_the_mouse(window, qtbot):
    window.tabs.setCurrentWidget(window.data_view)
    window.data_panel.draw.setChecked(True)
    window.data_panel.clear_button.click()
    assert len(window.state.data) == 0
    viewport = window.data_view.viewport()
    centre = viewport.rect().center()
    left = Qt.MouseButton.LeftButton
    _mouse(viewport, QEvent.Type.MouseButtonPress, centre, left)
    for dx in range(0, 120, 10):
        qtbot.wait(15)  # pyqtgraph drops mouse moves closer than 10 ms apart (mouseRateLimit)
        _mouse(viewport, QEvent.Type.MouseMove, centre + type(centre)(dx, dx // 2), left)
    _mouse(viewport, QEvent.Type.MouseButtonRelease, centre + type(centre)(120, 60), Qt.MouseButton.NoButton)
    drawn = window.state.data
    assert drawn.name == "drawn" and len(drawn) >= 20
    assert window.state.data_info["source"] == "drawn"
    # the stroke runs right and down on screen: x grows, y falls (the view's y axis points up)
    assert np.corrcoef(drawn.points[:, 0], drawn.points[:, 1])[0, 1] < -0.5
    # erase where the stroke began: fewer points remain
    window.data_panel.erase.setChecked(True)
    window.data_panel.brush_radius.setValue(1.0)
    before = len(window.state.data)
    _mouse(viewport, QEvent.Type.MouseButtonPress, centre, left)
    _mouse(viewport, QEvent.Type.MouseButtonRelease, centre, Qt.MouseButton.NoButton)
    assert len(window.state.data) < before


def test_train_pause_resume_stop(window, qtbot):
    _train(window, qtbot, steps=10**6)
    state, panel = window.state, window.training_panel
    assert state.status == "training" and not panel.train_button.isEnabled()
    panel.pause_button.click()
    assert state.status == "paused" and panel.pause_button.text() == "Resume"
    qtbot.wait(300)
    frozen = window.controller.worker._trainer.step
    qtbot.wait(300)
    assert window.controller.worker._trainer.step == frozen
    panel.pause_button.click()
    assert state.status == "training"
    qtbot.waitUntil(lambda: window.controller.worker._trainer.step > frozen, timeout=5000)
    with qtbot.waitSignal(window.controller.ended, timeout=2000) as ended:
        panel.stop_button.click()
    assert ended.args == ["stopped"]
    assert state.status == "idle" and state.run is not None and state.run.step > frozen
    assert panel.train_button.isEnabled()


def test_training_reports_progress_and_preview_then_save_and_reopen(window, qtbot, tmp_path):
    window.state.update_train_config(**TINY)
    with qtbot.waitSignal(window.controller.ended, timeout=30_000) as ended:
        window.controller.start(preview_every=200)
    assert ended.args == ["done"]
    state = window.state
    assert [p.step for p in state.progress_history][-1] == 400
    assert state.preview is not None and state.preview.shape == (1000, 2)
    # redraws are coalesced, but the last report is always drawn
    qtbot.waitUntil(lambda: len(window.training_view.raw_curve.getData()[0]) == len(state.progress_history))
    drawn = 10 ** window.training_view.raw_curve.getData()[1]  # the loss axis is logarithmic
    np.testing.assert_allclose(drawn, [p.loss for p in state.progress_history], rtol=1e-6)
    assert window.save_run(tmp_path / "myrun")
    saved = load_run(tmp_path / "myrun")
    assert saved.step == 400
    window.data_panel.source.setCurrentText("spirals")
    window.model_panel.width.setValue(40)
    assert state.run is None
    assert window.open_run(tmp_path / "myrun")
    assert state.run.step == 400 and state.data.name == "butterfly" and len(state.data) == 2000
    # the panels show the opened run's data set and settings
    assert window.data_panel.source.currentText() == "butterfly" and window.data_panel.n.value() == 2000
    assert window.model_panel.width.value() == 16 and window.model_panel.steps.value() == 400
    assert window.training_panel.bar.value() == 400 and "trained 400 steps" in window.training_panel.rate.text()
    assert str((tmp_path / "myrun").resolve()) in window.settings.recent_runs()


def test_bad_files_leave_the_state_untouched(window, tmp_path):
    state = window.state
    before = state.data.points.copy()
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("x,y\n1,2\nhello,world\n")
    assert not window.data_panel.load_file(bad_csv)
    nan_csv = tmp_path / "nan.csv"
    nan_csv.write_text("x,y\n1,2\n3,nan\n")
    assert not window.data_panel.load_file(nan_csv)  # as the README promises: a dialog names the line
    shown = [box for box in window.findChildren(QMessageBox) if box.isVisible()]
    assert shown and "nan.csv: point 2 has a NaN" in shown[-1].text()
    corrupt = tmp_path / "run"
    corrupt.mkdir()
    (corrupt / "run.json").write_text("{not json")
    assert not window.open_run(corrupt)
    dialogs = [box for box in window.findChildren(QMessageBox) if box.isVisible()]
    assert dialogs and "not a diffvis run" in dialogs[-1].text()
    assert not window.open_run(tmp_path / "missing")
    np.testing.assert_array_equal(state.data.points, before)
    assert state.run is None
    assert "not" in window.statusBar().currentMessage()


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_weights(window, qtbot, monkeypatch):
    from diffvis.core import training

    real = training.Trainer.per_sample_loss

    def poisoned(self, *batch):
        losses = real(self, *batch)
        return losses * float("nan") if self.step == 120 else losses

    monkeypatch.setattr(training.Trainer, "per_sample_loss", poisoned)
    window.state.update_train_config(**TINY)
    with qtbot.waitSignal(window.controller.ended, timeout=30_000) as ended:
        window.start_training()
    assert ended.args == ["diverged"]
    assert window.state.run is not None and window.state.run.step == 120
    assert all(np.isfinite(p.detach().numpy()).all() for p in window.state.run.ema.parameters())
    assert "nan" in window.statusBar().currentMessage().lower()


def test_too_few_points_cannot_start_training(window):
    window.data_panel.draw.setChecked(True)
    window.data_panel.clear_button.click()
    assert not window.training_panel.train_button.isEnabled()
    assert not window.start_training()


def test_closing_mid_run_stops_the_worker(window, qtbot):
    _train(window, qtbot, steps=10**6)
    worker = window.controller.worker
    window.close()
    assert worker.wait(1000) and not worker.isRunning()
    assert window.controller.worker is None


def test_start_stop_close_50_times_leaves_no_thread(qtbot, tmp_path):
    """Each cycle builds a whole window (about 1 s on 2 cores): 50 cycles, half stopped before closing, catch a
    thread left by any cycle as surely as 100 did, in half the suite's time (92 s with 100)."""
    threads_before = threading.active_count()
    for i in range(50):
        win = MainWindow(Settings(tmp_path / "s.json"))
        qtbot.addWidget(win)
        win.data_panel.n.setValue(200)
        win.model_panel.width.setValue(8)
        win.state.update_train_config(steps=10**6, batch=32)
        assert win.start_training()
        if i % 2:
            win.controller.stop()
        win.close()
        assert win.controller.worker is None
        QApplication.processEvents()  # its pending events (the hidden tab's first paint, the worker's last reports)
        win.deleteLater()  # and the closed window deleted before the next: 50 of them deleted at once at teardown
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)  # took 50 s (Qt's cost grows with their count)
    QApplication.processEvents()
    assert threading.active_count() <= threads_before + 1


def test_last_data_set_settings_and_layout_return_at_the_next_launch(qtbot, tmp_path):
    settings_file = tmp_path / "settings.json"
    first = MainWindow(Settings(settings_file))
    qtbot.addWidget(first)
    first.data_panel.source.setCurrentText("rings")
    first.data_panel.n.setValue(1234)
    first.data_panel.seed.setValue(7)
    first.model_panel.width.setValue(48)
    first.model_panel.schedule.setCurrentText("cosine")
    first.tabs.setCurrentIndex(1)
    first.show()
    first.resize(790, 560)  # within the offscreen platform's 800 × 600 screen, which restoreGeometry respects
    first.close()
    second = MainWindow(Settings(settings_file))
    qtbot.addWidget(second)
    assert second.state.data.name == "rings" and len(second.state.data) == 1234
    assert second.state.data_info["seed"] == 7
    assert second.state.model_config.width == 48 and second.state.train_config.schedule == "cosine"
    assert second.model_panel.width.value() == 48
    assert second.tabs.currentIndex() == 1
    assert (second.width(), second.height()) == (790, 560)


def test_plots_follow_a_dark_palette(qtbot):
    import pyqtgraph as pg
    from PySide6.QtGui import QColor, QPalette

    from diffvis.app.main import configure_pyqtgraph

    app = QApplication.instance()
    old = app.palette()
    dark = QPalette()
    dark.setColor(QPalette.ColorRole.Window, QColor(30, 30, 30))
    dark.setColor(QPalette.ColorRole.WindowText, QColor(230, 230, 230))
    dark.setColor(QPalette.ColorRole.Text, QColor(230, 230, 230))
    try:
        app.setPalette(dark)
        configure_pyqtgraph(app)
        assert pg.mkColor(pg.getConfigOption("background")).lightness() < 60
        assert pg.mkColor(pg.getConfigOption("foreground")).lightness() > 180
    finally:
        app.setPalette(old)
        configure_pyqtgraph(app)


def test_timeline_scrubs_and_plays_the_preview_snapshots(window, qtbot):
    window.state.update_train_config(**TINY)
    with qtbot.waitSignal(window.controller.ended, timeout=30_000):
        window.controller.start(preview_every=100)
    view, state = window.training_view, window.state
    assert [step for step, _ in state.previews] == [100, 200, 300, 400]
    assert view.timeline.frame == 3  # it followed the newest snapshot
    window.tabs.setCurrentWidget(view)
    view.plots.setFocus()
    qtbot.keyClick(view.plots, Qt.Key.Key_Left)
    qtbot.keyClick(view.plots, Qt.Key.Key_Left)
    assert view.timeline.frame == 1
    x, y = view.sample_scatter.getData()
    np.testing.assert_array_equal(np.column_stack([x, y]), state.previews[1][1])
    assert "step 200" in view.timeline.label.text()
    qtbot.keyClick(view.plots, Qt.Key.Key_Space)
    assert view.timeline.playing
    qtbot.waitUntil(lambda: not view.timeline.playing, timeout=3000)  # played to the end and stopped
    assert view.timeline.frame == 3
