"""The coupling view draws exactly the core's pairs, chosen through its real widgets; `diffvis render --view coupling`
writes that picture headless, at the size asked."""

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from diffvis.app.state import LabState
from diffvis.app.views.coupling_view import CouplingView
from diffvis.cli import main
from diffvis.core.checkpoint import save_run
from diffvis.core.coupling_lines import PICTURED, coupling_lines
from diffvis.core.models import ModelConfig
from diffvis.core.pipeline import train_run
from diffvis.core.registry import OBJECTIVES
from diffvis.core.run import SamplingModel
from diffvis.core.sources import load_source
from diffvis.core.training import TrainConfig

FLOW = next(name for name, info in OBJECTIVES.items() if info.transports)


@pytest.fixture(scope="module")
def tiny_flow():
    data, info = load_source("moons", n=300)
    cfg = TrainConfig(steps=30, batch=64, conditional=False)
    return data, train_run(data, ModelConfig(objective=FLOW, width=16, depth=1), cfg, info)


@pytest.mark.parametrize("kind", PICTURED)
def test_the_lines_and_points_drawn_are_the_cores_pairs(qtbot, tiny_flow, kind):
    data, run = tiny_flow
    state = LabState()
    state.set_data(data, run.data_info)
    state.set_run(run)
    view = CouplingView(state)
    qtbot.addWidget(view)
    view.n.setValue(40)
    view.seed.setValue(2)
    view.kind.setCurrentIndex(view.kind.findData(kind))
    assert (view.model.kind, view.model.n, view.model.seed) == (kind, 40, 2)
    with qtbot.waitSignal(view.computed, timeout=60_000):
        qtbot.mouseClick(view.compute_button, Qt.MouseButton.LeftButton)
    lines = coupling_lines(SamplingModel.of_run(run), data.points, kind, n=40, seed=2)
    x, y = view.lines.getData()
    drawn = np.stack([x, y], axis=1).reshape(40, 3, 2)
    np.testing.assert_allclose(drawn[:, 0], lines.source, atol=1e-6)
    np.testing.assert_allclose(drawn[:, 1], lines.partner, atol=1e-6)
    assert np.isnan(drawn[:, 2]).all()  # a break between pairs (connect="finite")
    np.testing.assert_allclose(np.stack(view.partners.getData(), axis=1), lines.partner, atol=1e-6)
    title = view.plot.getPlotItem().titleLabel.whole
    assert f"{lines.mean_squared_length:.3g}" in title
    view.shutdown()


def test_render_writes_the_coupling_picture_at_the_size_asked(tiny_flow, tmp_path, capsys, qapp):
    _, run = tiny_flow
    save_run(run, tmp_path / "run")
    out = tmp_path / "ot.png"
    argv = ["render", "--run", tmp_path / "run", "--view", "coupling", "--coupling", PICTURED[1], "--size",
            "480x360", "--out", out]  # fmt: skip
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape == (360, 480, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 20  # lines and points drawn, not an empty plot
