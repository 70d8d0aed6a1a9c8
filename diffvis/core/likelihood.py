"""Exact log-likelihoods through a model's probability-flow ODE (Song et al. 2021, §4.3 and App. D.2; the
instantaneous change of variables of Chen et al. 2018).

Every model is an ODE dy/du = f(y, u) from its prior at u_start to the data at u_end (``diffvis.core.ode``: the
state y and the points x = s(u)·y). Along a solution the density obeys d log p_u(y(u))/du = −∇·f(y(u), u), so

    log p_end(y_end) = log p_start(y_start) − ∫_{u_start}^{u_end} ∇·f(y(u), u) du,

found by solving the state and Δ(u) = ∫_u^{u_end} ∇·f du backwards, from a data point at u_end to u_start. In 2D
the divergence is exact: ∂f₁/∂y₁ + ∂f₂/∂y₂ from two autograd passes over the batch (rows are independent). The
Hutchinson estimator zᵀ(∂f/∂y)z with K fixed Rademacher probes z per point (one backward pass each; FFJORD's
choice, what a high-dimensional model must use) is offered beside it, each probe's solve giving one estimate.

    objective  u_start → u_end          prior of y at u_start          end
    flow       t: 0 → 1                 N(0, I)                        the data
    ddpm       σ: σ(T−1) → σ(0)         N(0, (1 + σ_start²) I)         x = y/√(1 + σ(0)²), noised at σ(0)
    ncsn       σ: σ_1 → σ_L             N(0, σ_1² I)                   x = y, noised at σ_L

DDPM and NCSN models are not defined below their smallest trained noise level, so their density is that of the
data noised at it (a Gaussian blur of σ(0) ≈ 0.01 standardised units for the linear schedule). The result is
turned into **nats per point in data coordinates**: with x_data = scale·x + mean, log p_data = log p − 2 ln scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from diffvis.core.classes import UNCONDITIONAL
from diffvis.core.flow import LinearPath
from diffvis.core.gaussian_mixture import GaussianMixture
from diffvis.core.guidance import guided
from diffvis.core.ode import TABLEAUS, max_norm, probability_flow
from diffvis.core.schedules import Schedule, SigmaLadder
from diffvis.errors import Cancelled, ConfigError

ADAPTIVE = "dopri5"  # the reference solver: torchdiffeq's Dormand–Prince 5(4) at rtol/atol
METHODS = (ADAPTIVE, *TABLEAUS)  # or a fixed-step Runge–Kutta method
LOG_2PI = math.log(2 * math.pi)
PROGRESS_TICKS = 1000  # ``cancelled(done, PROGRESS_TICKS)``: the share of the u span solved so far


@dataclass(frozen=True)
class Likelihood:
    """log p of each point (N,) in nats, data coordinates, and its parts: log p_start(y_start) (``prior``),
    −∫ ∇·f du (``flow_term``) and the normaliser's −2 ln scale (``scale_term``). With Hutchinson probes,
    ``estimates`` (N, K) holds each probe's log p, ``log_p`` their mean. ``nfe``: model evaluations per point.
    ``path`` (F, N, 2) data-coordinate points of the ODE path from the data (frame 0) to the prior, and
    ``accumulated`` (F, N) −∫_u^{u_end} ∇·f du along it, when frames were asked for."""

    log_p: np.ndarray
    prior: np.ndarray
    flow_term: np.ndarray
    scale_term: float
    nfe: int
    estimates: np.ndarray | None = None
    path: np.ndarray | None = None
    accumulated: np.ndarray | None = None

    @property
    def nll(self) -> tuple[float, float]:
        """The mean negative log-likelihood and its standard error over the points."""
        n = len(self.log_p)
        return float(-self.log_p.mean()), float(self.log_p.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0

    @property
    def probe_spread(self) -> np.ndarray | None:
        """Per point, the standard error of the Hutchinson mean over its probes (None: exact divergence)."""
        if self.estimates is None or self.estimates.shape[1] < 2:
            return None
        return self.estimates.std(axis=1, ddof=1) / math.sqrt(self.estimates.shape[1])


def span(tables) -> tuple[float, float]:
    """(u_start, u_end) of a model's likelihood ODE over its objective's tables (see the module)."""
    if isinstance(tables, Schedule):
        sigmas = np.exp(tables.log_sigmas)
        return float(sigmas[-1]), float(sigmas[0])
    if isinstance(tables, SigmaLadder):
        return float(tables.sigmas[0]), float(tables.sigmas[-1])
    if isinstance(tables, LinearPath):
        return 0.0, 1.0
    raise ConfigError(f"no likelihood ODE over {type(tables).__name__}")


def divergence(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∇·f = ∂f₁/∂y₁ + ∂f₂/∂y₂ per row of (N, 2) f(y), exact, from two autograd passes (rows independent)."""
    d1 = torch.autograd.grad(f[:, 0].sum(), y, retain_graph=True)[0][:, 0]
    d2 = torch.autograd.grad(f[:, 1].sum(), y, retain_graph=True)[0][:, 1]
    return d1 + d2


