"""One ODE layer for every objective: a model as dy/du = f(y, u) on a grid of frames, and the solvers that step it.

Each objective's sampling ODE, in the variables its solvers step (``ProbabilityFlow``):

    objective  state y              u, start → end          f(y, u)                      frame x       end
    flow       x                    t: 0 → 1                v_θ(x, t)                    y             regular
    ddpm       x̃ = x_t / √ᾱ_t      σ = √((1 − ᾱ)/ᾱ): σ_max → 0   ε̂(y/√(1 + σ²), t(σ))  y/√(1 + σ²)   singular
    ncsn, edm  x                    σ: σ_1 → 0              −σ s_θ(x, σ)                 y             singular

(flow: ``diffvis.core.flow``; ddpm: the probability-flow ODE in Karras et al. 2022, eq. 4, whose σ are the S
timesteps DDIM visits; ncsn: the variance-exploding probability flow dx/dσ = −σ ∇ log p_σ(x), Song et al. 2021,
eq. 13, over S levels spaced geometrically from σ_1 to σ_L, then 0; edm: the same ODE, the levels ρ-spaced as in
Karras et al. 2022, eq. 5, and s_θ = (D_θ − x)/σ², so that f = (x − D_θ)/σ, their eq. 3.) In all of them the
clean point the model heads for is one Euler step to the end, x̂ = y + (u_end − u) f(y, u): x̂₁ = x + (1 − t) v,
x̂₀ = x̃ − σ ε̂ and Tweedie's x + σ² s. Every solver writes its update from x̂, which keeps float32 exact where y
and (u_end − u) f nearly cancel (x̃ is ~150 times the data at DDPM's σ_max).

An explicit Runge–Kutta method (c, A, b) steps from u to u' = u + h through the stages k_j = f(y_j, u + c_j h),

    y_j  = x̂ + (u + c_j h − u_end) k₁ + h Σ_l a_jl (k_l − k₁),     y' = x̂ + (u' − u_end) k₁ + h Σ_j b_j (k_j − k₁)

(which is y + h Σ_l a_jl k_l and y + h Σ_j b_j k_j, since Σ_l a_jl = c_j and Σ_j b_j = 1; x̂ itself is computed
from the frame's points, see ``ProbabilityFlow.clean``). Where f is singular
at the end (σ = 0) the last step is an Euler step, landing on x̂ (Karras et al. 2022, Algorithm 1; k-diffusion's
rule for every higher-order sampler). The adaptive Dormand–Prince solver is torchdiffeq's, run from frame to frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from diffvis.core.datasets import Normaliser
from diffvis.core.flow import LinearPath
from diffvis.core.schedules import Schedule, SigmaLadder, ddim_timesteps
from diffvis.core.trajectory import Callback, Recorder, Trajectory, check_init
from diffvis.errors import ConfigError

Drift = Callable[[torch.Tensor, float], torch.Tensor]


@dataclass(frozen=True)
class Tableau:
    """An explicit Runge–Kutta method: nodes c, lower-triangular coefficients a (one row per stage after the
    first) and weights b."""

    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]


TABLEAUS = {
    "euler": Tableau((0.0,), (), (1.0,)),
    "midpoint": Tableau((0.0, 0.5), ((0.5,),), (0.0, 1.0)),
    "heun": Tableau((0.0, 1.0), ((1.0,),), (0.5, 0.5)),
    "rk4": Tableau((0.0, 0.5, 0.5, 1.0), ((0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)), (1 / 6, 1 / 3, 1 / 3, 1 / 6)),
}


@dataclass(frozen=True)
class ProbabilityFlow:
    """A model's sampling ODE dy/du = f(y, u), visited at the frames ``grid`` (u per frame, float64).

    ``drift(x, u)`` is f in terms of the points x = s(u)·y (what the model sees); ``scale_of`` is s(u), and
    ``scale`` its value at each frame. ``times`` is what each frame records as its time, of the kind ``levels``
    names (a DDPM timestep 't' with −1 for clean output, a noise level 'sigma', or a flow's 'time');
    ``prior_scale`` turns N(0, I) noise into frame 0's x; ``singular_end``: f cannot be evaluated at the grid's
    last u."""

    drift: Drift
    grid: np.ndarray
    times: np.ndarray
    levels: str
    scale_of: Callable[[float], float] = lambda u: 1.0
    prior_scale: float = 1.0
    singular_end: bool = False

    @property
    def end(self) -> float:
        return float(self.grid[-1])

    @property
    def scale(self) -> np.ndarray:
        return np.array([self.scale_of(float(u)) for u in self.grid])

    def f(self, y: torch.Tensor, u: float) -> torch.Tensor:
        return self.drift(y * self.scale_of(u), u)

    def clean(self, x: torch.Tensor, u: float, k1: torch.Tensor) -> torch.Tensor:
        """x̂ = y + (u_end − u) f(y, u), the clean point the model heads for, computed from the points x = s·y as
        (x + (u_end − u) s f)/s: for DDPM that is (x_t − √(1 − ᾱ) ε̂)/√ᾱ, whose terms are of the data's size,
        where y and σ ε̂ are each ~σ times larger and cancel."""
        s = self.scale_of(u)
        return torch.add(x, k1, alpha=(self.end - u) * s).div_(s)


def vp_flow(model, schedule: Schedule, steps: int, spacing: str = "trailing") -> ProbabilityFlow:
    """DDPM's probability flow over the S timesteps DDIM visits (``spacing``), then σ = 0."""
    ts = ddim_timesteps(schedule.T, steps, spacing)
    sigmas = np.append(np.exp(schedule.log_sigmas[ts]), 0.0)
    on_grid = dict(zip(sigmas[:-1].tolist(), ts.tolist(), strict=True))  # the trained timesteps, as they are

    def drift(x: torch.Tensor, sigma: float) -> torch.Tensor:
        return model(x, on_grid[sigma] if sigma in on_grid else schedule.timestep_at(sigma))

    return ProbabilityFlow(drift, sigmas, np.append(ts, -1).astype(np.float32), "t", vp_scale,
                           singular_end=True)  # fmt: skip


def vp_scale(sigma: float) -> float:
    """√ᾱ = 1/√(1 + σ²): x_t = √ᾱ x̃."""
    return 1.0 / float(np.sqrt(1.0 + sigma * sigma))


def ve_flow(model, ladder: SigmaLadder, steps: int) -> ProbabilityFlow:
    """The variance-exploding probability flow (NCSN, EDM) over S levels from σ_1 to σ_L spaced as the ladder says
    (geometrically for NCSN, ρ-spaced for EDM), then σ = 0; frame 0 is σ_1·x_T."""
    sigmas = np.append(ladder.spaced(steps), 0.0)

    def drift(x: torch.Tensor, sigma: float) -> torch.Tensor:
        return model(x, sigma).mul_(-sigma)

    return ProbabilityFlow(drift, sigmas, sigmas.astype(np.float32), "sigma", prior_scale=float(ladder.sigmas[0]),
                           singular_end=True)  # fmt: skip


def linear_flow(model, path: LinearPath, steps: int) -> ProbabilityFlow:
    """A flow model's ODE dx/dt = v(x, t) over t_k = k/S."""
    grid = path.grid(steps)
    return ProbabilityFlow(lambda x, t: model(x, t), grid, grid.astype(np.float32), "time")


def probability_flow(model, tables, steps: int, spacing: str = "trailing") -> ProbabilityFlow:
    """The ODE of ``model`` over its objective's tables: a DDPM ``Schedule``, an NCSN ``SigmaLadder`` or a flow's
    ``LinearPath``. ``spacing`` places a DDPM model's steps; the others step as their tables say."""
    if isinstance(tables, Schedule):
        return vp_flow(model, tables, steps, spacing)
    if isinstance(tables, SigmaLadder):
        return ve_flow(model, tables, steps)
    if isinstance(tables, LinearPath):
        return linear_flow(model, tables, steps)
    raise ConfigError(f"no probability flow over {type(tables).__name__}")


def rk_step(ode: ProbabilityFlow, tableau: Tableau, y: torch.Tensor, u: float, h: float, k1: torch.Tensor,
            x_hat: torch.Tensor, stages: list | None = None) -> torch.Tensor:  # fmt: skip
    """One step of ``tableau`` from (y, u) with its first stage k₁ and x̂ already computed (see the module); its
    stages k₁ … k_s are appended to ``stages`` when given."""
    ks = [k1] if stages is None else stages
    ks[:] = [k1]
    for c, row in zip(tableau.c[1:], tableau.a, strict=True):
        y_j = torch.add(x_hat, k1, alpha=u + c * h - ode.end)
        for a, k in zip(row, ks, strict=False):
            if a:
                y_j.add_(k - k1, alpha=h * a)
        ks.append(ode.f(y_j, u + c * h))
    y_next = torch.add(x_hat, k1, alpha=u + h - ode.end)
    for b, k in zip(tableau.b[1:], ks[1:], strict=True):
        if b:
            y_next.add_(k - k1, alpha=h * b)
    return y_next


def max_norm(scaled_error: torch.Tensor) -> torch.Tensor:
    """The step's error norm: the worst particle's, not torchdiffeq's root mean square over the batch, in which
    a few particles on a sharp stretch of the field would be averaged away by the many on smooth ones."""
    return scaled_error.abs().max()


def dopri5_segment(ode: ProbabilityFlow, y: torch.Tensor, u: float, u_next: float, k1: torch.Tensor, rtol: float,
                   atol: float) -> torch.Tensor:  # fmt: skip
    """y at u_next by torchdiffeq's adaptive Dormand–Prince 5(4), every particle's error within (rtol, atol)
    (``max_norm``), never evaluating f past u_next. Its first evaluation, f(y, u), is k₁, already known."""
    from torchdiffeq import odeint  # imported on first use: it loads scipy

    first = [k1]

    def func(t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return first.pop() if first else ode.f(state, float(t))

    span = torch.tensor([u, u_next], dtype=torch.float64)
    # the first step tries the whole segment (torchdiffeq's own first guess probes f beyond it), and step_t ends
    # at u_next any step that would pass it: f is never asked for outside the segment (σ < 0 is undefined)
    options = {"norm": max_norm, "step_t": span[1:], "first_step": abs(u_next - u)}
    return odeint(func, y, span, rtol=rtol, atol=atol, method="dopri5", options=options)[-1]


Step = Callable[[torch.Tensor, float, float, torch.Tensor, torch.Tensor], torch.Tensor]


def stepper(ode: ProbabilityFlow, method: str, rtol: float, atol: float, stages: list | None = None) -> Step:
    """step(y, u, u_next, k₁, x̂) → y at u_next (a Runge–Kutta step's stages, or DPM-Solver++'s D, into ``stages``
    when given), for a Runge–Kutta ``method`` (a key of ``TABLEAUS``),
    'dopri5', or 'dpmpp_2m': DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2) on an ODE whose u is a σ (ddpm, ncsn, edm),
    with λ = −log σ and h = λ' − λ: y' = (σ'/σ) y − (e^{−h} − 1) D, D = x̂ on the first step and
    (1 + 1/2r) x̂ − (1/2r) x̂_prev after it, r = h_prev/h."""
    if method in TABLEAUS:
        tableau = TABLEAUS[method]
        return lambda y, u, u_next, k1, x_hat: rk_step(ode, tableau, y, u, u_next - u, k1, x_hat, stages)
    if method == "dopri5":
        return lambda y, u, u_next, k1, x_hat: dopri5_segment(ode, y, u, u_next, k1, rtol, atol)
    if method != "dpmpp_2m" or ode.end != 0.0:
        raise ConfigError(f"no {method} solver for this model's ODE")
    previous: dict = {}

    def dpmpp_2m(y, sigma, sigma_next, k1, x_hat):
        h = float(np.log(sigma / sigma_next))
        d = x_hat
        if previous:
            r = previous["h"] / h
            d = (1 + 1 / (2 * r)) * x_hat - (1 / (2 * r)) * previous["x_hat"]
        previous.update(h=h, x_hat=x_hat.clone())
        if stages is not None:
            stages[:] = [d]
        return (sigma_next / sigma) * y - float(np.expm1(-h)) * d

    return dpmpp_2m


def first_stage(ode: ProbabilityFlow, x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """k₁ = f(y_k, u_k) and the clean point x̂ of frame k's points x = s(u_k) y_k."""
    u = float(ode.grid[k])
    k1 = ode.drift(x, u)
    return k1, ode.clean(x, u, k1)


def next_state(ode: ProbabilityFlow, step: Step, y: torch.Tensor, k: int, k1: torch.Tensor,
               x_hat: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """y_{k+1}: the solver's step from (y_k, u_k), or x̂ on the last step of an ODE singular at its end."""
    if ode.singular_end and k == len(ode.grid) - 2:
        return x_hat
    return step(y, float(ode.grid[k]), float(ode.grid[k + 1]), k1, x_hat)


def solve(model, x_T: torch.Tensor, tables, *, method: str, steps: int, spacing: str = "trailing",
          rtol: float = 1e-5, atol: float = 1e-5, callback: Callback | None = None,
          normaliser: Normaliser | None = None, start: int | None = None) -> Trajectory:  # fmt: skip
    """Solve ``model``'s probability flow (see ``probability_flow``) from noise x_T with ``method`` (see
    ``stepper``), recording the S + 1 frames. With ``start`` = k, x_T is the points of frame k and the steps
    before it are skipped."""
    check_init(x_T)
    rec = Recorder(x_T, np.zeros(steps + 1), callback, start)  # S + 1 frames; their times come with the ODE
    ode = probability_flow(rec.counted(model), tables, steps, spacing)
    rec.times = ode.times
    step = stepper(ode, method, rtol, atol)
    if start is None:
        rec.frames[0] *= ode.prior_scale
    y = rec.frames[rec.start] / ode.scale_of(float(ode.grid[rec.start]))
    for k in range(rec.start, steps):
        k1, x_hat = first_stage(ode, rec.frames[k], k)
        rec.x0_hat[k] = x_hat
        rec.report(k)
        y = next_state(ode, step, y, k, k1, x_hat)
        torch.mul(y, ode.scale_of(float(ode.grid[k + 1])), out=rec.frames[k + 1])
        rec.arrived(k + 1)
    rec.x0_hat[steps] = rec.frames[steps]
    rec.report(steps)
    params = {"steps": steps, **({"spacing": spacing} if isinstance(tables, Schedule) else {}),
              **({"rtol": rtol, "atol": atol} if method == "dopri5" else {})}  # fmt: skip
    return rec.finish(method, params, normaliser, ode.levels)


def ode_sampler(method: str) -> Callable[..., Trajectory]:
    """A sampler (the registry's contract) that solves a model's probability flow with ``method``."""

    @torch.inference_mode()
    def sample(model, x_T: torch.Tensor, tables, *, steps: int = 50, spacing: str = "trailing", rtol: float = 1e-5,
               atol: float = 1e-5, generator: torch.Generator | None = None, callback: Callback | None = None,
               normaliser: Normaliser | None = None, start: int | None = None) -> Trajectory:  # fmt: skip
        del generator  # deterministic: accepted so that every sampler takes the same arguments
        return solve(model, x_T, tables, method=method, steps=steps, spacing=spacing, rtol=rtol, atol=atol,
                     callback=callback, normaliser=normaliser, start=start)  # fmt: skip

    sample.__name__ = f"sample_{method}"
    sample.__doc__ = f"Solve the model's probability flow from x_T with {method} in ``steps`` steps (see the module)."
    return sample


sample_euler, sample_midpoint, sample_heun, sample_rk4, sample_dopri5, sample_dpmpp_2m = (
    ode_sampler(m) for m in ("euler", "midpoint", "heun", "rk4", "dopri5", "dpmpp_2m")
)
