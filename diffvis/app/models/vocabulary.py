"""The sampling choices the app makes that the registry does not hold yet, in one place: the only module of
diffvis/app that names a sampler or an objective. Each function becomes one line reading a registry field:

- ``full_sampler(objective)``: the sampler that runs an objective's models in full (``ObjectiveInfo.full_sampler``);
- ``probe_sampler(objective)``: the sampler and settings a score view's probe follows down its levels
  (``ObjectiveInfo.probe_sampler``, ``ObjectiveInfo.probe_params``);
- ``preview_sampler(objective)``: the quick sampler of training previews (``ObjectiveInfo.preview_sampler``,
  ``ObjectiveInfo.preview_params``);
- ``counts_sigmas(sampler)``: whether a sampler's frames are noise levels σ rather than timesteps t
  (``SamplerInfo.levels == "sigma"``);
- ``SCORE_OBJECTIVE``: the objective of score networks on a σ ladder, whose models the Langevin view animates
  (``next(o for o in OBJECTIVES.values() if o.levels == "sigma")``).
"""

from __future__ import annotations

SCORE_OBJECTIVE = "ncsn"
_FULL = {"ddpm": "ddpm", "ncsn": "langevin"}
_PROBE = {"ddpm": ("ddim", {"eta": 0.0, "spacing": "linspace"}), "ncsn": ("langevin", {})}  # the probability flow
_PREVIEW = {"ddpm": ("ddim", {"steps": 25}), "ncsn": ("langevin", {"steps_per_level": 10})}


def full_sampler(objective: str) -> str:
    return _FULL[objective]


def probe_sampler(objective: str) -> tuple[str, dict]:
    return _PROBE[objective]


def preview_sampler(objective: str) -> tuple[str, dict]:
    return _PREVIEW[objective]


def counts_sigmas(sampler: str) -> bool:
    return sampler == _FULL[SCORE_OBJECTIVE]
