"""An EDM run in the app: the reverse view follows the run's kind (its EDM sampler, not DDIM on the exact model),
samples the trained network over noise levels, and the model panel offers the prediction only for DDPM."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from diffvis.core.models import ModelConfig
from diffvis.core.pipeline import make_trainer
from diffvis.core.registry import OBJECTIVES
from diffvis.core.run import Run
from diffvis.core.training import TrainConfig

LEFT = Qt.MouseButton.LeftButton

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def window(moons_window):
    return moons_window


def tiny_run(window, objective: str) -> Run:
    config = ModelConfig(objective=objective, width=16, depth=1)
    trainer, norm = make_trainer(window.state.data, config, TrainConfig(steps=32, device="cpu"))
    trainer.run()
    return Run.from_trainer(trainer, norm, dict(window.state.data_info))


def test_the_reverse_view_follows_an_edm_run_and_samples_its_network(window, qtbot):
    view = window.reverse_view
    assert view.controls.sampler == "ddim"
    view.points.setValue(50)
    with qtbot.waitSignal(view.computed, timeout=30_000):
        window.tabs.setCurrentWidget(view)  # shown: DDIM on the exact model (no run yet)
    assert view.result.model.exact
    run = tiny_run(window, "edm")
    with qtbot.waitSignal(view.computed, timeout=30_000):  # visible: recomputed with the run's own sampler
        window.state.set_run(run)
    assert view.result.trajectory.levels == "sigma" and not view.result.model.exact
    edm = OBJECTIVES["edm"]
    assert view.controls.sampler == edm.preview_sampler == view.model.request.sampler
    view.points.setValue(50)
    window.tabs.setCurrentWidget(view)
    if view.job.busy:
        qtbot.mouseClick(view.compute_button, LEFT)
    with qtbot.waitSignal(view.computed, timeout=30_000):
        qtbot.mouseClick(view.compute_button, LEFT)
    result = view.result
    assert not result.model.exact and result.trajectory.levels == "sigma" and result.trajectory.times[-1] == 0
    assert result.trajectory.nfe == 2 * view.model.request.params["steps"] - 1
    # back to a DDPM run: DDIM again, on the network
    window.state.set_run(tiny_run(window, "ddpm"))
    assert view.controls.sampler == OBJECTIVES["ddpm"].preview_sampler


def test_the_model_panel_offers_the_prediction_for_ddpm_only(window):
    panel = window.model_panel
    assert panel.prediction.isEnabled() and panel.prediction.currentData() == "v"
    panel.prediction.setCurrentIndex(panel.prediction.findData("eps"))
    assert window.state.model_config.prediction == "eps"
    panel.objective.setCurrentIndex(panel.objective.findData("edm"))
    assert not panel.prediction.isEnabled() and window.state.model_config.prediction is None
    assert window.state.model_config.objective == "edm"


def test_the_transport_view_frames_a_starting_grid_only_when_it_is_near_the_data():
    """A flow's source square (±3) is framed with the data; EDM's prior grid (±240) is left out, lest the data
    shrink to a dot in the corner of the picture."""
    import numpy as np

    from diffvis.app.views.transport_view import framed_grid

    landed = np.random.default_rng(0).uniform(-1, 2, size=(100, 2))
    square = np.stack(np.meshgrid(np.linspace(-3, 3, 5), np.linspace(-3, 3, 5)), -1).reshape(-1, 2)
    assert len(framed_grid(square, landed)) == 25
    assert len(framed_grid(80 * square, landed)) == 0
    assert len(framed_grid(np.vstack([square, [[np.nan, np.nan]]]), landed)) == 25


def test_the_training_view_names_the_preview_sampler_and_the_loss_buckets_of_the_runs_kind(window):
    view = window.training_view
    axis = lambda: view.bucket_plot.getAxis("bottom").labelText  # noqa: E731
    title = lambda: view.samples_plot.titleLabel.whole  # noqa: E731  (as written: the view is not shown here)
    assert "DDIM S=25" in title() and axis() == OBJECTIVES["ddpm"].buckets
    window.state.set_run(tiny_run(window, "edm"))
    assert "EDM N=18" in title() and axis() == OBJECTIVES["edm"].buckets
    window.state.set_run(None)
    window.model_panel.objective.setCurrentIndex(window.model_panel.objective.findData("flow"))
    assert "Euler S=25" in title() and axis() == OBJECTIVES["flow"].buckets
