"""The model panel's flow-matching settings (source, coupling), driven through the real widgets."""

from diffvis.app.panels.model_panel import ModelPanel
from diffvis.app.state import LabState
from diffvis.core.coupling import COUPLINGS
from diffvis.core.flow import SOURCES
from diffvis.core.registry import OBJECTIVES
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
