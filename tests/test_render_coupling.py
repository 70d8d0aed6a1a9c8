"""`diffvis render --view coupling`: the coupling picture of a flow run, headless, at the size asked."""

import numpy as np
import pytest
from PIL import Image

from diffvis.cli import main
from diffvis.core.checkpoint import save_run
from diffvis.core.coupling_lines import PICTURED
from diffvis.core.models import ModelConfig
from diffvis.core.pipeline import train_run
from diffvis.core.registry import OBJECTIVES
from diffvis.core.sources import load_source
from diffvis.core.training import TrainConfig

FLOW = next(name for name, info in OBJECTIVES.items() if info.transports)


@pytest.fixture(scope="module")
def tiny_flow():
    data, info = load_source("moons", n=300)
    cfg = TrainConfig(steps=30, batch=64, conditional=False)
    return data, train_run(data, ModelConfig(objective=FLOW, width=16, depth=1), cfg, info)


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
