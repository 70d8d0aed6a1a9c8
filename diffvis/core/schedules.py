"""Noise schedules, computed once as tables and indexed, never recomputed per step.

Notation (Ho et al. 2020, indices shifted to 0…T−1 as in diffusers: entry t is the paper's step t+1)::

    β_t            betas                  variance added at step t
    α_t = 1 − β_t  alphas
    ᾱ_t = ∏ α_s    alphas_cumprod         q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)
    ᾱ_{t−1}        alphas_cumprod_prev    with ᾱ_{−1} = 1
    β̃_t            posterior_variance     (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t
    SNR_t          snr                    ᾱ_t / (1 − ᾱ_t)
    log σ_t        log_sigmas             ½ log((1 − ᾱ_t)/ᾱ_t), σ the probability-flow ODE's variable (Karras)

The NCSN noise levels (Song & Ermon 2019) are a separate table, ``SigmaLadder``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from diffvis.errors import ConfigError

SCHEDULE_KINDS = ("linear", "cosine", "sigmoid")
SPACINGS = ("leading", "trailing", "linspace")
MIN_T, MAX_T = 2, 10_000
MAX_BETA = 0.999


def linear_betas(T: int) -> np.ndarray:
    """β from 1e-4 to 0.02 at T = 1000, both ends scaled by 1000/T (Nichol & Dhariwal), capped at 0.999."""
    scale = 1000 / T
    return np.minimum(np.linspace(1e-4 * scale, 0.02 * scale, T), MAX_BETA)


def cosine_betas(T: int, s: float = 0.008) -> np.ndarray:
    """ᾱ(t) = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s) · π/2); β_t = 1 − ᾱ(t+1)/ᾱ(t), capped at 0.999."""
    steps = np.arange(T + 1, dtype=np.float64) / T
    f = np.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    return np.minimum(1 - f[1:] / f[:-1], MAX_BETA)


def sigmoid_betas(T: int, start: float = -6.0, end: float = 6.0) -> np.ndarray:
    """β_t = β_min + (β_max − β_min) · sigmoid(linspace(−6, 6, T)), with the linear schedule's β_min, β_max."""
    ends = linear_betas(T)
    return ends[0] + (ends[-1] - ends[0]) / (1 + np.exp(-np.linspace(start, end, T)))


_BETAS = {"linear": linear_betas, "cosine": cosine_betas, "sigmoid": sigmoid_betas}


@dataclass(frozen=True)
class Schedule:
    """A discrete DDPM schedule of T steps; every array has shape (T,), dtype float64 and is read-only."""

    kind: str
    T: int
    betas: np.ndarray = field(repr=False)
    alphas: np.ndarray = field(init=False, repr=False)
    alphas_cumprod: np.ndarray = field(init=False, repr=False)
    alphas_cumprod_prev: np.ndarray = field(init=False, repr=False)
    posterior_variance: np.ndarray = field(init=False, repr=False)
    snr: np.ndarray = field(init=False, repr=False)
    log_sigmas: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        betas = np.array(self.betas, dtype=np.float64)  # a copy: the caller's array stays writable
        if betas.shape != (self.T,) or not np.all((betas > 0) & (betas < 1)):
            raise ConfigError("betas must be T numbers strictly between 0 and 1")
        alphas = 1 - betas
        abar = np.cumprod(alphas)
        abar_prev = np.concatenate([[1.0], abar[:-1]])
        tables = {
            "betas": betas,
            "alphas": alphas,
            "alphas_cumprod": abar,
            "alphas_cumprod_prev": abar_prev,
            "posterior_variance": (1 - abar_prev) / (1 - abar) * betas,
            "snr": abar / (1 - abar),
            "log_sigmas": 0.5 * np.log((1 - abar) / abar),  # log σ_t of the ODE's variable, increasing in t
        }
        for name, array in tables.items():
            array.flags.writeable = False
            object.__setattr__(self, name, array)  # frozen dataclass

    @classmethod
    def make(cls, kind: str = "linear", T: int = 1000) -> Schedule:
        if kind not in _BETAS:
            raise ConfigError(f"unknown schedule {kind!r}; choose one of {', '.join(SCHEDULE_KINDS)}")
        if not MIN_T <= T <= MAX_T:
            raise ConfigError(f"the number of timesteps T must be between {MIN_T} and {MAX_T:,}, got {T}")
        return cls(kind, T, _BETAS[kind](T))

    def sigma_at(self, t: float) -> float:
        """σ(t) = √((1 − ᾱ_t)/ᾱ_t) of the probability-flow ODE (Karras et al. 2022), t a timestep in [0, T − 1]:
        the table's value at a whole t, log-linear between them (k-diffusion's ``DiscreteSchedule`` does the
        same), so that an ODE solver may evaluate a model between the timesteps it was trained on."""
        return float(np.exp(np.interp(t, np.arange(self.T), self.log_sigmas)))

    def timestep_at(self, sigma: float) -> float:
        """The (fractional) timestep t with σ(t) = ``sigma``, the inverse of ``sigma_at``; clamped to [0, T − 1]."""
        return float(np.interp(np.log(sigma), self.log_sigmas, np.arange(self.T)))

    def abar_at(self, t: float) -> float:
        """ᾱ at timestep t: the table's at a whole t, 1/(1 + σ(t)²) between them."""
        if float(t).is_integer():
            return float(self.alphas_cumprod[int(t)])
        return 1.0 / (1.0 + self.sigma_at(t) ** 2)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "T": self.T}

    @classmethod
    def from_dict(cls, d: dict) -> Schedule:
        return cls.make(str(d["kind"]), int(d["T"]))


