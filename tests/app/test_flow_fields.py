"""The field view of a flow run: its learned velocity against the exact one, and the caption saying when the
exact field is not what the run learns (another coupling or source)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from diffvis.core.checkpoint import save_run
from diffvis.core.models import ModelConfig
from diffvis.core.pipeline import train_run
from diffvis.core.sources import load_source
from diffvis.core.training import TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def flow_runs(tmp_path_factory, one_torch_thread) -> dict:
    """Tiny flow runs on 200 moons, saved: {'independent': dir, 'ot': dir}."""
    data, info = load_source("moons", n=200)
    folder, out = tmp_path_factory.mktemp("flows"), {}
    for coupling in ("independent", "ot"):
        cfg = TrainConfig(steps=10, batch=64, coupling=coupling, ot_batch=32, ot_reuse=2, warmup=0)
        save_run(train_run(data, ModelConfig(objective="flow", width=16, depth=1), cfg, info), folder / coupling)
        out[coupling] = folder / coupling
    return out


@pytest.mark.parametrize(("coupling", "note"), [("independent", None), ("ot", "this run by ot")])
def test_the_velocity_field_says_when_the_exact_field_is_not_the_runs_target(make_window, qtbot, flow_runs,
                                                                             coupling, note):  # fmt: skip
    window = make_window()
    assert window.open_run(flow_runs[coupling])
    view = window.score_view
    window.tabs.setCurrentWidget(view)
    view.resolution.setValue(6)
    if view.job.busy:
        qtbot.mouseClick(view.compute_button, Qt.MouseButton.LeftButton)  # cancel the first show's, as a user would
    with qtbot.waitSignal(view.computed, timeout=60_000):
        qtbot.mouseClick(view.compute_button, Qt.MouseButton.LeftButton)
    view.timeline.slider.setValue(3)
    text = view.timeline.label.text()
    assert "median error vs exact" in text and view.plot.getPlotItem().titleLabel.text.startswith("Velocity field")
    if note is None:
        assert "(the exact field" not in text
    else:
        assert f"(the exact field pairs independently, {note}: it learns another field)" in text
