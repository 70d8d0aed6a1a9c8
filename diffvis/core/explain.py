"""The filled-in equation of one step of a trajectory: the sampler's update in the paper's notation, with the
numbers of frame k for one point substituted (``step_terms``), as text, LaTeX or JSON. One function serves the
``explain`` command and the app's formula panel."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace

import numpy as np
import torch

from diffvis.core.classes import NULL_LABEL
from diffvis.core.guidance import guided, noise_level
from diffvis.core.registry import SamplerInfo
from diffvis.core.request import SampleRequest
from diffvis.core.run import SamplingModel
from diffvis.core.step_terms import StepTerms, Term, vec
from diffvis.core.trajectory import Trajectory
from diffvis.errors import ConfigError


@dataclass(frozen=True)
class Explanation:
    """Step ``frame`` → ``frame`` + 1 of ``point`` (or, for the forward process, frame ``frame`` itself) by the
    update ``formula`` (and its ``latex``) of ``title`` (``name`` as the registry spells it) from ``paper``; the
    ``step``'s terms are standardised, ``result_data`` the result in data coordinates (the next frame's point)."""

    name: str
    title: str
    paper: str
    formula: str
    latex_formula: str
    frame: int
    point: int
    step: StepTerms
    result_data: np.ndarray
    note: str = ""
    heading: str = ""  # what the explanation is of, e.g. 'frame 12 → 13, point 3' (the default)

    @classmethod
    def of_sampler(cls, info: SamplerInfo, frame: int, point: int, step: StepTerms, result_data: np.ndarray,
                   note: str = "") -> Explanation:  # fmt: skip
        return cls(info.name, info.title, info.paper, info.formula, info.latex, frame, point, step, result_data, note)

    @property
    def where(self) -> str:
        return self.heading or f"frame {self.frame} → {self.frame + 1}, point {self.point}"

    def substituted(self, latex: bool = False) -> str:
        """The result as its combination with today's numbers, e.g. 'x_prev = 0.231·x̂₀ + 0.973·ε̂'."""
        pairs = [(c, next(t for t in self.step.terms if t.symbol == s)) for c, s in self.step.combination]
        parts = []
        for c, term in pairs:
            name = term.latex if latex else term.symbol
            name = f"({name})" if name[:1] in "−-" else name
            sign = ("-" if latex else "−") if c < 0 else "+"
            times = r" \cdot " if latex else "·"
            parts.append(f"{sign} {name}" if abs(c) == 1 else f"{sign} {abs(c):.6g}{times}{name}")
        body = " ".join(parts).removeprefix("+ ")
        head = self.step.result.latex if latex else self.step.result.symbol
        return f"{head} = {body}" if body else head

    def text(self) -> str:
        """The equation, its numbers and its result, as lines for a terminal or lecture notes."""
        step = self.step
        lines = [f"{self.title} ({self.paper}): {self.where}", f"  {self.formula}", f"  ({self.note})"]
        width = max(_width(t.symbol) for t in step.terms)
        lines += [f"  {t.symbol}{' ' * (width - _width(t.symbol))} = {number_text(t.value)}" for t in step.terms]
        lead = f"  {self.substituted()}\n  {' ' * _width(step.result.symbol)} = " if step.combination else "  "
        if not step.combination:
            lead += f"{step.result.symbol} = "
        data = f", in data coordinates {number_text(self.result_data)}" if step.result.is_vector else ""
        lines.append(f"{lead}{number_text(step.result.value)}{data}")
        return "\n".join(lines)

    def latex(self) -> str:
        """The update and its numbers as a LaTeX ``align*`` block."""
        rows = [self.latex_formula.replace("=", "&=", 1)]
        rows += [f"{t.latex} &= {_latex_number(t.value)}" for t in self.step.terms]
        if self.step.combination:
            head, body = self.substituted(latex=True).split(" = ", 1)
            rows.append(f"{head} &= {body}")
        rows.append(f"{self.step.result.latex} &= {_latex_number(self.step.result.value)}")
        return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"

    def to_dict(self) -> dict:
        """The numbers as JSON-able values (vectors as [x, y], standardised; the result also in data units)."""
        return {"sampler": self.name, "frame": self.frame, "point": self.point, "formula": self.formula,
                "terms": {t.symbol: _plain(t.value) for t in self.step.terms},
                "combination": [[c, s] for c, s in self.step.combination],
                "result": {"symbol": self.step.result.symbol, "standardised": _plain(self.step.result.value),
                           "data": _plain(self.result_data)}}  # fmt: skip