def karras_sigmas(sigma_max: float, sigma_min: float, n: int, rho: float = 7.0) -> np.ndarray:
    """The n noise levels of Karras et al. 2022, eq. 5: σ_i = (σ_max^(1/ρ) + i/(n−1) (σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ,
    i = 0 … n−1 (one level: σ_max)."""
    i = np.arange(n) / max(n - 1, 1)
    return (sigma_max ** (1 / rho) + i * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho


@dataclass(frozen=True)
class SigmaLadder:
    """Noise levels σ_1 > … > σ_L of a model of the variance-exploding kind (NCSN, EDM), a read-only float64 array;
    ``geometric`` makes σ_i = σ_max · (σ_min/σ_max)^((i−1)/(L−1)) (NCSN), ``karras`` the ρ-spaced levels of EDM.
    ``rho`` is how an ODE solver spaces its steps between σ_1 and σ_L: 0 geometrically, else ``karras_sigmas``."""

    sigmas: np.ndarray
    rho: float = 0.0

    def __post_init__(self) -> None:
        s = np.array(self.sigmas, dtype=np.float64)  # a copy: the caller's array stays writable
        if s.ndim != 1 or len(s) < 1 or not np.all(s > 0) or np.any(np.diff(s) >= 0):
            raise ConfigError("noise levels must be positive and strictly decreasing")
        if not (math.isfinite(self.rho) and 0 <= self.rho <= 100):
            raise ConfigError(f"ρ must be 0 (geometric) or up to 100, got {self.rho}")
        s.flags.writeable = False
        object.__setattr__(self, "sigmas", s)
        object.__setattr__(self, "rho", float(self.rho))

    def spaced(self, steps: int) -> np.ndarray:
        """``steps`` levels from σ_1 to σ_L, spaced as ``rho`` says."""
        ends = float(self.sigmas[0]), float(self.sigmas[-1])
        return np.geomspace(*ends, steps) if self.rho == 0 else karras_sigmas(*ends, steps, self.rho)

    @classmethod
    def karras(cls, sigma_max: float, sigma_min: float, levels: int, rho: float = 7.0) -> SigmaLadder:
        return cls(karras_sigmas(sigma_max, sigma_min, levels, rho), rho)

    @classmethod
    def geometric(cls, sigma_max: float, sigma_min: float = 0.01, levels: int = 10) -> SigmaLadder:
        if not (math.isfinite(sigma_max) and math.isfinite(sigma_min) and 0 < sigma_min < sigma_max):
            raise ConfigError(f"need 0 < σ_min < σ_max, got σ_min={sigma_min}, σ_max={sigma_max}")
        if not 2 <= levels <= 10_000:
            raise ConfigError(f"the number of noise levels must be between 2 and 10,000, got {levels}")
        return cls(np.geomspace(sigma_max, sigma_min, levels))

    @property
    def L(self) -> int:
        return len(self.sigmas)

    def to_dict(self) -> dict:
        return {"sigmas": [float(s) for s in self.sigmas], **({"rho": self.rho} if self.rho else {})}

    @classmethod
    def from_dict(cls, d: dict) -> SigmaLadder:
        return cls(np.asarray(d["sigmas"], dtype=np.float64), float(d.get("rho", 0.0)))


def max_pairwise_distance(points: np.ndarray, directions: int = 256) -> float:
    """The diameter of a 2D point set, within a relative 1 − cos(π/directions) (< 8e-5) of exact.

    The two ends of a diameter p, q are the extreme points of the set along q − p; the extreme points along
    ``directions`` evenly spaced directions therefore hold both ends to within that angle, and the largest
    distance among these few candidates is found by brute force. Vectorised: no Python loop over points.
    """
    pts = np.asarray(points, dtype=np.float64)
    angles = np.linspace(0.0, np.pi, directions, endpoint=False)
    proj = pts @ np.stack([np.cos(angles), np.sin(angles)])  # (N, directions)
    candidates = pts[np.unique(np.concatenate([proj.argmax(0), proj.argmin(0)]))]
    diff = candidates[:, None, :] - candidates[None, :, :]
    return float(np.sqrt((diff**2).sum(-1)).max())


def ddim_timesteps(T: int, steps: int, spacing: str = "leading") -> np.ndarray:
    """The S descending timesteps a DDIM run visits, with diffusers' meaning of each spacing:

    leading:  (0, r, 2r, …)·[::-1], r = T // S          trailing: round(T − i·T/S) − 1, i = 0 … S−1
    linspace: round(linspace(0, T − 1, S))[::-1]
    """
    if not 1 <= steps <= T:
        raise ConfigError(f"steps must be between 1 and T = {T}, got {steps}")
    if spacing == "leading":
        ts = (np.arange(steps) * (T // steps))[::-1]
    elif spacing == "trailing":
        ts = np.round(np.arange(T, 0, -T / steps)[:steps]) - 1  # diffusers' arange; float error can add an S+1-th
    elif spacing == "linspace":
        ts = np.round(np.linspace(0, T - 1, steps))[::-1]
    else:
        raise ConfigError(f"spacing must be one of {', '.join(SPACINGS)}, got {spacing!r}")
    return ts.astype(np.int64)
