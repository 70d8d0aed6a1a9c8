"""The flow-matching controls of the panels, driven through the real widgets: the model panel's source and
coupling, and the training panel's Reflow button."""

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from diffvis.app.panels.model_panel import ModelPanel
from diffvis.app.settings import runs_dir
from diffvis.app.state import LabState
from diffvis.core.checkpoint import load_run
from diffvis.core.coupling import COUPLINGS
from diffvis.core.flow import SOURCES
from diffvis.core.models import ModelConfig
from diffvis.core.pipeline import train_run
from diffvis.core.registry import OBJECTIVES
from diffvis.core.sources import load_source
from diffvis.core.training import TrainConfig

FLOW = next(name for name, info in OBJECTIVES.items() if info.transports)
DIFFUSION = next(name for name, info in OBJECTIVES.items() if not info.transports)


def _panel(qtbot) -> ModelPanel:
    panel = ModelPanel(LabState())
    qtbot.addWidget(panel)
    return panel


def test_source_and_coupling_are_written_for_a_flow_objective_and_restored(qtbot):
    panel = _panel(qtbot)
    panel.objective.setCurrentIndex(panel.objective.findData(FLOW))
    assert panel.source.isEnabled() and panel.coupling.isEnabled()
    panel.source.setCurrentIndex(panel.source.findData(SOURCES[-1]))
    panel.coupling.setCurrentText(COUPLINGS[-1])
    cfg = panel.state.train_config
    assert (cfg.source, cfg.coupling) == (SOURCES[-1], COUPLINGS[-1])
    panel.state.set_train_config(TrainConfig(source=SOURCES[1], coupling=COUPLINGS[0]))  # a run opened: shown
    assert panel.source.currentData() == SOURCES[1] and panel.coupling.currentText() == COUPLINGS[0]
    assert panel.state.train_config.source == SOURCES[1]


def test_source_and_coupling_are_disabled_and_left_at_their_defaults_for_diffusion(qtbot):
    panel = _panel(qtbot)
    panel.objective.setCurrentIndex(panel.objective.findData(FLOW))
    panel.coupling.setCurrentText(COUPLINGS[-1])
    panel.objective.setCurrentIndex(panel.objective.findData(DIFFUSION))
    assert not panel.source.isEnabled() and not panel.coupling.isEnabled()
    defaults = TrainConfig()
    assert (panel.state.train_config.source, panel.state.train_config.coupling) == (defaults.source, defaults.coupling)


# --- the Reflow button ---------------------------------------------------------------------------------------------


def _tiny_run(objective: str):
    data, info = load_source("moons", n=200)
    cfg = TrainConfig(steps=20, batch=64, conditional=False)
    return data, train_run(data, ModelConfig(objective=objective, width=8, depth=1), cfg, info)


@pytest.fixture
def flow_window(make_window):
    win = make_window()
    data, run = _tiny_run(FLOW)
    win.state.set_data(data, run.data_info)
    win.state.set_run(run)
    return win


def test_the_reflow_button_trains_the_next_rectified_flow_and_keeps_the_base_run_saved(flow_window, qtbot):
    win, base = flow_window, flow_window.state.run
    win.controller.reflow_pairs = 32
    assert win.training_panel.reflow_button.isEnabled()
    with qtbot.waitSignal(win.controller.ended, timeout=60_000) as ended:
        qtbot.mouseClick(win.training_panel.reflow_button, Qt.MouseButton.LeftButton)
    assert ended.args == ["done"]
    new = win.state.run
    assert new is not base and new.data_info["reflow"] == {"k": 1, "pairs": 32}
    assert new.step == base.train_config.steps and win.state.status == "idle"
    assert [p.step for p in win.state.progress_history][-1] == base.train_config.steps
    saved = [Path(p) for p in win.settings.recent_runs()]
    assert len(saved) == 1 and saved[0].parent == runs_dir()
    assert load_run(saved[0]).data_info.get("reflow") is None  # the base run, as it was
    assert win.training_panel.reflow_button.isEnabled()  # a reflowed run reflows again


def test_stop_while_the_pairs_are_drawn_cancels_and_keeps_the_base_run(flow_window, qtbot):
    win, base = flow_window, flow_window.state.run
    win.controller.reflow_pairs = 200_000
    qtbot.mouseClick(win.training_panel.reflow_button, Qt.MouseButton.LeftButton)
    worker = win.controller.worker
    assert win.state.status == "training" and not win.training_panel.reflow_button.isEnabled()
    qtbot.waitUntil(lambda: worker.stage == "preparing", timeout=10_000)
    with qtbot.waitSignal(win.controller.ended, timeout=30_000) as ended:
        qtbot.mouseClick(win.training_panel.stop_button, Qt.MouseButton.LeftButton)
    assert ended.args == ["stopped"]
    assert worker.wait(10_000) and worker.isFinished() and worker._training is None
    assert win.state.status == "idle" and win.state.run is base
    assert "stopped" in win.statusBar().currentMessage()


def test_the_reflow_button_is_disabled_for_a_diffusion_run(make_window):
    win = make_window()
    data, run = _tiny_run(DIFFUSION)
    win.state.set_data(data, run.data_info)
    win.state.set_run(run)
    assert not win.training_panel.reflow_button.isEnabled()
    assert not win.start_reflow()


def test_closing_the_window_while_the_pairs_are_drawn_stops_the_reflow(flow_window, qtbot, close_at_once):
    flow_window.controller.reflow_pairs = 200_000
    qtbot.mouseClick(flow_window.training_panel.reflow_button, Qt.MouseButton.LeftButton)
    worker = flow_window.controller.worker
    qtbot.waitUntil(lambda: worker.stage == "preparing", timeout=10_000)
    close_at_once(flow_window, worker)
    assert flow_window.controller.worker is None
