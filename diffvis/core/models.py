"""MLP networks: the noise predictor ε_θ(x, t) (or its x₀- or v-predicting forms), the noise-conditional score
network s_θ(x, σ), the velocity network v_θ(x, t) of flow matching and EDM's preconditioned denoiser D_θ(x; σ).

Both share one body: each coordinate of x gets a sinusoidal embedding scaled by ``input_scale`` (tiny-diffusion's
ablation: it lets a small MLP draw sharp detail), the condition gets a sinusoidal embedding, and residual blocks
h ← h + act(Linear(h)) follow. The first layer is split into an x part and a condition part, so that a condition
shared by every point of a sampling step (a scalar t or σ) is embedded and projected once, not N times.

A class-conditional network (``num_classes`` = K > 0) adds a learned label embedding to that first layer, with
K + 1 entries: one per class and a last one for "no label" (∅, passed as ``NULL_LABEL``), so that one network
learns both ε_θ(x, t, c) and ε_θ(x, t, ∅) (Ho & Salimans 2021, classifier-free guidance).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from diffvis.core.classes import MAX_CLASSES, NULL_LABEL
from diffvis.core.edm import NOISE_EMBEDDING
from diffvis.core.parametrization import PREDICTIONS, edm_preconditioning
from diffvis.core.registry import OBJECTIVES
from diffvis.core.validation import check_field_types
from diffvis.errors import ConfigError

ACTIVATIONS = {"silu": F.silu, "relu": F.relu, "gelu": F.gelu, "tanh": torch.tanh}
DEFAULT_PREDICTION = "v"  # what a new DDPM network predicts (see the README's "Runaway samples")
PREDICTING = "ddpm"  # the objective whose networks may predict ε, x₀ or v (``ModelConfig.prediction``)
_IN_PLACE = {"silu": partial(F.silu, inplace=True), "relu": torch.relu_, "gelu": F.gelu, "tanh": torch.tanh_}


@dataclass(frozen=True)
class ModelConfig:
    """``objective`` picks the network: 'ddpm' predicts ``prediction`` (ε, x₀ or v) from (x_t, t), 'ncsn' the score
    from (x, σ), 'flow' the velocity from (x, t), t ∈ [0, 1], 'edm' the denoiser D(x; σ) of data of standard
    deviation ``sigma_data`` (``diffvis.core.parametrization``). ``prediction`` is None for every objective but
    'ddpm' (a value given with another objective is dropped: the CLI refuses it before)."""

    objective: str = "ddpm"
    width: int = 64
    depth: int = 3
    activation: str = "silu"
    embed_dim: int = 64
    input_scale: float = 25.0
    num_classes: int = 0
    flow_time_scale: float = 100.0  # flow: the network embeds flow_time_scale·t (``VelocityNetwork``)
    prediction: str | None = None  # ddpm: what the network predicts, one of ``PREDICTIONS`` (None: the default)
    sigma_data: float = 1.0  # edm: σ_d, the standard deviation of the standardised data (1 by construction)

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if not 8 <= self.width <= 4096:
            raise ConfigError(f"width must be between 8 and 4096, got {self.width}")
        if not 1 <= self.depth <= 32:
            raise ConfigError(f"depth must be between 1 and 32, got {self.depth}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        if not 2 <= self.embed_dim <= 1024 or self.embed_dim % 2:
            raise ConfigError(f"embed_dim must be an even number from 2 to 1024, got {self.embed_dim}")
        if not 0 < self.input_scale <= 1000:
            raise ConfigError(f"input_scale must be above 0 and at most 1000, got {self.input_scale}")
        if not 1 <= self.flow_time_scale <= 1000:
            raise ConfigError(f"flow_time_scale must be from 1 to 1000, got {self.flow_time_scale}")
        if self.objective != PREDICTING:  # the field is DDPM's: dropped when a config's objective is replaced
            object.__setattr__(self, "prediction", None)
        elif self.prediction is None:
            object.__setattr__(self, "prediction", DEFAULT_PREDICTION)
        elif self.prediction not in PREDICTIONS:
            raise ConfigError(f"prediction must be one of {', '.join(PREDICTIONS)}, got {self.prediction!r}")
        if not (math.isfinite(self.sigma_data) and 0.01 <= self.sigma_data <= 100):
            raise ConfigError(f"sigma_data must be from 0.01 to 100, got {self.sigma_data}")
        if not (self.num_classes == 0 or 2 <= self.num_classes <= MAX_CLASSES):
            raise ConfigError(f"num_classes must be 0 (unconditional) or 2 to {MAX_CLASSES}, got {self.num_classes}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """Fields missing from ``d`` (a run saved before they existed) take the value such runs had
        (``BEFORE_FIELD``), or else their defaults."""
        if not isinstance(d, dict):
            raise TypeError(f"the {cls.__name__} must be a JSON object")
        return cls(**{**BEFORE_FIELD, **{k: d[k] for k in cls.__dataclass_fields__ if k in d}})


# what runs saved before a field existed had: flows embedded 1000·t (like DDPM's timesteps 0…999), which made
# v_θ vary fast in t; 100·t kept the quality and cut dopri5's evaluations about 3.7× (see the README)
# v-prediction (see the README: ε-prediction flung samples far from the data) made DDPM runs saved before it ε-models
BEFORE_FIELD = {"flow_time_scale": 1000.0, "prediction": "eps"}


class SinusoidalEmbedding(nn.Module):
    """emb(u) = [sin(s·u·ω_k), cos(s·u·ω_k)], ω_k = 10000^(−k/(d/2−1)), k = 0…d/2−1; shape (…,) → (…, d).

    Computed as one sine, sin(s·u·ω + φ) with φ = 0 for the first half and π/2 (cos) for the second.
    """

    def __init__(self, dim: int, scale: float = 1.0):
        super().__init__()
        half = dim // 2
        freqs = scale * torch.exp(-math.log(10000.0) * torch.arange(half) / max(half - 1, 1))
        self.register_buffer("freqs", torch.cat([freqs, freqs]), persistent=False)
        self.register_buffer(
            "phase", torch.cat([torch.zeros(half), torch.full((half,), math.pi / 2)]), persistent=False
        )

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.phase, u[..., None], self.freqs).sin_()


class ConditionalMLP(nn.Module):
    """f(x, c, y): (N, 2) points, a condition c of shape (N,) or a scalar, and for a class-conditional network a
    label y (a dense class id or ``NULL_LABEL``; shape (N,) or a scalar; None means ∅) → (N, 2)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        d = config.embed_dim
        self.embed_x = SinusoidalEmbedding(d, config.input_scale)
        self.embed_c = SinusoidalEmbedding(d)
        self.in_x = nn.Linear(2 * d, config.width)
        self.in_c = nn.Linear(d, config.width, bias=False)
        self.embed_label = nn.Embedding(config.num_classes + 1, config.width) if config.num_classes else None
        self.act, self.act_ = ACTIVATIONS[config.activation], _IN_PLACE[config.activation]
        self.blocks = nn.ModuleList(nn.Linear(config.width, config.width) for _ in range(config.depth))
        self.out = nn.Linear(config.width, 2)

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    def label_rows(self, label, like: torch.Tensor) -> torch.Tensor | None:
        """E[y] for labels y (∅ → the last entry), shape (N, width) or (1, width); None for no embedding."""
        if self.embed_label is None:
            if label is not None:
                raise ConfigError("this model was trained without class labels; it cannot be conditioned")
            return None
        y = torch.as_tensor(NULL_LABEL if label is None else label, dtype=torch.long, device=like.device)
        y = torch.where(y == NULL_LABEL, self.num_classes, y)
        return self.embed_label(y.reshape(-1))

    def body(self, x: torch.Tensor, c: torch.Tensor, label=None) -> torch.Tensor:
        """h = act(W_x emb(x) + W_c emb(c) [+ E[y]]); h ← h + act(W_i h + b_i) per block; out = W_o h + b_o."""
        ex = self.embed_x(x).flatten(1)  # (N, 2d): both coordinates' embeddings side by side
        ec = self.in_c(self.embed_c(c.reshape(-1)))  # (N, width) or (1, width) for a shared condition
        ey = self.label_rows(label, x)
        if ey is not None:
            ec = ec + ey
        if torch.is_grad_enabled():
            h = self.act(self.in_x(ex) + ec)
            for block in self.blocks:
                h = h + self.act(block(h))
        else:  # sampling: the same arithmetic in place, sparing an (N, width) allocation per operation
            h = self.act_(self.in_x(ex).add_(ec))
            for block in self.blocks:
                h.add_(self.act_(block(h)))
        return self.out(h)


