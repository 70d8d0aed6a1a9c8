"""The coupling picture's pairs, and reflow's pair drawing stopped mid-solve."""

import numpy as np
import pytest

from diffvis.core.coupling import REFLOW
from diffvis.core.coupling_lines import PICTURED, coupling_lines, coupling_model
from diffvis.core.datasets import make_dataset
from diffvis.core.models import ModelConfig
from diffvis.core.pipeline import train_run
from diffvis.core.reflow import draw_pairs, ode_pairs
from diffvis.core.registry import OBJECTIVES
from diffvis.core.run import SamplingModel
from diffvis.core.schedules import Schedule
from diffvis.core.training import TrainConfig
from diffvis.errors import Cancelled

FLOW = next(name for name, info in OBJECTIVES.items() if info.transports)


@pytest.fixture(scope="module")
def moons():
    return make_dataset("moons", 500, seed=0)


@pytest.fixture(scope="module")
def tiny_flow(moons):
    cfg = TrainConfig(steps=30, batch=64, conditional=False)
    return train_run(moons, ModelConfig(objective=FLOW, width=16, depth=1), cfg, {"source": "moons", "n": 500})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ot_lines_are_no_longer_on_average_than_independent_ones_from_the_same_source_points(moons, tiny_flow, seed):
    model = SamplingModel.of_run(tiny_flow)
    independent, ot = (coupling_lines(model, moons.points, kind, n=200, seed=seed) for kind in PICTURED[:2])
    np.testing.assert_array_equal(independent.source, ot.source)
    assert sorted(map(tuple, independent.partner)) == sorted(map(tuple, ot.partner))  # the same points, reassigned
    assert ot.mean_squared_length <= independent.mean_squared_length
    assert ot.mean_squared_length < 0.5 * independent.mean_squared_length  # not by a hair: by a wide margin


def test_flow_partners_are_the_runs_own_ode_ends(moons, tiny_flow):
    model = SamplingModel.of_run(tiny_flow)
    lines = coupling_lines(model, moons.points, REFLOW, n=40, seed=3)
    source, end, _ = ode_pairs(model, 40, seed=3)
    np.testing.assert_allclose(lines.source, source, atol=1e-5)
    np.testing.assert_allclose(lines.partner, end, atol=1e-5)
    assert lines.source.shape == lines.partner.shape == (40, 2)


def test_the_picture_draws_a_flow_run_and_otherwise_the_exact_flow_of_the_points(moons, tiny_flow):
    assert coupling_model(tiny_flow, moons, Schedule.make()).model is tiny_flow.ema
    exact = coupling_model(None, moons, Schedule.make())
    assert exact.exact and exact.objective == FLOW


def test_a_cancel_stops_the_pair_solve_within_one_network_evaluation(tiny_flow):
    asked = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) > 3

    with pytest.raises(Cancelled):
        draw_pairs(tiny_flow, 100, cancelled=cancelled)
    assert len(asked) == 4  # three evaluations ran; the fourth was refused
    with pytest.raises(Cancelled):
        coupling_lines(SamplingModel.of_run(tiny_flow), np.zeros((2, 2)), REFLOW, n=10, progress=lambda i, n: True)
