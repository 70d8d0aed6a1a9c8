"""MLP networks: the noise predictor ε_θ(x, t) and the noise-conditional score network s_θ(x, σ).

Both share one body: each coordinate of x gets a sinusoidal embedding scaled by ``input_scale`` (tiny-diffusion's
ablation: it lets a small MLP draw sharp detail), the condition gets a sinusoidal embedding, and residual blocks
x ← x + act(Linear(x)) follow. The first layer is split into an x part and a condition part, so that a condition
shared by every point of a sampling step (a scalar t or σ) is embedded and projected once, not N times.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from diffvis.errors import ConfigError

ACTIVATIONS = {"gelu": nn.GELU, "silu": nn.SiLU, "relu": nn.ReLU, "tanh": nn.Tanh}
OBJECTIVES = ("ddpm", "ncsn")


@dataclass(frozen=True)
class ModelConfig:
    """``objective`` picks the network: 'ddpm' predicts ε from (x, t), 'ncsn' the score from (x, σ)."""

    objective: str = "ddpm"
    width: int = 128
    depth: int = 3
    activation: str = "gelu"
    embed_dim: int = 64
    input_scale: float = 25.0

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if not 8 <= self.width <= 4096:
            raise ConfigError(f"width must be between 8 and 4096, got {self.width}")
        if not 1 <= self.depth <= 32:
            raise ConfigError(f"depth must be between 1 and 32, got {self.depth}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        if self.embed_dim < 2 or self.embed_dim % 2:
            raise ConfigError(f"embed_dim must be an even number ≥ 2, got {self.embed_dim}")
        if not (math.isfinite(self.input_scale) and self.input_scale > 0):
            raise ConfigError(f"input_scale must be positive, got {self.input_scale}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


class SinusoidalEmbedding(nn.Module):
    """emb(u) = [sin(s·u·ω_k), cos(s·u·ω_k)], ω_k = 10000^(−k/(d/2−1)), k = 0…d/2−1; shape (…,) → (…, d)."""

    def __init__(self, dim: int, scale: float = 1.0):
        super().__init__()
        half = dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half) / max(half - 1, 1))
        self.register_buffer("freqs", scale * freqs, persistent=False)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        angles = u[..., None] * self.freqs
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class _Residual(nn.Module):
    def __init__(self, width: int, activation: str):
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.act = ACTIVATIONS[activation]()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.act(self.linear(h))


class ConditionalMLP(nn.Module):
    """f(x, c): (N, 2) points and a condition c of shape (N,) or a scalar → (N, 2)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        d = config.embed_dim
        self.embed_x = SinusoidalEmbedding(d, config.input_scale)
        self.embed_c = SinusoidalEmbedding(d)
        self.in_x = nn.Linear(2 * d, config.width)
        self.in_c = nn.Linear(d, config.width, bias=False)
        self.act = ACTIVATIONS[config.activation]()
        self.blocks = nn.Sequential(*[_Residual(config.width, config.activation) for _ in range(config.depth)])
        self.out = nn.Linear(config.width, 2)

    def body(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        ex = self.embed_x(x).flatten(1)  # (N, 2d): both coordinates' embeddings side by side
        ec = self.in_c(self.embed_c(c.reshape(-1)))  # (N, width) or (1, width) for a shared condition
        return self.out(self.blocks(self.act(self.in_x(ex) + ec)))


class NoisePredictor(ConditionalMLP):
    """ε_θ(x_t, t), t the integer timestep index 0…T−1 (a scalar or one per point)."""

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        return self.body(x, t)


class ScoreNetwork(ConditionalMLP):
    """s_θ(x, σ) = f(x, log σ) / σ (Song & Ermon 2020, technique 3); σ a scalar or one per point."""

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        out = self.body(x, torch.log(sigma))
        return out / (sigma.reshape(-1, 1) if sigma.ndim else sigma)


def build_model(config: ModelConfig) -> ConditionalMLP:
    return NoisePredictor(config) if config.objective == "ddpm" else ScoreNetwork(config)