def hutchinson(f: torch.Tensor, y: torch.Tensor, probes: torch.Tensor) -> torch.Tensor:
    """zᵀ (∂f/∂y) z per row and probe, (N, K), for (N, K, 2) probes z: one vector-Jacobian product each."""
    out = [(torch.autograd.grad((f * z).sum(), y, retain_graph=True)[0] * z).sum(1) for z in probes.unbind(1)]
    return torch.stack(out, dim=1)


def rk_solve(func, state: torch.Tensor, grid: torch.Tensor, tableau) -> list[torch.Tensor]:
    """The explicit Runge–Kutta ``tableau`` over ``grid``: y' = y + h Σ_j b_j k_j, k_j = F(y + h Σ_l a_jl k_l,
    u + c_j h); returns the state at every grid point."""
    out = [state]
    for u, u_next in zip(grid[:-1].tolist(), grid[1:].tolist(), strict=True):
        h, ks = u_next - u, []
        for j, c in enumerate(tableau.c):
            stage = state
            for a, k in zip(tableau.a[j - 1] if j else (), ks, strict=False):
                stage = stage + (h * a) * k
            ks.append(func(torch.tensor(u + c * h), stage))
        state = state + h * sum(b * k for b, k in zip(tableau.b, ks, strict=True))
        out.append(state)
    return out


