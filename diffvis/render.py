"""``diffvis render``: draw a view headless (Qt offscreen) and export it exactly as the app's export button does:
the same view widgets drawing the same model, the same computation, the same writers. Render sets the view's
model (its request, overlays, probes and frame) and computes its result with the model's own ``work``, never
through the view's widgets.

The picture is ``--size`` exactly: the view shows its figure alone (an export draws the figure, never the
settings, tables or timeline around it), sized so that what the file holds (the figure for PNG, GIF and MP4, the
SVG item for SVG) is that many pixels. When done, the view's widgets are deleted at once, while every Python
object in them is alive: left to the interpreter's exit, Qt objects are destroyed in no particular order, and
pyqtgraph code run by a half-destroyed plot grid (an axis resized with its label already gone) crashed the
process after the file was written."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from diffvis.arguments import given_settings, make_request, sampler_params
from diffvis.core.registry import sampler_info
from diffvis.core.request import DEFAULT_SAMPLER
from diffvis.errors import ConfigError, DiffvisError
from diffvis.terminal import ProgressBar

VIEWS = ("forward", "reverse", "score", "langevin", "transport", "coupling", "density")  # what --view draws
PROBED_VIEWS = ("reverse", "score", "transport")  # the views that take --probe
PROBE_NEEDS = f"--probe needs the {', '.join(PROBED_VIEWS[:-1])} or {PROBED_VIEWS[-1]} view"


def cmd_render(args) -> int:
    if args.probe and args.view not in PROBED_VIEWS:
        raise ConfigError(PROBE_NEEDS)
    suffix = Path(args.out).suffix.lower()
    if suffix == ".mp4" and (args.size[0] % 2 or args.size[1] % 2):
        raise ConfigError(f"an MP4 needs an even width and height (H.264), got {args.size[0]}x{args.size[1]}")
    os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a picture, never a window, even where a display exists
    from diffvis.app.export import check_export_target, export_view
    from diffvis.app.main import delete_now, offscreen_app

    check_export_target(args.out, fps=args.fps, max_frames=args.max_frames)
    offscreen_app()
    state = _load_state(args)
    view = _make_view(args, state)
    try:
        bar = ProgressBar()
        if args.view != "forward":  # before showing it: a view shown with nothing computed computes by itself
            view.model.result = view.model.work(state)(lambda i, n: bar.show(i, n, "computing"))
        _figure_only(view)
        view.resize(*args.size)
        view.show()
        if args.probe:
            _add_probes(view.model, args.probe, args.probe_frame, bar)
        last = view.frame_count() - 1
        view.model.frame = last if args.frame is None else min(max(args.frame, 0), last)
        _fit(view, suffix, tuple(args.size))
        frames = export_view(view, args.out, fps=args.fps, max_frames=args.max_frames,
                             progress=lambda i, n: bar.show(i, n, "frames"))  # fmt: skip
    finally:
        if hasattr(view, "shutdown"):
            view.shutdown()
        view.close()
        delete_now(view)
    what = f"the {args.view} view" if args.view else f"the {args.compare} comparison"
    print(f"wrote {frames} frame{'s' * (frames != 1)} of {what} to {args.out}")
    if args.compare:
        from diffvis.core.compare import panel_table

        print(panel_table(view.model.result))
    return 0


def _figure_only(view) -> None:
    """Hide everything around the view's figure (settings, editors, tables, timeline): the figure fills the view."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QWidget

    widget = view.figure
    while widget is not view:  # at every level from the figure up, only the branch that holds it stays
        parent = widget.parentWidget()
        for child in parent.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly):
            child.setVisible(child is widget)
        widget = parent


def _exported_size(view, suffix: str) -> tuple[int, int]:
    """The pixels of what an export to ``suffix`` draws: the SVG item (its viewBox), or the figure."""
    if suffix == ".svg":
        item = view.svg_item
        rect = item.mapRectToDevice(item.boundingRect())
        return int(rect.width()), int(rect.height())  # as pyqtgraph's SVG exporter writes its viewBox
    return view.figure.width(), view.figure.height()


def _fit(view, suffix: str, size: tuple[int, int]) -> None:
    """Resize the view until what the export draws is ``size`` (a view may have shown a table since, and the SVG
    item can be one plot of several, taking only a share of each pixel the view grows by), then frame the data
    again once laid out."""
    from PySide6.QtWidgets import QApplication

    _figure_only(view)
    share, before = [1.0, 1.0], None  # how much the drawn part grows per pixel the view grows, per axis
    for _ in range(10):
        QApplication.processEvents()  # lays the view out at its new size
        drawn, outer = _exported_size(view, suffix), (view.width(), view.height())
        if drawn == size:
            break
        if before is not None:
            for k in range(2):
                if outer[k] != before[1][k] and drawn[k] != before[0][k]:
                    share[k] = (drawn[k] - before[0][k]) / (outer[k] - before[1][k])
        before = drawn, outer
        view.resize(*(outer[k] + round((size[k] - drawn[k]) / share[k]) for k in range(2)))
    else:
        raise DiffvisError(f"the picture came out {drawn[0]}x{drawn[1]}, not the {size[0]}x{size[1]} asked for")
    if hasattr(view, "show_backdrop"):  # the comparison frames its panels once they have their size
        view.show_backdrop()
        view.show_frame(view.current_frame())


