"""Parsed command-line arguments turned into what the core takes: a ``SampleRequest`` and the model it samples.

Every sampler setting on the command line is the registry's; a setting the chosen sampler does not take is
refused, never ignored.
"""

from __future__ import annotations

from diffvis.core.classes import ALL_CLASSES, UNCONDITIONAL, Classes
from diffvis.core.registry import SAMPLERS, SamplerInfo, sampler_info
from diffvis.core.request import DEFAULT_SAMPLER, SampleRequest
from diffvis.errors import ConfigError


def _dest(param) -> str:
    return param.flag or param.name


def given_settings(args, infos: list[SamplerInfo], *, sweep: bool = False) -> dict[str, object]:
    """{option destination: value} of every sampler setting given on the command line; one that none of
    ``infos`` takes is an error. A sweep's --steps is its list of step counts, not a setting."""
    given = {_dest(p): getattr(args, _dest(p)) for i in SAMPLERS.values() for p in i.params
             if getattr(args, _dest(p), None) is not None and not (sweep and p.name == i.steps_param)}  # fmt: skip
    taken = {_dest(p) for info in infos for p in info.params}
    for dest in given.keys() - taken:
        names = " or ".join(info.name for info in infos)
        raise ConfigError(f"--{dest.replace('_', '-')} is not a setting of the {names} sampler")
    return given


def sampler_params(info: SamplerInfo, given: dict) -> dict:
    """The settings of ``given`` that sampler ``info`` takes, by parameter name."""
    return {p.name: given[_dest(p)] for p in info.params if _dest(p) in given}


def class_choice(args, classes: Classes | None) -> dict:
    """--class, --guidance, --guidance-interval and --guide-with as a request's ``label``, ``guidance``,
    ``interval`` and ``guide_with``: a conditional model samples every class in proportion at w = 1 unless told
    otherwise (``--class unconditional`` gives f(x, t, ∅)); with a weak model, --guidance is autoguidance's w,
    for any model."""
    guide, interval = getattr(args, "guide_with", None), getattr(args, "guidance_interval", None)
    guiding = {"guide_with": guide} if guide is not None else {}
    guiding.update({"interval": interval} if interval is not None else {})
    if args.guidance is not None:
        guiding["guidance"] = args.guidance
    if classes is None:
        if args.class_ is not None or (args.guidance is not None and guide is None):
            raise ConfigError("--class and classifier-free --guidance need a class-conditional run (trained on "
                              "labelled data) or labelled --exact data; --guide-with guides any run")  # fmt: skip
        return guiding
    choice = args.class_ or ALL_CLASSES
    if choice == UNCONDITIONAL:
        if args.guidance is not None and guide is None:
            raise ConfigError("--guidance steers towards a class: it has no meaning with --class unconditional")
        return {"label": UNCONDITIONAL, **guiding}
    label = ALL_CLASSES if choice == ALL_CLASSES else classes.index(choice)
    return {"label": label, **guiding}


def make_request(args, classes: Classes | None, sampler: str | None = None, model_objective: str | None = None,
                 exact: bool | str | None = None) -> SampleRequest:  # fmt: skip
    """The request the arguments describe: --sampler (or ``sampler``) and its settings, --exact (as ``exact``
    says: ``sources.exact_kind``), --class and --guidance, --n and --seed; for the objective of a run's model
    (``model_objective``), when the sampler drives it, or else --objective (where the command has it), so that a
    setting that does not apply to such a model is refused."""
    info = sampler_info(sampler or args.sampler or DEFAULT_SAMPLER)
    params = sampler_params(info, given_settings(args, [info]))
    objective = model_objective if model_objective in info.objectives else getattr(args, "objective", None)
    exact = (args.exact is not None) if exact is None else exact
    return SampleRequest(info.name, params, exact=exact, n=args.n, seed=args.seed,
                         objective=objective, **class_choice(args, classes))  # fmt: skip
