"""``diffvis render``: draw a view headless (Qt offscreen) and export it exactly as the app's export button does:
the same view widgets, the same computation in the same worker, the same writers.

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

from diffvis.errors import ConfigError, DiffvisError
from diffvis.terminal import ProgressBar

VIEWS = ("forward", "reverse", "score", "langevin")


def cmd_render(args) -> int:
    if args.size[0] < 200 or args.size[1] < 150:
        raise ConfigError(f"--size must be at least 200x150, got {args.size[0]}x{args.size[1]}")
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
        _figure_only(view)
        view.resize(*args.size)
        view.show()
        bar = ProgressBar()
        if hasattr(view, "compute"):
            _compute(view, bar)
        if args.probe:
            _add_probes(view, args.probe, args.probe_frame)
        last = view.frame_count() - 1
        view.timeline.slider.setValue(last if args.frame is None else min(max(args.frame, 0), last))
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
        view.show_frame(view.timeline.frame)


def _load_state(args):
    """A LabState holding the run and its training points, or the data file whose exact model is drawn."""
    from diffvis.app.state import LabState
    from diffvis.core.sources import load_source, run_points

    state = LabState()
    if args.run is not None:
        from diffvis.core.checkpoint import load_run

        run = load_run(args.run)
        points, info = run_points(run.data)
        state.set_data(points, info)
        state.set_model_config(run.model_config)
        state.set_train_config(run.train_config)
        state.set_run(run)
    else:
        points, info = load_source(str(args.exact), n=0)
        if len(points) < 2:
            raise ConfigError(f"{args.exact.name}: the exact model needs at least two points")
        state.set_data(points, info)
        state.update_train_config(schedule=args.schedule, timesteps=args.timesteps)
        state.set_model_config(replace(state.model_config, objective=args.objective))
    return state


def _request(args, state, sampler: str | None):
    """The sampling request of the arguments, for the classes of the model drawn; None for a view that samples
    nothing, where a sampler setting is refused rather than ignored."""
    from diffvis.arguments import given_settings, make_request
    from diffvis.core.classes import Classes

    if sampler is None:
        if args.sampler is not None or given_settings(args, []):
            raise ConfigError("--sampler and its settings are for the reverse and langevin views")
        return None
    if args.sampler is not None and args.sampler != sampler:
        raise ConfigError(f"the {args.view} view runs the {sampler} sampler, not {args.sampler}")
    run = state.model_run
    classes = Classes.of(state.data) if run is None or args.exact is not None else run.classes
    return make_request(args, classes, sampler)


def _make_view(args, state):
    from diffvis.core.request import DEFAULT_SAMPLER

    if args.compare:
        from diffvis.app.views.compare_view import CompareView

        _request(args, state, None)
        view = CompareView(state)
        view.apply_preset(args.compare)
        view.points.setValue(args.n)
        return view
    from diffvis.app.views.forward_view import ForwardView
    from diffvis.app.views.langevin_view import LangevinView
    from diffvis.app.views.reverse_view import ReverseView
    from diffvis.app.views.score_view import ScoreView

    sampler = {"reverse": args.sampler or DEFAULT_SAMPLER, "langevin": "langevin"}.get(args.view)
    request = _request(args, state, sampler)
    view = {"forward": ForwardView, "reverse": ReverseView, "score": ScoreView, "langevin": LangevinView}[args.view](
        state
    )
    if args.view == "reverse":
        view.set_request(request)
        view.trails.setValue(args.trails)
        view.show_x0.setChecked(args.x0)
        view.show_density.setChecked(args.density)
    if args.view == "langevin":  # the view's own K and ε unless given (its K is smaller than the paper's)
        view.points.setValue(request.n)
        if args.steps is not None:
            view.steps.setValue(request.params["steps_per_level"])
        if args.step_size is not None:
            view.step_size.setValue(request.params["step_size"])
    if args.view == "score":
        view.show_exact.setChecked(args.exact_overlay)
        view.show_error.setChecked(args.error)
    return view


def _compute(view, bar: ProgressBar) -> None:
    """Compute the view's trajectory or fields in its worker and wait for them, showing progress."""
    from PySide6.QtCore import QEventLoop

    loop, failures = QEventLoop(), []
    view.computed.connect(loop.quit)
    view.job.failed.connect(lambda message: (failures.append(message), loop.quit()))
    view.job.progressed.connect(lambda i, n: bar.show(i, n, "computing"))
    if not view.job.busy and not view.compute():  # shown, the view may have started already
        raise ConfigError("nothing to draw: the data has fewer than two points")
    loop.exec()
    if failures:
        raise DiffvisError(failures[0])


def _add_probes(view, positions: list[list[float]], frame: int) -> None:
    """Place probe particles at ``frame``, one after another, waiting for each one's trajectory."""
    import numpy as np
    from PySide6.QtCore import QEventLoop

    if getattr(view, "probes", None) is None:
        raise ConfigError("--probe needs the reverse or score view")
    view.timeline.slider.setValue(frame)
    loop, failures = QEventLoop(), []
    view.probe_job.done.connect(loop.quit)
    view.probe_job.failed.connect(lambda message: (failures.append(message), loop.quit()))
    for position in positions:
        if not view.probe(np.asarray(position, dtype=float)):
            raise ConfigError(f"no probe can start at frame {frame}: use a frame before the last")
        loop.exec()
        if failures:
            raise DiffvisError(failures[0])
