"""The exact flow-matching velocity of a point set (linear interpolant from N(0, I)): against a brute-force float64
posterior average, at t = 0, conditional on a class, and as a flow that carries the noise onto the points."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffvis.core.exact import ExactVelocity

rng = np.random.default_rng(0)
POINTS = rng.normal(size=(40, 2)) * np.array([1.5, 0.6]) + np.array([0.3, -0.2])
CLASS_OF = rng.integers(0, 3, size=40)


def brute_force(x: np.ndarray, t: float, points: np.ndarray) -> np.ndarray:
    """v = Σ_i w_i (y_i − x)/(1 − t), w ∝ exp(−‖x − t y_i‖² / 2(1 − t)²), in float64 with a max shift."""
    d2 = ((x[:, None, :] - t * points[None]) ** 2).sum(-1)
    logw = -d2 / (2 * (1 - t) ** 2)
    w = np.exp(logw - logw.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    return (w @ points - x) / (1 - t)


@pytest.mark.parametrize("t", [0.0, 1e-3, 0.1, 0.5, 0.9, 0.999])
def test_the_exact_velocity_is_the_posterior_average_of_the_conditional_velocities(t):
    model = ExactVelocity(POINTS)
    x = rng.normal(size=(200, 2)) * 1.3
    v = model(torch.as_tensor(x, dtype=torch.float32), t).double().numpy()
    expected = brute_force(x.astype(np.float32).astype(np.float64), t, POINTS.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(v, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_at_t_0_every_point_weighs_the_same():
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(1))
    v = ExactVelocity(POINTS)(x, 0.0)
    torch.testing.assert_close(v, torch.as_tensor(POINTS.mean(0), dtype=torch.float32) - x, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("t", [0.0, 0.3, 0.95])
def test_the_conditional_velocity_uses_the_classes_points_only(t):
    model = ExactVelocity(POINTS, CLASS_OF)
    x = rng.normal(size=(90, 2))
    label = torch.as_tensor(np.arange(90) % 3)
    v = model(torch.as_tensor(x, dtype=torch.float32), t, label).double().numpy()
    for c in range(3):
        rows = np.arange(90) % 3 == c
        expected = brute_force(x[rows], t, POINTS[np.equal(CLASS_OF, c)])
        np.testing.assert_allclose(v[rows], expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_the_exact_flow_carries_the_noise_onto_the_points():
    """dx/dt = v(x, t) from N(0, I) at t = 0 with a hand-written classical Runge–Kutta loop to t = 0.99, then one
    Euler step to t = 1 (near the end each path is a straight line to its point, which Euler follows exactly and
    RK4's last stage, at the singular t = 1, would not): a perfect model memorises, so every particle ends on a
    training point."""
    model = ExactVelocity(POINTS)
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    steps, end = 200, 0.99
    h = end / steps
    for k in range(steps):
        t = k * h
        k1 = model(x, t)
        k2 = model(x + h / 2 * k1, t + h / 2)
        k3 = model(x + h / 2 * k2, t + h / 2)
        k4 = model(x + h * k3, t + h)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    x = x + (1 - end) * model(x, end)
    nearest = torch.cdist(x, torch.as_tensor(POINTS)).min(1).values
    assert float(nearest.median()) < 1e-4 and float(nearest.max()) < 1e-3