def log_likelihood(model, tables, points: np.ndarray, normaliser, *, dtype: torch.dtype = torch.float32,
                   method: str = ADAPTIVE, steps: int = 100, spacing: str = "trailing", rtol: float = 1e-5,
                   atol: float = 1e-5, hutchinson_probes: int = 0, seed: int = 0, frames: int = 0,
                   cancelled: Callable[[int, int], bool] | None = None) -> Likelihood:  # fmt: skip
    """log p of ``points`` (N, 2, data coordinates) under ``model`` (callable as model(x, u) for its objective's
    ``tables``, taking points of float type ``dtype``; a class label already bound) through its probability-flow
    ODE (see the module), solved with ``method``: dopri5 at rtol/atol, or a fixed-step method of ``TABLEAUS`` over
    the S = ``steps`` steps its sampler takes (``solver_grid``; a DDPM model's at its ``spacing``).
    ``hutchinson_probes`` K > 0 replaces the exact divergence with K Rademacher probes per point (drawn from
    ``seed``). ``frames`` F ≥ 2 also records the path: for dopri5 at F u evenly spaced from u_end to u_start, for
    a fixed-step method at its S + 1 grid points. ``cancelled(done, PROGRESS_TICKS)`` is asked at each model
    evaluation and stops the solve (``Cancelled``)."""
    if method not in METHODS:
        raise ConfigError(f"the likelihood solver must be one of {', '.join(METHODS)}, got {method!r}")
    ode = probability_flow(model, tables, 1)
    u_start, u_end = span(tables)
    x = torch.as_tensor(normaliser.to_std(np.asarray(points, dtype=np.float64)), dtype=torch.float64)
    y_end = x / ode.scale_of(u_end)
    n = len(x)
    probes = None
    if hutchinson_probes:
        g = torch.Generator().manual_seed(seed)
        probes = torch.randint(0, 2, (n, hutchinson_probes, 2), generator=g).to(torch.float64).mul_(2).sub_(1)
    width = hutchinson_probes or 1
    evaluations, solved = [0], [0]

    def func(u: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        u = float(u)
        share = round(PROGRESS_TICKS * (u_end - u) / (u_end - u_start))  # a trial stage may look past the end
        solved[0] = max(solved[0], min(share, PROGRESS_TICKS - 1))
        if cancelled is not None and cancelled(solved[0], PROGRESS_TICKS):
            raise Cancelled("likelihood cancelled")
        evaluations[0] += 1
        with torch.enable_grad():
            y = state[:, :2].detach().requires_grad_(True)
            f = ode.f(y.to(dtype), u).to(torch.float64)
            div = divergence(f, y)[:, None] if probes is None else hutchinson(f, y, probes)
        return torch.cat([f.detach(), -div.detach()], dim=1)

    state = torch.cat([y_end, torch.zeros(n, width, dtype=torch.float64)], dim=1)
    if method == ADAPTIVE:
        grid = torch.linspace(u_end, u_start, max(frames, 2), dtype=torch.float64)
        states = _dopri5(func, state, grid, rtol, atol)
    else:  # the prior sits where the sampler starts (DDPM's leading spacing starts below T − 1)
        grid = torch.as_tensor(solver_grid(probability_flow(model, tables, steps, spacing), u_end)[::-1].copy())
        u_start = float(grid[-1])
        states = rk_solve(func, state, grid, TABLEAUS[method])
    if cancelled is not None:
        cancelled(PROGRESS_TICKS, PROGRESS_TICKS)  # done: a progress display shows the whole span
    y_start, delta = states[-1][:, :2], states[-1][:, 2:]
    sigma = ode.prior_scale / ode.scale_of(u_start)  # y at u_start ~ N(0, sigma² I)
    prior = (-0.5 * (y_start / sigma).pow(2).sum(1) - LOG_2PI - 2 * math.log(sigma)).numpy()
    end_jacobian = -2 * math.log(ode.scale_of(u_end))  # x = s(u_end) y at the end
    scale_term = -2 * math.log(normaliser.scale)
    estimates = prior[:, None] - delta.numpy() + end_jacobian + scale_term  # Δ(u_start) = ∫ ∇·f du
    path = accumulated = None
    if frames >= 2:
        path = np.stack([normaliser.to_data((s[:, :2] * ode.scale_of(float(u))).numpy())
                         for s, u in zip(states, grid, strict=True)])  # fmt: skip
        accumulated = np.stack([-s[:, 2:].mean(1).numpy() for s in states])
    return Likelihood(estimates.mean(1), prior, -delta.mean(1).numpy() + end_jacobian, scale_term,
                      evaluations[0], estimates if probes is not None else None, path, accumulated)  # fmt: skip


def _dopri5(func, state: torch.Tensor, grid: torch.Tensor, rtol: float, atol: float) -> list[torch.Tensor]:
    """The state at each u of ``grid`` by torchdiffeq's dopri5, every component's error within rtol/atol."""
    from torchdiffeq import odeint  # imported on first use: it loads scipy

    return list(odeint(func, state, grid, rtol=rtol, atol=atol, method=ADAPTIVE, options={"norm": max_norm}))


def solver_grid(ode, u_end: float) -> np.ndarray:
    """The u a fixed-step solve visits, from u_start to u_end: the sampler's own frames (DDIM's timesteps for
    DDPM, geometric noise levels for NCSN, even times for a flow), the singular end σ = 0 replaced by the
    smallest trained level u_end (and dropped where the grid already holds it)."""
    grid = ode.grid.astype(np.float64)
    if ode.singular_end:
        grid = grid[:-1] if grid[-2] == u_end else np.append(grid[:-1], u_end)
    return grid


DENSE_PAIRS = 1 << 21  # points × components of one chunk of an exact point-set model (its score is dense here)


def model_log_likelihood(model, points: np.ndarray, *, label=None, **options) -> Likelihood:
    """log p of ``points`` (data coordinates) under a ``SamplingModel``: a trained run's network, or an exact model
    (of a known distribution, or of a point set: the mixture of its points noised to each level, a density once
    noised). ``label``: a dense class id (log p(x | y)), ``UNCONDITIONAL`` (the network's f(x, t, ∅)), or None:
    for a conditional model the density of what it samples by default, every class in proportion,
    p(x) = Σ_y π_y p(x | y) (all classes in one solve), else the model's only density. ``options`` go to
    ``log_likelihood``. A flow that starts from a data set rather than N(0, I) has no known prior density and is
    refused."""
    if model.source is not None:
        raise ConfigError("this flow starts from a data set, whose density is unknown: log p needs a N(0, I) source")
    n = len(points)
    mixed = label is None and model.classes is not None
    if mixed:
        classes = len(model.classes)
        points = np.tile(points, (classes, 1))
        label = torch.arange(classes).repeat_interleave(n)
    elif isinstance(label, str) and label == UNCONDITIONAL:
        label = None
    elif label is not None:
        label = torch.as_tensor(label).expand(len(points))
    result = _solve_in_chunks(model, points, label, options)
    if not mixed:
        return result
    return class_mixture(result, n, np.log(np.asarray(model.classes.fractions)))


def _solve_in_chunks(model, points: np.ndarray, labels, options: dict) -> Likelihood:
    """``log_likelihood`` of each row for its label (None: unconditional), in chunks that bound the exact
    point-set model's dense work; a chunk's progress is its share of the whole."""
    from diffvis.core.exact import exact_model

    network = model.model
    chunk = len(points)
    if model.exact:
        if network.mixture is None:  # the score of a point set's mixture, differentiable and dense
            mixture = point_mixture(network.points.cpu().numpy(), network.labels)
            network = exact_model(network.points, model.objective, model.schedule, network.labels, mixture)
        chunk = max(1, DENSE_PAIRS // len(network.points))
    dtype = torch.float64 if model.exact else torch.float32
    starts = range(0, len(points), chunk)
    cancelled = options.pop("cancelled", None)
    parts = []
    for k, i in enumerate(starts):
        rows = slice(i, i + chunk)
        in_chunk = None if cancelled is None else (
            lambda done, total, k=k: cancelled(k * total + done, len(starts) * total))  # fmt: skip
        bound = guided(network, None if labels is None else labels[rows])
        parts.append(log_likelihood(bound, model.tables, points[rows], model.normaliser, dtype=dtype,
                                    cancelled=in_chunk, **options))  # fmt: skip
    return parts[0] if len(parts) == 1 else join(parts)


def class_mixture(per_class: Likelihood, n: int, log_weights: np.ndarray) -> Likelihood:
    """log Σ_y π_y p(x | y) from the C·N rows of ``per_class`` (class y's rows y·N … y·N + N − 1); the parts
    (prior, flow term, path) are those of each point's most responsible class, and Hutchinson's estimates mix
    probe by probe."""
    c = len(log_weights)
    joint = per_class.log_p.reshape(c, n) + log_weights[:, None]
    likeliest = joint.argmax(0) * n + np.arange(n)

    def pick(values, axis: int = 0):
        return None if values is None else np.take(values, likeliest, axis=axis)

    estimates = per_class.estimates
    if estimates is not None:
        k = estimates.shape[1]
        estimates = np.logaddexp.reduce(estimates.reshape(c, n, k) + log_weights[:, None, None], axis=0)
    return Likelihood(np.logaddexp.reduce(joint, axis=0), pick(per_class.prior), pick(per_class.flow_term),
                      per_class.scale_term, per_class.nfe, estimates, pick(per_class.path, 1),
                      pick(per_class.accumulated, 1))  # fmt: skip


def point_mixture(points: np.ndarray, labels) -> GaussianMixture:
    """A point set as a mixture of zero-spread components of equal weight (its class ids as their labels)."""
    m = len(points)
    labels = None if labels is None else np.asarray(labels.cpu() if torch.is_tensor(labels) else labels)
    return GaussianMixture(points.astype(np.float64), np.zeros((m, 2, 2)), np.full(m, 1.0 / m), labels)


def join(parts: list[Likelihood]) -> Likelihood:
    """The likelihoods of consecutive chunks of points as one (model evaluations: the most any chunk spent)."""

    def cat(name: str, axis: int = 0):
        values = [getattr(p, name) for p in parts]
        return None if values[0] is None else np.concatenate(values, axis=axis)

    return Likelihood(cat("log_p"), cat("prior"), cat("flow_term"), parts[0].scale_term,
                      max(p.nfe for p in parts), cat("estimates"), cat("path", 1), cat("accumulated", 1))  # fmt: skip