def _load_state(args):
    """A LabState holding the runs (the first is the lab's; a comparison's panels may ask for the others) and their
    training points, or the data file whose exact model is drawn."""
    from diffvis.app.state import LabState
    from diffvis.core.sources import exact_source, runs_on_one_data_set

    state = LabState()
    if args.run is not None:
        if len(args.run) > 1 and not args.compare:
            raise ConfigError("--run is given once, except for a comparison (--compare) of runs side by side")
        runs, points, info = runs_on_one_data_set(args.run)
        state.set_data(points, info)
        state.set_model_config(runs[0].model_config)
        state.set_train_config(runs[0].train_config)
        for run in reversed(runs):
            state.set_run(run)
    else:
        points, info = exact_source(args.exact)
        if len(points) < 2:
            raise ConfigError(f"{args.exact.name}: the exact model needs at least two points")
        state.set_data(points, info)
        state.update_train_config(schedule=args.schedule, timesteps=args.timesteps)
        if args.objective is not None:  # the score view's model; the others take the one their sampler drives
            state.set_model_config(replace(state.model_config, objective=args.objective))
    return state


def _request(args, state, sampler: str | None):
    """The sampling request of the arguments, for the classes of the model drawn; None for a view that samples
    nothing, where a sampler setting is refused rather than ignored."""
    from diffvis.core.classes import Classes
    from diffvis.core.sources import exact_kind

    if sampler is None:
        if args.sampler is not None or given_settings(args, []):
            raise ConfigError("--sampler and its settings are for the reverse and langevin views")
        return None
    if args.sampler is not None and args.sampler != sampler:
        raise ConfigError(f"the {args.view} view runs the {sampler} sampler, not {args.sampler}")
    run = state.model_run
    classes = Classes.of(state.data) if run is None or args.exact is not None else run.classes
    return make_request(args, classes, sampler, exact=None if args.exact is None else exact_kind(state.data))


def _make_view(args, state):
    """The view asked for, its model set from the arguments."""
    if args.compare:
        from diffvis.app.views.compare_view import CompareView

        steps, args.steps = args.steps, None  # --steps: every panel's step count, not one sampler's setting
        _request(args, state, None)
        view = CompareView(state)
        model = view.model
        model.apply_preset(args.compare)
        model.n = args.n
        if steps is not None:
            model.panels = tuple(replace(p, request=p.request.with_steps(steps)) for p in model.panels)
        return view
    from diffvis.app.views.coupling_view import CouplingView
    from diffvis.app.views.density_view import DensityView
    from diffvis.app.views.forward_view import ForwardView
    from diffvis.app.views.langevin_view import LangevinView
    from diffvis.app.views.reverse_view import ReverseView
    from diffvis.app.views.score_view import ScoreView
    from diffvis.app.views.transport_view import TransportView

    view = {"forward": ForwardView, "reverse": ReverseView, "score": ScoreView, "langevin": LangevinView,
            "transport": TransportView, "coupling": CouplingView, "density": DensityView}[args.view](state)  # fmt: skip
    model = view.model
    if args.view == "reverse":
        model.set_request(_request(args, state, args.sampler or DEFAULT_SAMPLER))
        model.update(trails=args.trails, show_x0=args.x0, show_density=args.density)
    elif args.view == "transport":  # an ODE solver (the view's own, at its step count unless given); no class
        request = _request(args, state, args.sampler or model.request.sampler)
        if request.info.steps_param not in sampler_params(request.info, given_settings(args, [request.info])):
            request = request.with_steps(model.request.steps)
        model.update(request=request, trails=args.trails)
    elif args.view == "langevin":  # the view's own K and ε unless given (its K is smaller than the paper's)
        request = _request(args, state, model.request.sampler)
        given = sampler_params(request.info, given_settings(args, [request.info]))
        model.request = replace(request, params={**model.request.params, **given})
    elif args.view == "coupling":  # its own number of lines; --seed draws them
        _request(args, state, None)
        model.update(kind=args.coupling, seed=args.seed)
    elif args.view == "density":
        model.update(show=args.density_show, **_density_solver(args, model))
    else:
        _request(args, state, None)
        if args.view == "score":
            model.update(show_exact=args.exact_overlay, show_error=args.error)
    return view


def _density_solver(args, model) -> dict:
    """The density view's likelihood solver from --sampler (dopri5 or a fixed-step method), --steps (fixed-step)
    and --rtol/--atol (dopri5, one tolerance); the view's own where not given, and a setting it has no use for
    refused."""
    from diffvis.core.likelihood import METHODS

    method = args.sampler or model.method
    if method not in METHODS:
        raise ConfigError(f"the density view solves its ODE with {', '.join(METHODS)}, not {method}")
    given = given_settings(args, [sampler_info(name) for name in METHODS])
    takes = ("rtol", "atol") if method == "dopri5" else ("steps",)
    for name in given.keys() - set(takes):
        raise ConfigError(f"--{name} is not a setting of the density view's {method} solver")
    tolerances = {given[name] for name in ("rtol", "atol") if name in given}
    if len(tolerances) > 1:
        raise ConfigError("the density view's dopri5 solves at one tolerance: give --rtol and --atol alike")
    return {"method": method, "steps": given.get("steps", model.steps),
            "tolerance": tolerances.pop() if tolerances else model.tolerance}  # fmt: skip


def _add_probes(model, positions: list[list[float]], frame: int, bar: ProgressBar) -> None:
    """Place probe particles at ``frame`` of the model's result, one after another."""
    import numpy as np

    model.frame = frame
    for position in positions:
        compute = model.probe(np.asarray(position, dtype=float))
        if compute is None:
            raise ConfigError(PROBE_NEEDS)
        model.add_probe(compute(lambda i, n: bar.show(i, n, "probe")))
