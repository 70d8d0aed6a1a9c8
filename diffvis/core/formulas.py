"""What the views other than the samplers' explain, as ``explain.Explanation``s: the forward process at a frame,
a clicked point's log-likelihood, a score or velocity field's arrow, and one training example's loss. Each
recomputes its numbers with the function the view's picture comes from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from diffvis.core.explain import Explanation, number_text
from diffvis.core.flow import draw_source
from diffvis.core.forward import q_sample
from diffvis.core.losses import N_BUCKETS, LossTables, LossTerms, bucket_of, loss_terms
from diffvis.core.parametrization import score_from_eps
from diffvis.core.registry import OBJECTIVES
from diffvis.core.run import SamplingModel
from diffvis.core.step_terms import StepTerms, Term, vec
from diffvis.errors import ConfigError

FORWARD = ("x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε", r"x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon")


def explain_noising(x0: np.ndarray, eps: np.ndarray, abar: float, t: int, point: int, normaliser) -> Explanation:
    """Frame t of the forward process for one point: x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε (Ho et al. 2020, eq. 4) with its
    clean point x₀ and its fixed noise ε (standardised, (2,)); ``normaliser`` gives the data coordinates (None:
    the standardised ones)."""
    x_t = q_sample(np.asarray(x0, np.float64), abar, np.asarray(eps, np.float64))
    terms = (Term("t", "t", t), Term("ᾱ_t", r"\bar\alpha_t", abar), Term("x₀", "x_0", np.asarray(x0, np.float64)),
             Term("ε", r"\epsilon", np.asarray(eps, np.float64)))  # fmt: skip
    step = StepTerms(terms, Term("x_t", "x_t", x_t), ((abar**0.5, "x₀"), ((1 - abar) ** 0.5, "ε")))
    result = x_t if normaliser is None else np.asarray(normaliser.to_data(x_t[None])[0], dtype=np.float64)
    return Explanation(
        "forward",
        "Forward process",
        "Ho et al. 2020, eq. 4",
        *FORWARD,
        t,
        point,
        step,
        result,
        "vectors in standardised coordinates; ε is fixed per point",
        f"t = {t}, point {point}",
    )


LOG_DENSITY = ("log p(x) = log p_{start}(y_{start}) − ∫ ∇·f du − 2 ln s",
               r"\log p(x) = \log p_\mathrm{start}(y_\mathrm{start}) - \int \nabla \cdot f \, du"
               r" - 2 \ln s")  # fmt: skip


def explain_log_density(probe) -> Explanation:
    """A clicked point's log-likelihood through the model's ODE (a ``density.DensityProbe``): the prior's log p
    where the path from x ends, minus the divergence integrated along it, minus 2 ln s for the normaliser's scale s
    (Chen et al. 2018; Song et al. 2021, §4.3); nats, data coordinates."""
    prior, flow, scale = "log p_{start}(y_{start})", "−∫ ∇·f du", "−2 ln s"
    terms = (Term("x", "x", np.asarray(probe.point, np.float64)),
             Term("y_{start}", r"y_\mathrm{start}", np.asarray(probe.path[-1], np.float64)),
             Term(prior, r"\log p_\mathrm{start}(y_\mathrm{start})", float(probe.prior)),
             Term(flow, r"-\int \nabla \cdot f \, du", float(probe.flow_term)),
             Term(scale, r"-2 \ln s", float(probe.scale_term)),
             Term("NFE", r"\mathrm{NFE}", int(probe.nfe)))  # fmt: skip
    step = StepTerms(
        terms, Term("log p(x)", r"\log p(x)", float(probe.log_p)), ((1.0, prior), (1.0, flow), (1.0, scale))
    )
    x, y = probe.point
    return Explanation("likelihood", "Log-likelihood through the ODE", "Chen et al. 2018; Song et al. 2021, §4.3",
                       *LOG_DENSITY, 0, 0, step, np.float64(probe.log_p),
                       "nats per point, in data coordinates; y_start is where the ODE path from x ends",
                       f"the clicked point ({x:.4g}, {y:.4g})")  # fmt: skip


FIELDS = {  # what a score view's arrow at x is, by what a model's levels are (``ObjectiveInfo.levels``)
    "t": ("s_θ(x, t) = −ε̂(x, t)/√(1 − ᾱ_t)", r"s_\theta(x, t) = -\frac{\hat\epsilon(x, t)}{\sqrt{1 - \bar\alpha_t}}",
          "the score of a noise predictor (Song et al. 2021)"),
    "sigma": ("s_θ(x, σ) ≈ ∇ log p_σ(x)", r"s_\theta(x, \sigma) \approx \nabla \log p_\sigma(x)",
              "denoising score matching (Song & Ermon 2019)"),
    "time": ("v_θ(x, t) ≈ E[x₁ − x₀ | x_t = x]", r"v_\theta(x, t) \approx E[x_1 - x_0 \mid x_t = x]",
             "flow matching (Lipman et al. 2023)"),
}  # fmt: skip


def explain_field(model: SamplingModel, net, point: np.ndarray, level: float, index: int) -> Explanation:
    """The arrow of a score (or velocity) field at grid point ``point`` (data coordinates) and ``level`` (a
    timestep, σ or flow time), as ``fields.field_series`` computes it with ``net`` (the model, guided as the field
    is): for a DDPM model s = −ε̂/√(1 − ᾱ_t) (``parametrization.score_from_eps``); the result in standardised units
    and in data units (a score ÷ the normaliser's scale, a velocity × it)."""
    norm, kind = model.normaliser, OBJECTIVES[model.objective].levels
    x = torch.as_tensor(norm.to_std(np.asarray(point, np.float64)[None]), dtype=torch.float32).to(model.device)
    with torch.inference_mode():
        if kind == "t":
            t = int(level)
            abar = float(model.schedule.alphas_cumprod[t])
            eps = net(x, t)
            out = score_from_eps(eps, abar)
            terms = (Term("t", "t", t), Term("ᾱ_t", r"\bar\alpha_t", abar), Term("x", "x", vec(x)),
                     Term("ε̂", r"\hat\epsilon", vec(eps)))  # fmt: skip
            combination = ((-1 / (1 - abar) ** 0.5, "ε̂"),)
        else:
            name = "σ" if kind == "sigma" else "t"
            out = net(x, float(level))
            terms, combination = (
                (Term(name, r"\sigma" if kind == "sigma" else "t", float(level)), Term("x", "x", vec(x))),
                (),
            )
    symbol = "v_θ" if kind == "time" else "s_θ"
    step = StepTerms(terms, Term(symbol, symbol.replace("θ", r"_\theta"), vec(out)), combination)
    data = vec(out) * norm.scale if kind == "time" else vec(out) / norm.scale
    text, latex, paper = FIELDS[kind]
    what = "velocity" if kind == "time" else "score"
    return Explanation(f"{what} field", f"The {what} field", paper, text, latex, 0, index, step, data,
                       f"x and the arrow in standardised units; in data units the {what} is {number_text(data)}",
                       f"grid point {index} at ({point[0]:.3g}, {point[1]:.3g})")  # fmt: skip


LOSSES = {  # each objective's per-sample loss as its paper writes it (``core.losses``)
    "ddpm": ("L = ½ ‖F_θ(x_t, t) − target‖²,  x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε",
             r"L = \tfrac12 \lVert F_\theta(x_t, t) - \mathrm{target} \rVert^2", "Ho et al. 2020, Algorithm 1"),
    "ncsn": ("L = ½ ‖σ_i s_θ(x, σ_i) + ε‖²,  x = x₀ + σ_i ε",
             r"L = \tfrac12 \lVert \sigma_i s_\theta(x, \sigma_i) + \epsilon \rVert^2",
             "Song & Ermon 2019, eq. 6 (σ²-weighted)"),
    "edm": ("L = ½ ‖F_θ(c_in x; c_noise) − (x₀ − c_skip x)/c_out‖²,  x = x₀ + σ ε",
            r"L = \tfrac12 \lVert F_\theta - \frac{x_0 - c_\mathrm{skip} x}{c_\mathrm{out}} \rVert^2",
            "Karras et al. 2022, eq. 8"),
    "flow": ("L = ½ ‖v_θ(x_t, t) − (x₁ − x₀)‖²,  x_t = (1 − t) x₀ + t x₁",
             r"L = \tfrac12 \lVert v_\theta(x_t, t) - (x_1 - x_0) \rVert^2", "Lipman et al. 2023, eq. 23"),
}  # fmt: skip
CONDITION = {"ddpm": ("t", "t"), "ncsn": ("σ_i", r"\sigma_i"), "edm": ("σ", r"\sigma"), "flow": ("t", "t")}


@dataclass(frozen=True)
class DataLosses:
    """The loss of every training point under a run's EMA network, each with its own draw from a seed: the
    condition indices ``k`` (N,), the draws (``noise`` or a flow's ``source``, (N, 2)), the ``terms`` and the
    per-point ``losses`` (N,); ``count`` is the number of discrete conditions (0: continuous)."""

    tables: LossTables
    x0: torch.Tensor
    k: torch.Tensor
    draws: dict
    terms: LossTerms
    losses: torch.Tensor
    count: int

    def per_bucket(self) -> np.ndarray:
        """(N_BUCKETS,) the mean loss of the points whose condition falls in each bucket (NaN: none)."""
        bucket = bucket_of(self.k, self.count).cpu().numpy()
        losses = self.losses.cpu().numpy()
        return np.array([losses[bucket == b].mean() if (bucket == b).any() else np.nan for b in range(N_BUCKETS)])


def data_losses(run, points: np.ndarray, labels: np.ndarray | None, seed: int = 0) -> DataLosses:
    """``DataLosses`` of ``points`` (data coordinates; ``labels`` their dense class ids) under ``run``."""
    objective, net = run.objective, run.ema
    device = next(net.parameters()).device
    tables = LossTables.of(run.model_config, run.train_config, run.schedule, run.ladder, device)
    x0 = torch.as_tensor(run.normaliser.to_std(np.asarray(points, np.float64)), dtype=torch.float32, device=device)
    y = None if labels is None or run.classes is None else torch.as_tensor(labels, dtype=torch.long, device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    count, n = {"ddpm": run.schedule.T, "ncsn": run.ladder.L}.get(objective, 0), len(x0)
    if count:
        k = torch.randint(count, (n,), generator=generator, device=device)
    else:
        k = torch.rand(n, generator=generator, device=device)
    if objective == "flow":
        source = SamplingModel.of_run(run).source
        draws = {"source": draw_source(None if source is None else source.to(device), n, generator)}
    else:
        draws = {"noise": torch.randn(n, 2, generator=generator, device=device)}
    with torch.inference_mode():
        terms = loss_terms(tables, net, x0, k, y, **draws)
    return DataLosses(tables, x0, k, draws, terms, terms.per_sample, count)


def explain_training_example(run, points: np.ndarray, labels: np.ndarray | None, index: int,
                             seed: int = 0) -> Explanation:  # fmt: skip
    """The loss of training point ``index`` under ``run``'s EMA network, term by term (``data_losses``), beside the
    mean over all the points' draws."""
    if not 0 <= index < len(points):
        raise ConfigError(f"the training point must be between 0 and {len(points) - 1}, got {index}")
    d = data_losses(run, points, labels, seed)
    objective, tables, x0, k, terms, losses, count, n = (run.objective, d.tables, d.x0, d.k, d.terms, d.losses,
                                                         d.count, len(d.x0))  # fmt: skip
    extra = d.draws
    i = index
    name, tex = CONDITION[objective]
    condition = int(k[i]) if count else float(terms.condition[i])
    shown = [Term(name, tex, condition)]
    if objective == "ddpm":
        shown.append(Term("ᾱ_t", r"\bar\alpha_t", float(tables.abar[k[i]])))
    shown += [Term("x₀", "x_0", vec(x0[i]))]
    if objective == "flow":
        shown = [shown[0], Term("x₀ (source)", r"x_0", vec(extra["source"][i])), Term("x₁ (data)", "x_1", vec(x0[i]))]
    else:
        shown.append(Term("ε", r"\epsilon", vec(extra["noise"][i])))
    shown += [Term("input", r"x", vec(terms.inputs[i])), Term("output", r"F_\theta", vec(terms.output[i])),
              Term("target", r"\mathrm{target}", vec(terms.target[i])),
              Term(f"mean L over the {n:,} points", r"\bar L", float(losses.mean()))]  # fmt: skip
    text, latex, paper = LOSSES[objective]
    step = StepTerms(tuple(shown), Term("L", "L", float(losses[i])), ())
    return Explanation("loss", "Training loss", paper, text, latex, 0, i, step, np.float64(losses[i]),
                       f"one draw per point from seed {seed}, at the network of step {run.step:,}; "
                       "vectors in standardised coordinates", f"training point {i}")  # fmt: skip
