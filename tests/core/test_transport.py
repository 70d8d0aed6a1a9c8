"""The transport of a grid through a flow: the lines cover the source, every point follows the request's own
ODE, and a path's bend is 0 when straight."""

import numpy as np

from diffvis.core.datasets import make_dataset
from diffvis.core.pipeline import sample_request, sampling_model
from diffvis.core.request import SampleRequest
from diffvis.core.transport import GRID_REACH, bend, grid_lines, push_grid


def test_the_grid_spans_the_source_and_its_points_follow_the_requests_ode():
    model = sampling_model(None, make_dataset("moons", 200).points, "flow")
    lines = grid_lines(model, lines=5, points_per_line=7)
    assert lines.shape == (10, 7, 2)
    std = model.normaliser.to_std(lines)
    np.testing.assert_allclose([std.min(), std.max()], [-GRID_REACH, GRID_REACH])
    np.testing.assert_allclose(std[0, :, 1], -GRID_REACH)  # a horizontal line keeps its y
    np.testing.assert_allclose(std[5, :, 0], -GRID_REACH)  # a vertical line keeps its x
    request = SampleRequest("rk4", {"steps": 6}, n=1, objective="flow")
    flow = push_grid(model, request, lines)
    assert flow.frames.shape == (7, 10, 7, 2) and flow.lines == 10
    np.testing.assert_allclose(flow.frames[0], lines, atol=1e-5)
    import torch

    alone = sample_request(model, request, x_T=torch.as_tensor(std.reshape(-1, 2), dtype=torch.float32))
    np.testing.assert_array_equal(flow.frames.reshape(7, -1, 2), alone.frames)
    np.testing.assert_array_equal(flow.times, alone.times)


def test_bend_is_zero_for_a_straight_path_and_one_minus_two_over_pi_for_a_half_circle():
    t = np.linspace(0, 1, 2001)
    straight = np.stack([t, 2 * t], -1)[:, None, :]
    half_circle = np.stack([np.cos(np.pi * t), np.sin(np.pi * t)], -1)[:, None, :]
    np.testing.assert_allclose(bend(np.concatenate([straight, half_circle], axis=1)), [0.0, 1 - 2 / np.pi], atol=1e-6)
