"""Networks: the in-place sampling path equals the autograd path; a shared t equals one t per point."""

import numpy as np
import pytest
import torch

from diffvis.core.models import ModelConfig, NoisePredictor, ScoreNetwork, build_model
from diffvis.errors import ConfigError


@pytest.mark.parametrize("activation", ["silu", "relu", "gelu", "tanh"])
@pytest.mark.parametrize("objective", ["ddpm", "ncsn"])
def test_inference_path_equals_training_path(activation, objective):
    torch.manual_seed(0)
    model = build_model(ModelConfig(objective=objective, activation=activation, width=32, depth=2))
    x, c = torch.randn(50, 2), 0.7 if objective == "ncsn" else 17
    with torch.no_grad():
        fast = model(x, c)
    slow = model(x, c)
    assert slow.requires_grad and not fast.requires_grad
    np.testing.assert_allclose(fast.numpy(), slow.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_shared_condition_equals_per_point_condition():
    torch.manual_seed(0)
    x = torch.randn(40, 2)
    eps = NoisePredictor(ModelConfig(width=32))
    np.testing.assert_allclose(eps(x, 123).detach(), eps(x, torch.full((40,), 123)).detach(), rtol=1e-5, atol=1e-6)
    score = ScoreNetwork(ModelConfig(objective="ncsn", width=32))
    np.testing.assert_allclose(score(x, 0.5).detach(), score(x, torch.full((40,), 0.5)).detach(), rtol=1e-5, atol=1e-6)


def test_score_network_scales_as_one_over_sigma():
    """s_θ(x, σ) = f(x, log σ)/σ: at equal f, halving σ doubles the score (technique 3 of Song & Ermon 2020)."""
    torch.manual_seed(0)
    net = ScoreNetwork(ModelConfig(objective="ncsn", width=32))
    x = torch.randn(5, 2)
    f = net.body(x, torch.log(torch.tensor(0.2)))
    np.testing.assert_allclose(net(x, 0.2).detach(), (f / 0.2).detach(), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs", [{"width": 4}, {"depth": 0}, {"activation": "swish"}, {"objective": "gan"}, {"embed_dim": 7}]
)
def test_bad_model_settings_are_user_errors(kwargs):
    with pytest.raises(ConfigError):
        ModelConfig(**kwargs)


def test_a_flow_saved_before_the_time_scale_existed_keeps_embedding_1000_t():
    """Old flow runs embedded 1000·t; a config read back without the field keeps that, new ones embed 100·t."""
    saved = {k: v for k, v in ModelConfig(objective="flow").to_dict().items() if k != "flow_time_scale"}
    old, new = ModelConfig.from_dict(saved), ModelConfig(objective="flow")
    assert (old.flow_time_scale, new.flow_time_scale) == (1000.0, 100.0)
    torch.manual_seed(0)
    network = build_model(new)
    x = torch.randn(5, 2)
    torch.testing.assert_close(network(x, 0.3), network.body(x, torch.tensor(30.0)))