class NoisePredictor(ConditionalMLP):
    """ε_θ(x_t, t[, y]), t the integer timestep index 0…T−1 (a scalar or one per point)."""

    def forward(self, x: torch.Tensor, t, label=None) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        return self.body(x, t, label)


class ScoreNetwork(ConditionalMLP):
    """s_θ(x, σ[, y]) = f(x, log σ, y) / σ (Song & Ermon 2020, technique 3); σ a scalar or one per point."""

    def forward(self, x: torch.Tensor, sigma, label=None) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        out = self.body(x, torch.log(sigma), label)
        return out / (sigma.reshape(-1, 1) if sigma.ndim else sigma)


class VelocityNetwork(ConditionalMLP):
    """v_θ(x_t, t[, y]), t ∈ [0, 1] from the source to the data (``diffvis.core.flow``), embedded as
    ``flow_time_scale``·t."""

    def forward(self, x: torch.Tensor, t, label=None) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        return self.body(x, t * self.config.flow_time_scale, label)


class DenoiserNetwork(ConditionalMLP):
    """EDM's preconditioned network (Karras et al. 2022, Table 1), callable as a score model:
    s_θ(x, σ[, y]) = (D_θ(x; σ) − x)/σ² with D_θ = c_skip x + c_out F(c_in x; c_noise), c_noise = ¼ ln σ embedded as
    ``NOISE_EMBEDDING``·c_noise; computed as (c_out F − σ²/(σ² + σ_d²) x)/σ², which keeps float32 exact at small σ
    where D and x nearly cancel."""

    def forward(self, x: torch.Tensor, sigma, label=None) -> torch.Tensor:
        return self.score(x, sigma, self.raw(x, sigma, label))

    def raw(self, x: torch.Tensor, sigma, label=None) -> torch.Tensor:
        """F(c_in x; c_noise) for σ a scalar or one per point."""
        sigma = self.column(torch.as_tensor(sigma, dtype=x.dtype, device=x.device))
        pre = edm_preconditioning(self.config.sigma_data)
        return self.body(x * pre.c_in(sigma), NOISE_EMBEDDING * 0.25 * torch.log(sigma).reshape(-1), label)

    def score(self, x: torch.Tensor, sigma, f: torch.Tensor) -> torch.Tensor:
        sigma = self.column(torch.as_tensor(sigma, dtype=x.dtype, device=x.device))
        d2, s2 = self.config.sigma_data**2, sigma * sigma
        c_out = edm_preconditioning(self.config.sigma_data).c_out(sigma)
        return (c_out * f - s2 / (s2 + d2) * x) / s2

    @staticmethod
    def column(sigma: torch.Tensor) -> torch.Tensor:
        return sigma.reshape(-1, 1) if sigma.ndim else sigma


NETWORKS = {"ddpm": NoisePredictor, "ncsn": ScoreNetwork, "flow": VelocityNetwork, "edm": DenoiserNetwork}


def build_model(config: ModelConfig) -> ConditionalMLP:
    return NETWORKS[config.objective](config)
