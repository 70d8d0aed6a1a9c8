"""The transport view: it draws exactly the core's ψ_t of the grid (one NaN-separated curve) and the points carried
along the same ODE, for a trained flow run, the exact flow model and a DDPM model's probability flow; a first look
computes and draws; a probe draws its path and the straight ghost chord between its ends."""

from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from diffvis.app.models.scene import lab_schedule
from diffvis.app.models.transport import POINTS_PER_LINE
from diffvis.app.state import LabState
from diffvis.app.views.transport_view import TransportView
from diffvis.core.classes import UNCONDITIONAL
from diffvis.core.datasets import make_dataset
from diffvis.core.models import ModelConfig
from diffvis.core.pipeline import sample_request, sampling_model, train_run
from diffvis.core.registry import OBJECTIVES
from diffvis.core.request import SampleRequest
from diffvis.core.run import SamplingModel
from diffvis.core.training import TrainConfig
from diffvis.core.transport import grid_lines, push_grid
from diffvis.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")
STEPS, LINES, N = 6, 4, 50


def xy(item) -> np.ndarray:
    x, y = item.getData()
    return np.zeros((0, 2)) if x is None else np.column_stack([x, y])


def separated(lines: np.ndarray) -> np.ndarray:
    """(L·(P + 1), 2) the lines (L, P, 2) one after another, each followed by a NaN row: written out by hand."""
    rows = []
    for line in lines:
        rows += [*line, [np.nan, np.nan]]
    return np.array(rows)


@pytest.fixture
def view(qtbot):
    """A transport view of 100 moons points (hidden: it computes when shown or asked); its threads stop after."""
    state = LabState()
    state.set_data(make_dataset("moons", 100, seed=0), {"source": "moons", "n": 100})
    view = TransportView(state)
    qtbot.addWidget(view)
    view.resize(900, 700)
    yield view
    view.shutdown()
    view.close()


def small(view) -> None:
    view.model.update(request=replace(view.model.request, n=N).with_steps(STEPS), lines=LINES)


def compute(view, qtbot):
    small(view)
    with qtbot.waitSignal(view.computed, timeout=60_000):
        assert view.compute()
    return view.result


@pytest.mark.parametrize("source", ["flow run", "exact flow", "exact ddpm"])
def test_the_view_draws_exactly_the_cores_flow_map_of_the_grid(view, qtbot, source):
    state = view.state
    objective = source.split()[-1] if source.startswith("exact") else "flow"
    state.set_model_config(replace(state.model_config, objective=objective))
    if source == "flow run":
        run = train_run(state.data, ModelConfig(objective="flow", width=16, depth=1),
                        TrainConfig(steps=40, batch=64, seed=3), {"source": "moons"})  # fmt: skip
        state.set_run(run)
        model = SamplingModel.of_run(run)
    else:
        model = sampling_model(None, state.data, objective, schedule=lab_schedule(state))
    result = compute(view, qtbot)
    request = SampleRequest(view.model.request.sampler, {"steps": STEPS}, n=N, objective=objective,
                            label=UNCONDITIONAL)  # fmt: skip
    flow = push_grid(model, request, grid_lines(model, LINES, POINTS_PER_LINE))
    points = sample_request(model, request).frames
    assert flow.frames.shape == (STEPS + 1, 2 * LINES, POINTS_PER_LINE, 2) and result.trajectory.nfe > 0
    assert view.frame_count() == STEPS + 1
    for k in (0, 2, STEPS - 1, STEPS):
        view.timeline.slider.setValue(k)
        assert view.model.frame == k
        np.testing.assert_allclose(xy(view.grid_curve), separated(flow.frames[k]), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(xy(view.scatter), points[k], rtol=1e-5, atol=1e-5)
        assert f"frame {k}/{STEPS}" in view.caption.text
    assert "mean bend" in view.caption.text and "trail colour = bend" in view.caption.text
    if objective == "flow":  # the source's square at t = 0, carried onto the data by t = 1
        np.testing.assert_allclose(flow.times[[0, -1]], [0.0, 1.0])
        assert view.model.trajectory.levels == "time"


def test_a_first_look_computes_and_draws_the_grid(view, qtbot):
    small(view)
    assert view.result is None
    with qtbot.waitSignal(view.computed, timeout=60_000):
        view.show()
    grid = xy(view.grid_curve)
    assert len(grid) == 2 * LINES * (POINTS_PER_LINE + 1) and np.isfinite(grid).all(1).sum() == 2 * LINES * 40
    assert len(xy(view.scatter)) == N and sum(len(xy(c)) for c in view.trail_curves) > 0


def test_a_clicked_probe_draws_its_path_and_the_ghost_chord_between_its_ends(view, qtbot):
    view.state.set_model_config(replace(view.state.model_config, objective="flow"))
    small(view)
    with qtbot.waitSignal(view.computed, timeout=60_000):
        view.show()  # (a first look computes)
    view.timeline.slider.setValue(2)
    vb = view.plot.getPlotItem().vb
    view.plot.scene().prepareForPaint()
    pixel = view.plot.mapFromScene(vb.mapViewToScene(QPointF(0.5, 0.2)))
    with qtbot.waitSignal(view.probe_job.done, timeout=30_000):
        qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=pixel)
    (probe,) = view.model.probes
    path = probe.trajectory.frames[:, 0]
    assert np.isnan(path[:2]).all() and np.isfinite(path[2:]).all()  # placed at frame 2
    np.testing.assert_allclose(xy(view.probe_layer.path)[:-1], path)
    ghost = xy(view.ghost)
    assert ghost.shape == (3, 2) and np.isnan(ghost[2]).all()
    np.testing.assert_allclose(ghost[:2], [path[2], path[-1]], atol=1e-12)
    np.testing.assert_allclose(path[2], [0.5, 0.2], atol=3 * (vb.viewRange()[0][1] - vb.viewRange()[0][0]) / 100)
    view.clear_probes.click()
    assert len(xy(view.ghost)) == 0


def test_a_request_for_a_sampler_that_follows_no_ode_is_refused(view):
    model = view.model
    with pytest.raises(ConfigError, match="follows an ODE"):
        model.request = SampleRequest(OBJECTIVES["ncsn"].full_sampler)
