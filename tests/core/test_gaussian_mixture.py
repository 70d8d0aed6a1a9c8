"""Gaussian mixtures with a known density: the density, its score at every noise level, and the sets drawn."""

import numpy as np
import pytest
import torch

from diffvis.core.datasets import make_dataset
from diffvis.core.gaussian_mixture import KNOWN_DENSITIES, GaussianMixture, gmm8, known_density, tree
from diffvis.errors import ConfigError


@pytest.mark.parametrize("name", list(KNOWN_DENSITIES))
def test_density_integrates_to_one(name):
    mixture = known_density(name, 0.2)  # the tree's thinnest branch 0.05 wide: a grid of 0.03 resolves it
    xs = np.linspace(-6, 6, 401)
    grid = torch.as_tensor(np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2))
    assert mixture.log_prob(grid).exp().sum().item() * (xs[1] - xs[0]) ** 2 == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("a, s, label", [(1.0, 0.0, None), (0.6, 0.7, 1), (0.2, 1.0, "rows")])
def test_score_is_the_gradient_of_the_noised_log_density(a, s, label):
    mixture = tree(0.05).standardised((0.1, 1.5), 1.7)
    x = torch.randn(60, 2, dtype=torch.float64, requires_grad=True)
    label = torch.randint(0, 2, (60,)) if label == "rows" else label
    (grad,) = torch.autograd.grad(mixture.log_prob(x, a, s, label).sum(), x)
    torch.testing.assert_close(mixture.score(x, a, s, label), grad)


def test_noised_mixture_is_the_law_of_a_x_plus_s_eps():
    """p_a,s is the law of a·x + s·ε: its mean and covariance match a large draw's."""
    mixture = gmm8(0.1)
    rng = np.random.default_rng(0)
    x, _ = mixture.sample(200_000, rng)
    y = 0.5 * x + 0.8 * rng.standard_normal(x.shape)
    xs = np.linspace(-5, 5, 401)
    grid = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)
    p = mixture.log_prob(torch.as_tensor(grid), 0.5, 0.8).exp().numpy() * (xs[1] - xs[0]) ** 2
    mean = (p[:, None] * grid).sum(0)
    cov = ((grid - mean).T * p) @ (grid - mean)
    np.testing.assert_allclose(mean, y.mean(0), atol=0.01)
    np.testing.assert_allclose(cov, np.cov(y.T), atol=0.01)


def test_class_conditional_density_keeps_the_class_components():
    mixture = gmm8(0.1)
    at_first_mean = torch.tensor([[2.0, 0.0]], dtype=torch.float64)
    whole, own, other = (mixture.log_prob(at_first_mean, label=y).item() for y in (None, 0, 4))
    assert own == pytest.approx(whole + np.log(8), abs=1e-9) and other < whole - 100


def test_tree_is_two_labelled_trees_sharing_a_root():
    mixture = tree(0.05)
    assert set(mixture.labels) == {0, 1} and len(mixture.means) == 2 * 31 * 3
    points = make_dataset("tree", 4000, seed=1)
    assert set(np.unique(points.labels)) == {0, 1}
    left, right = (points.points[points.labels == y] for y in (0, 1))
    assert left[:, 0].mean() < 0 < right[:, 0].mean()  # each class leans its own way


def test_known_density_only_where_there_is_one():
    assert known_density("moons", 0.05) is None and known_density("gmm8", 0.0) is None
    with pytest.raises(ConfigError, match="sum to 1"):
        GaussianMixture(np.zeros((2, 2)), np.stack([np.eye(2)] * 2), np.array([0.5, 0.6]))