def _width(symbol: str) -> int:
    """How many columns ``symbol`` takes: its combining accents (the hat of ε̂) take none."""
    return sum(not unicodedata.combining(c) for c in symbol)


def _plain(value):
    return [float(v) for v in value] if isinstance(value, np.ndarray) else value


def number_text(value) -> str:
    """A term's value as text: a number to 6 significant digits, a vector as (x, y)."""
    if isinstance(value, np.ndarray):
        return f"({value[0]:.6g}, {value[1]:.6g})"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _latex_number(value) -> str:
    if isinstance(value, np.ndarray):
        return rf"\begin{{pmatrix}} {value[0]:.6g} \\ {value[1]:.6g} \end{{pmatrix}}"
    return number_text(value)


def explain_frame(model: SamplingModel, request: SampleRequest, traj: Trajectory, point: int,
                  frame: int) -> Explanation:  # fmt: skip
    """Step ``frame`` → ``frame`` + 1 of ``point`` in ``traj``, which ``request`` sampled from ``model``: the model
    evaluated again at the point (guided for its class as the sampler was), the step's noise drawn again."""
    if not 0 <= point < traj.frames.shape[1]:
        raise ConfigError(f"the point must be between 0 and {traj.frames.shape[1] - 1}, got {point}")
    if not 0 <= frame < traj.steps:
        raise ConfigError(f"the frame must be between 0 and {traj.steps - 1} (the last step's start), got {frame}")
    if not np.isfinite(traj.frames[frame, point]).all():
        raise ConfigError(f"point {point} has no position at frame {frame} (it starts later)")
    request = request.bound(model.objective)
    info = request.info
    params = info.resolve(request.params, model.objective)
    path = torch.as_tensor(model.normaliser.to_std(traj.frames[:, point].astype(np.float64)), dtype=torch.float32)
    path = path.to(model.device)[:, None, :]
    noise = traj.noise(frame)
    z = None if noise is None else torch.as_tensor(noise[point : point + 1], device=model.device)
    label = None if traj.labels is None else torch.as_tensor(traj.labels[point : point + 1], device=model.device)
    kwargs = request.sampler_kwargs()
    guidance, tables = float(kwargs.get("guidance", 1.0)), model.tables
    net = guided(model.model, label, guidance, weak=model.guide, interval=kwargs.get("interval"),
                 level=noise_level(tables))  # fmt: skip
    first: list = []  # the (x, condition) of the step's first model evaluation: its guidance is spelled out

    def evaluate(x, t):
        first.append((x, t)) if not first else None
        return net(x, t)

    with torch.inference_mode():
        step = info.explain(evaluate, path, frame, z, tables, params)
        if guidance != 1.0:
            step = replace(step, terms=step.terms + _guidance_terms(model, label, guidance, *first[0]))
    result = model.normaliser.to_data(step.result.value[None])[0]
    note = "vectors in standardised coordinates"
    if guidance != 1.0:
        reference = "a weaker model's" if model.guide is not None else "the unconditional"
        note += f"; the model's output is guided at w = {guidance:g} towards the class, away from {reference}"
    if not step.combination:
        note += "; the solver picks its own steps between the frames"
    return Explanation.of_sampler(info, frame, point, step, np.asarray(result, dtype=np.float64), note)


OUTPUT = {"ddpm": ("ε", r"\epsilon"), "flow": ("v", "v")}  # what a model of the objective outputs; else a score


def _guidance_terms(model: SamplingModel, label, w: float, x: torch.Tensor, t) -> tuple[Term, ...]:
    """The guided output at the step's first evaluation spelled out: f̃ = f_ref + w (f_c − f_ref), f_ref the
    unconditional f(x, t, ∅) (CFG) or the weak model's f_weak(x, t, c) (autoguidance); at a level outside the
    guidance interval the sampler used f_c itself."""
    f, tex = OUTPUT.get(model.objective, ("s", "s"))
    conditional = model.model(x, t, label)
    if model.guide is not None:
        reference, ref_name, ref_tex = model.guide(x, t, label), f"{f}_weak", rf"{tex}_\mathrm{{weak}}"
    else:
        null = torch.full((len(x),), NULL_LABEL, dtype=torch.long, device=x.device)
        reference, ref_name, ref_tex = model.model(x, t, null), f"{f}_∅", rf"{tex}_\varnothing"
    guided_output = torch.lerp(reference, conditional, w)
    return (Term("w", "w", w), Term(f"{f}_c", rf"{tex}_c", vec(conditional)),
            Term(ref_name, ref_tex, vec(reference)),
            Term(f"{f}̃ = {ref_name} + w ({f}_c − {ref_name})", rf"\tilde {tex}", vec(guided_output)))  # fmt: skip
