"""One training loop for the app and the CLI.

Objectives (x_0 from the standardised data, uniform t or noise level):
  ddpm  L = E ‖ε − ε_θ(√ᾱ_t x_0 + √(1 − ᾱ_t) ε, t)‖²                 (Ho et al. 2020, eq. 14)
  ncsn  L = E λ(σ) ½‖s_θ(x_0 + σz, σ) + z/σ‖², λ(σ) = σ²             (Song & Ermon 2019, eq. 6)
  flow  L = E ‖v_θ((1 − t) x₀ + t x₁, t) − (x₁ − x₀)‖², t ~ U[0, 1]  (``diffvis.core.flow``: there x₁ is the data
        point and x₀ its source point, paired by the run's coupling, ``diffvis.core.coupling``)
  edm   L = E λ(σ) ‖D_θ(x₀ + σn; σ) − x₀‖², ln σ ~ N(P_mean, P_std²), λ = 1/c_out²   (Karras et al. 2022, eq. 8:
        ‖F_θ − (x₀ − c_skip x)/c_out‖² with weight 1, ``diffvis.core.parametrization``)
A DDPM network that predicts x₀ or v is regressed on x₀ or v = √ᾱ_t ε − √(1 − ᾱ_t) x₀ instead of ε.
(each as a mean over the two coordinates). Adam with linear warm-up and cosine decay of the learning rate,
gradient-norm clipping, and an exponential moving average of the weights, which is what samples.

A class-conditional network sees each point's label, replaced by ∅ with probability ``p_uncond`` (label dropout,
Ho & Salimans 2021), so that it learns the conditional and the unconditional model at once.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from diffvis.core.classes import NULL_LABEL, Classes
from diffvis.core.coupling import COUPLINGS, REFLOW, PairStream
from diffvis.core.datasets import canonical_name
from diffvis.core.edm import EDM, P_MEAN, P_STD, edm_ladder
from diffvis.core.flow import SOURCES, draw_source, is_source
from diffvis.core.losses import N_BUCKETS, LossTables, bucket_of, loss_terms
from diffvis.core.models import ConditionalMLP, ModelConfig, build_model
from diffvis.core.schedules import Schedule, SigmaLadder
from diffvis.core.validation import check_field_types, check_seed
from diffvis.errors import Cancelled, ConfigError, TrainingDiverged


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one run; validated on construction with the reason in the error."""

    steps: int = 10_000
    batch: int = 1024
    lr: float = 3e-3
    seed: int = 0
    warmup: int = 100
    ema_decay: float = 0.995
    grad_clip: float = 1.0
    schedule: str = "linear"
    timesteps: int = 1000
    levels: int = 10
    sigma_min: float = 0.01
    device: str = "auto"
    report_every: int = 50
    conditional: bool = True  # condition on the data's class labels, when it has two classes or more
    p_uncond: float = 0.1
    source: str = "noise"  # flow: where the paths start, N(0, I) or a built-in data set (``diffvis.core.flow``)
    coupling: str = "independent"  # flow: how source and data points are paired (``diffvis.core.coupling``)
    ot_batch: int = 64  # flow with OT coupling: the sub-batch each exact assignment pairs
    ot_reuse: int = 16  # flow with OT coupling: how many consecutive batches each assigned pair serves
    p_mean: float = P_MEAN  # edm: the mean of ln σ during training
    p_std: float = P_STD  # edm: the standard deviation of ln σ during training

    def __post_init__(self) -> None:
        check_field_types(self)
        check_seed(self.seed)
        object.__setattr__(self, "source", canonical_name(self.source))
        checks = [
            (1 <= self.steps <= 10_000_000, f"steps must be between 1 and 10,000,000, got {self.steps}"),
            (1 <= self.batch <= 1_000_000, f"batch must be between 1 and 1,000,000, got {self.batch}"),
            (math.isfinite(self.lr) and 0 < self.lr <= 1, f"lr must be in (0, 1], got {self.lr}"),
            (self.warmup >= 0, f"warmup must be ≥ 0, got {self.warmup}"),
            (0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1), got {self.ema_decay}"),
            (math.isfinite(self.grad_clip) and self.grad_clip > 0, f"grad_clip must be > 0, got {self.grad_clip}"),
            (2 <= self.levels <= 10_000, f"levels must be between 2 and 10,000, got {self.levels}"),
            (0 < self.sigma_min < 1e3, f"sigma_min must be positive, got {self.sigma_min}"),
            (self.device in ("auto", "cpu", "cuda"), f"device must be auto, cpu or cuda, got {self.device!r}"),
            (self.report_every >= 1, f"report_every must be ≥ 1, got {self.report_every}"),
            (0 <= self.p_uncond < 1, f"p_uncond (the label dropout rate) must be in [0, 1), got {self.p_uncond}"),
            (
                is_source(self.source),
                f"source must be one of {', '.join(SOURCES)} or a point file, got {self.source!r}",
            ),
            (
                self.coupling in (*COUPLINGS, REFLOW),
                f"coupling must be one of {', '.join(COUPLINGS)}, got {self.coupling!r}",
            ),
            (2 <= self.ot_batch <= 4096, f"ot_batch must be between 2 and 4,096, got {self.ot_batch}"),
            (1 <= self.ot_reuse <= 64, f"ot_reuse must be between 1 and 64, got {self.ot_reuse}"),
            (-10 <= self.p_mean <= 5, f"p_mean (the mean of ln σ) must be from −10 to 5, got {self.p_mean}"),
            (0.1 <= self.p_std <= 5, f"p_std (the spread of ln σ) must be from 0.1 to 5, got {self.p_std}"),
            (
                self.coupling != "ot"
                or self.batch % self.ot_reuse == 0
                and (self.batch // self.ot_reuse) % min(self.ot_batch, self.batch // self.ot_reuse) == 0,
                f"with OT coupling the batch ({self.batch}) must "
                f"split into ot_reuse = {self.ot_reuse} parts of whole sub-batches of ot_batch = {self.ot_batch}",
            ),
        ]
        for ok, reason in checks:
            if not ok:
                raise ConfigError(reason)
        Schedule.make(self.schedule, self.timesteps)  # validates kind and T

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        if not isinstance(d, dict):
            raise TypeError(f"the {cls.__name__} must be a JSON object")
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class Progress:
    """A report every ``report_every`` steps: mean loss since the last report and per t (or σ) bucket.

    ``seconds_left`` is the steps left over the rate since the first report (None at the first: its steps carry
    the start-up costs, and would promise hours for a minute's training)."""

    step: int
    total: int
    loss: float
    lr: float
    steps_per_second: float
    bucket_loss: np.ndarray  # (N_BUCKETS,), NaN where a bucket saw no sample
    seconds_left: float | None = None

    def time_left(self) -> str:
        """'estimating time left', '45 s left', '3 min 05 s left' or '2 h 10 min left'."""
        if self.seconds_left is None:
            return "estimating time left"
        s = int(round(self.seconds_left))
        if s < 60:
            return f"{s} s left"
        if s < 3600:
            return f"{s // 60} min {s % 60:02d} s left"
        return f"{s // 3600} h {s % 3600 // 60:02d} min left"


class TrainControl:
    """Thread-safe pause / resume / cancel, checked by the loop between steps."""

    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()
        self._cancelled = threading.Event()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def cancel(self) -> None:
        self._cancelled.set()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def sleep(self, seconds: float) -> bool:
        """Sleep, waking early on cancel; True when the run should stop."""
        return self._cancelled.wait(seconds)

    def wait(self) -> bool:
        """Block while paused; True when the run should stop."""
        self._running.wait()
        return self._cancelled.is_set()


SNAPSHOT_SHARES = (16, 8, 4, 2)  # the EMA weights are kept at 1/16, 1/8, 1/4 and 1/2 of the steps
WEAK_SHARE = 2  # autoguidance's default weak model: the snapshot half-way (the guidance study's best, README)


def snapshot_steps(steps: int) -> tuple[int, ...]:
    """The steps whose EMA weights a run keeps beside its final ones: weaker versions of the same model, which
    autoguidance guides it with (``diffvis.core.guidance``); none below 16 steps."""
    return tuple(steps // share for share in SNAPSHOT_SHARES) if steps >= 16 else ()


def weak_step(steps: int) -> int:
    """The step of autoguidance's default weak model for a run of ``steps`` steps."""
    return steps // WEAK_SHARE


def sigma_ladder(objective: str, sigma_max: float, cfg: TrainConfig) -> SigmaLadder:
    """The noise levels a model of ``objective`` is sampled over: EDM's ρ-spaced range (``edm.edm_ladder``), or
    for the others (NCSN's ladder) ``cfg.levels`` from ``sigma_max`` down to ``cfg.sigma_min`` geometrically."""
    if objective == EDM:
        return edm_ladder(cfg.levels)
    return SigmaLadder.geometric(sigma_max, cfg.sigma_min, cfg.levels)


def resolve_device(name: str) -> torch.device:
    """'auto' → CUDA when torch sees one, else CPU; 'cuda' without one is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for, but torch sees no CUDA GPU")
    return torch.device(name)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 10 % of ``lr`` at the last step."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


class Trainer:
    """Owns the network, its EMA copy, the optimiser and the loss history of one run.

    ``data`` is the standardised training set (N, 2). For 'ncsn' the σ ladder runs from ``sigma_max`` (pass the
    data's largest pairwise distance) down to ``cfg.sigma_min``. A class-conditional model (``classes`` given,
    ``model_config.num_classes`` = their number) also needs ``labels``, the points' dense class ids (N,).
    A 'flow' model's source points are N(0, I), or drawn from ``source`` (M, 2), in the data's standardised
    coordinates; a reflow run (coupling 'reflow') pairs each data row with its row of ``pairs`` (N, 2).
    """

    def __init__(self, data: np.ndarray, model_config: ModelConfig, cfg: TrainConfig, *, sigma_max: float = 1.0,
                 classes: Classes | None = None, labels: np.ndarray | None = None,
                 source: np.ndarray | None = None, pairs: np.ndarray | None = None):  # fmt: skip
        if not np.isfinite(data).all() or len(data) < 2:
            raise ConfigError("training needs at least two finite points")
        if model_config.num_classes != (len(classes) if classes else 0) or (classes is None) != (labels is None):
            raise ConfigError("a class-conditional model needs the classes and a label for every point")
        self.cfg, self.model_config, self.classes = cfg, model_config, classes
        self.device = resolve_device(cfg.device)
        self.data = torch.as_tensor(data, dtype=torch.float32, device=self.device)
        self.labels = None if labels is None else torch.as_tensor(labels, dtype=torch.long, device=self.device)
        self.schedule = Schedule.make(cfg.schedule, cfg.timesteps)
        self.ladder = sigma_ladder(model_config.objective, sigma_max, cfg)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.model = build_model(model_config).to(self.device)
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, fused=True)
        self.generator = torch.Generator(self.device).manual_seed(cfg.seed)
        self.step = 0
        self.loss_history: list[float] = []
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}  # the EMA weights at ``snapshot_steps``, on the CPU
        self.loss_tables = LossTables.of(model_config, cfg, self.schedule, self.ladder, self.device)
        self.source = None if source is None else torch.as_tensor(source, dtype=torch.float32, device=self.device)
        if (cfg.coupling == REFLOW) != (pairs is not None) or (pairs is not None and len(pairs) != len(data)):
            raise ConfigError("a reflow run needs one source point paired with every data point, and only it")
        self.partners = None if pairs is None else torch.as_tensor(pairs, dtype=torch.float32, device=self.device)
        self.pairs: PairStream | None = None  # OT-paired flow batches, from the first batch on

    @property
    def objective(self) -> str:
        return self.model_config.objective

    @property
    def n_conditions(self) -> int:
        """Timesteps T (ddpm) or σ levels L (ncsn); 0 for flow and edm, whose t or σ is continuous (edm draws
        u ~ U[0, 1) and takes ln σ = P_mean + P_std Φ⁻¹(u): bucket 0 holds the smallest σ)."""
        return {"ddpm": self.schedule.T, "ncsn": self.ladder.L}.get(self.objective, 0)

    def buckets(self, k: torch.Tensor) -> torch.Tensor:
        """The loss bucket 0…N_BUCKETS − 1 of each condition (``losses.bucket_of``)."""
        return bucket_of(k, self.n_conditions)

    def per_sample_loss(self, x0: torch.Tensor, k: torch.Tensor, labels: torch.Tensor | None = None,
                        source: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """The objective's loss of each sample (B,), for data points x0, condition indices k (timestep or σ
        level; for flow the times t) and labels; a flow batch's ``source`` points are drawn here when not given."""
        if self.objective == "flow":
            x_src = self.draw_source(len(x0)) if source is None else source
            return loss_terms(self.loss_tables, self.model, x0, k, labels, source=x_src).per_sample
        noise = torch.randn(x0.shape, generator=self.generator, device=self.device)
        return loss_terms(self.loss_tables, self.model, x0, k, labels, noise=noise).per_sample

    def draw_source(self, n: int) -> torch.Tensor:
        """n source points of a flow (``diffvis.core.flow.draw_source``)."""
        return draw_source(self.source, n, self.generator)

    def draw_batch(self) -> tuple[torch.Tensor, ...]:
        """A minibatch: points x0 (B, 2), condition indices k (B,) (flow: times t ~ U[0, 1)) and, for a
        conditional model, their labels (B,), each replaced by ``NULL_LABEL`` with probability ``p_uncond``. A
        flow run with OT coupling, or a reflow run, adds the source points paired with the data points."""
        cfg = self.cfg
        if self.objective == "flow" and cfg.coupling == "ot":
            x_src, points, labels = (None if v is None else v.to(self.device) for v in self._paired())
            source = (x_src,)
        else:
            idx = torch.randint(len(self.data), (cfg.batch,), generator=self.generator, device=self.device)
            points, labels = self.data[idx], None if self.labels is None else self.labels[idx]
            source = () if self.partners is None else (self.partners[idx],)
        if self.n_conditions:
            k = torch.randint(self.n_conditions, (cfg.batch,), generator=self.generator, device=self.device)
        else:
            k = torch.rand(cfg.batch, generator=self.generator, device=self.device)
        if labels is None:
            return (points, k, None, *source)
        dropped = torch.rand(cfg.batch, generator=self.generator, device=self.device) < cfg.p_uncond
        return (points, k, labels.masked_fill(dropped, NULL_LABEL), *source)

    def _paired(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if self.pairs is None:
            data = self.data.cpu().numpy()
            labels = None if self.labels is None else self.labels.cpu().numpy()
            source = None if self.source is None else self.source.cpu().numpy()

            def draw(n: int, rng: np.random.Generator):
                idx = rng.integers(len(data), size=n)
                if source is None:
                    x_src = rng.standard_normal((n, 2), dtype=np.float32)
                else:
                    x_src = source[rng.integers(len(source), size=n)]
                return x_src, data[idx], None if labels is None else labels[idx]

            cfg = self.cfg
            self.pairs = PairStream(draw, batch=cfg.batch, sub_batch=cfg.ot_batch, reuse=cfg.ot_reuse,
                                    seed=cfg.seed + 1)  # fmt: skip
        return self.pairs.next()

    def train_step(self) -> torch.Tensor:
        """One optimiser step; returns the per-sample losses and condition indices, detached."""
        cfg = self.cfg
        batch = self.draw_batch()
        losses = self.per_sample_loss(*batch)
        k = batch[1]
        loss = losses.mean()
        if not math.isfinite(loss.item()):
            raise TrainingDiverged(
                f"the loss became {loss.item()} at step {self.step}; training stopped and the last good "
                "weights were kept (try a smaller learning rate)"
            )
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.step, cfg)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip, foreach=True)
        self.optimizer.step()
        self._update_ema()
        self.step += 1
        if self.step in snapshot_steps(cfg.steps):
            self.snapshots[self.step] = {k: v.detach().cpu().clone() for k, v in self.ema.state_dict().items()}
        return losses.detach(), k

    @torch.no_grad()
    def _update_ema(self) -> None:
        """θ_ema ← d θ_ema + (1 − d) θ, with d warmed up as min(decay, (1 + step)/(10 + step))."""
        d = min(self.cfg.ema_decay, (1 + self.step) / (10 + self.step))
        torch._foreach_lerp_(list(self.ema.parameters()), list(self.model.parameters()), 1 - d)

    def run(self, on_progress: Callable[[Progress], None] | None = None, control: TrainControl | None = None):
        """Train until ``cfg.steps``; report every ``report_every`` steps; raise ``Cancelled`` when asked to."""
        cfg = self.cfg
        sums = torch.zeros(N_BUCKETS, device=self.device)
        counts = torch.zeros(N_BUCKETS, device=self.device)
        t0, since = time.perf_counter(), self.step
        steady: tuple[float, int] | None = None  # (time, step) of the first report: the rate is measured from there
        while self.step < cfg.steps:
            if control is not None and control.wait():
                raise Cancelled(f"training cancelled at step {self.step}")
            losses, k = self.train_step()
            bucket = self.buckets(k)
            sums.index_add_(0, bucket, losses)
            counts.index_add_(0, bucket, torch.ones_like(losses))
            if self.step % cfg.report_every == 0 or self.step == cfg.steps:
                elapsed = time.perf_counter() - t0
                loss = float(sums.sum() / counts.sum())
                self.loss_history.append(loss)
                if on_progress is not None:
                    per_bucket = (sums / counts).cpu().numpy()
                    rate = (self.step - since) / max(elapsed, 1e-9)
                    left = None
                    if steady is not None:
                        steady_rate = (self.step - steady[1]) / max(time.perf_counter() - steady[0], 1e-9)
                        left = (cfg.steps - self.step) / steady_rate
                    lr = lr_at(self.step - 1, cfg)
                    on_progress(Progress(self.step, cfg.steps, loss, lr, rate, per_bucket, left))
                sums.zero_()
                counts.zero_()
                t0, since = time.perf_counter(), self.step
                steady = steady or (t0, self.step)

    def ema_model(self) -> ConditionalMLP:
        """A CPU copy of the EMA network, safe to hand to another thread."""
        return copy.deepcopy(self.ema).cpu().eval()
