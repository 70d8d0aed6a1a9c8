"""The window reads well from 1024 × 640 up: it fits, its combo boxes show their text (or elide it, whole in the
tooltip), plot titles and legends lie inside their plots, plots lie inside their widgets and no two widgets of a
layout overlap. Real geometry, measured on the laid-out widgets of a window with a (tiny) trained model."""

from dataclasses import replace

import pyqtgraph as pg
import pytest
import shiboken6
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QApplication, QComboBox, QLayout, QWidget

from diffvis.app.main_window import MainWindow
from diffvis.app.settings import Settings
from diffvis.app.views.axes import LogAxis
from diffvis.app.views.class_controls import combo_text_fits, compact_combo
from diffvis.app.views.titles import FittedTitle, fit_title

SMALL = (1024, 640)
TABS = ["data", "training", "forward-process", "reverse-process", "score-field", "langevin", "transport", "compare"]
SLACK = 1.0  # px: rounding between scene and widget coordinates


@pytest.fixture
def trained(make_window, qtbot):
    """A window at 1024 × 640 with labelled data (moons: the class pickers are in use) and a model trained for 40
    steps with a width-8 network; the sampling views draw few points, so that they compute in a moment."""
    win = make_window()
    win.data_panel.source.setCurrentText("moons")
    win.data_panel.n.setValue(400)
    win.model_panel.width.setValue(8)
    win.state.update_train_config(steps=40, batch=64)
    with qtbot.waitSignal(win.controller.ended, timeout=30_000):
        assert win.controller.start(preview_every=20)
    for model in (win.reverse_view.model, win.langevin_view.model):
        model.request = replace(model.request, n=200)
    win.compare_view.model.n = 200
    langevin = win.langevin_view.model
    langevin.request = replace(langevin.request, params={**langevin.request.params, "steps_per_level": 2})
    win.score_view.model.levels = 5
    win.resize(*SMALL)
    return win


def show_tab(win, qtbot, name: str) -> QWidget:
    """Show tab ``name``, wait for what it computes on first show, and let the layout settle."""
    win.tabs.setCurrentIndex(TABS.index(name))
    view = win.tabs.currentWidget()
    job = getattr(view, "job", None)
    if job is not None:
        qtbot.waitUntil(lambda: not job.busy, timeout=60_000)
    qtbot.waitUntil(lambda: (win.width(), win.height()) == SMALL)
    qtbot.wait(50)
    QApplication.processEvents()
    return view


def visible(widget: QWidget) -> bool:
    return widget.isVisible() and not widget.size().isEmpty()  # (size: a panel names a spin box "width")


def shown_combos(root: QWidget) -> list[QComboBox]:
    return [box for box in root.findChildren(QComboBox) if visible(box)]


def combo_problems(root: QWidget) -> list[str]:
    """Combo boxes whose text is cut without the whole of it in their tooltip."""
    return [f"{box.currentText()!r} ({box.width()} px) cut, tooltip {box.toolTip()[:40]!r}"
            for box in shown_combos(root)
            if not combo_text_fits(box) and box.currentText() not in box.toolTip()]  # fmt: skip


def graphics_views(root: QWidget) -> list[pg.GraphicsView]:
    views = (
        [root, *root.findChildren(pg.GraphicsView)]
        if isinstance(root, pg.GraphicsView)
        else root.findChildren(pg.GraphicsView)
    )
    return [view for view in views if visible(view)]


def viewport_rect(view: pg.GraphicsView) -> QRectF:
    """The part of the scene the view shows."""
    return view.mapToScene(view.viewport().rect()).boundingRect()


def inside(inner: QRectF, outer: QRectF) -> bool:
    return outer.adjusted(-SLACK, -SLACK, SLACK, SLACK).contains(inner)


def plot_problems(root: QWidget, ticks: bool = True) -> list[str]:
    """Plots wider or taller than their widget, titles wider than their plot, legends outside theirs, and (with
    ``ticks``) tick labels that overlap."""
    problems = []
    for view in graphics_views(root):
        shown = viewport_rect(view)
        plots = [item for item in view.scene().items() if isinstance(item, pg.PlotItem) and item.isVisible()]
        for plot in plots:
            name = plot.titleLabel.text or type(view.parent()).__name__
            if not inside(plot.sceneBoundingRect(), shown):
                problems.append(f"plot {name!r} {plot.sceneBoundingRect()} overflows its widget {shown}")
            title = plot.titleLabel
            if title.isVisible() and title.text:
                text = title.item.mapRectToScene(title.item.boundingRect())
                if not (inside(text, plot.sceneBoundingRect()) and inside(text, shown)):
                    problems.append(f"title {title.text!r} {text} outside its plot {plot.sceneBoundingRect()}")
                if isinstance(title, FittedTitle) and title.text != title.whole and title.toolTip() != title.whole:
                    problems.append(f"title {title.whole!r} elided without a tooltip")
            for side in ("left", "bottom") if ticks else ():
                labels = tick_labels(plot.getAxis(side))
                clashes = [(a, b) for i, (a, ra) in enumerate(labels) for b, rb in labels[i + 1 :] if ra.intersects(rb)]
                if clashes:
                    problems.append(f"{side} tick labels of {name!r} overlap: {clashes}")
            legend = plot.legend
            if legend is not None and legend.isVisible() and legend.items:
                box = plot.getViewBox().sceneBoundingRect()
                if not (inside(legend.sceneBoundingRect(), box) and inside(legend.sceneBoundingRect(), shown)):
                    problems.append(f"legend of {name!r} {legend.sceneBoundingRect()} outside its plot {box}")
    return problems


def tick_labels(axis: pg.AxisItem) -> list[tuple[str, QRectF]]:
    """The tick labels an axis draws, with their rectangles (as its paint would lay them out)."""
    if not axis.isVisible() or not axis.style["showValues"]:
        return []
    image = QImage(8, 8, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [] if specs is None else [(text, rect) for rect, _, text in specs[2]]


def layout_widgets(layout: QLayout) -> list[QWidget]:
    """The visible widgets a layout places (nested layouts included)."""
    found = []
    for i in range(layout.count()):
        item = layout.itemAt(i)
        if item.widget() is not None and visible(item.widget()):
            found.append(item.widget())
        elif item.layout() is not None:
            found += layout_widgets(item.layout())
    return found


def overlap_problems(root: QWidget) -> list[str]:
    """Two widgets of one layout that overlap: what a layout squeezed below its minimum does."""
    problems = []
    for parent in [root, *root.findChildren(QWidget)]:
        if not visible(parent) or parent.layout() is None:
            continue
        placed = layout_widgets(parent.layout())
        for i, a in enumerate(placed):
            for b in placed[i + 1 :]:
                if a.geometry().intersects(b.geometry()):
                    problems.append(f"{describe(a)} {a.geometry()} overlaps {describe(b)} {b.geometry()}")
    return problems


def describe(widget: QWidget) -> str:
    text = getattr(widget, "text", None) or getattr(widget, "currentText", None)
    return f"{type(widget).__name__}({text() if callable(text) else ''!r})"


def deleted_after(request, widget: QWidget) -> None:
    """Close and delete ``widget`` when the test ends, while its Python objects are all alive (as the window
    fixture does): not whenever a later test's event loop runs a deleteLater."""

    def delete() -> None:
        if shiboken6.isValid(widget):
            widget.close()
            shiboken6.delete(widget)

    request.addfinalizer(delete)


def test_the_window_fits_1024_by_640_and_the_views_get_most_of_it(trained):
    win = trained
    hint = win.minimumSizeHint()
    assert hint.width() <= SMALL[0] and hint.height() <= SMALL[1], hint
    assert hint.width() <= 790  # and inside the offscreen platform's 800 px screen, which other tests resize to
    assert (win.width(), win.height()) == SMALL
    side, tabs = win.splitter.sizes()
    assert side >= win.side.minimumWidth() and tabs >= 0.6 * SMALL[0]  # the panels leave the views ≥ 60 %
    # a loaded file's long name, or a long GPU name, does not widen the window
    win.data_panel.source.addItem("a-point-file-with-a-very-long-name-indeed-2024-final-v3.csv")
    win.model_panel.device.addItem("CUDA (NVIDIA GeForce RTX 4090 Laptop GPU with a long name)", "cuda")
    assert win.minimumSizeHint().width() == hint.width()


def test_every_tab_reads_well_at_1024_by_640(trained, qtbot):
    problems = {}
    for tab in TABS:
        view = show_tab(trained, qtbot, tab)
        found = [] if graphics_views(view) else ["no plot shown"]
        found += plot_problems(view, ticks=tab != "compare") + overlap_problems(view)
        if tab != "compare":  # its preset, panel editors and panel sizes: see test_compare_tab_reads_well
            found += combo_problems(view)
        found += combo_problems(trained.side) + overlap_problems(trained.side.widget())
        if found:
            problems[tab] = found
    assert problems == {}


MIN_PANEL_HEIGHT = 120  # px: a compare panel shorter than this shows axes, not samples


def test_compare_tab_reads_well(trained, qtbot):
    view = show_tab(trained, qtbot, "compare")
    heights = [round(panel.plot.getViewBox().height()) for panel in view.panels]
    assert min(heights) >= MIN_PANEL_HEIGHT, heights
    assert plot_problems(view) == []
    assert combo_problems(view) == []


def test_the_training_plots_fit_a_narrow_window(trained, qtbot):
    """The report's case: the three plots, their titles and the loss legend inside a 1024 px window, and the
    titles whole (the new ones are short enough)."""
    view = show_tab(trained, qtbot, "training")
    shown = viewport_rect(view.plots)
    for plot in (view.samples_plot, view.loss_plot, view.bucket_plot):
        assert inside(plot.sceneBoundingRect(), shown)
        assert plot.titleLabel.text == plot.titleLabel.whole
    legend = view.loss_plot.legend
    assert [label.text for _, label in legend.items] == ["raw", "smoothed"]
    assert inside(legend.sceneBoundingRect(), view.loss_plot.getViewBox().sceneBoundingRect())


def test_a_long_title_is_elided_in_a_narrow_plot_and_whole_in_a_wide_one(qtbot, request):
    widget = pg.PlotWidget()
    deleted_after(request, widget)
    whole = "A title much longer than the plot that shows it is wide"
    title = fit_title(widget.getPlotItem(), whole)
    widget.resize(220, 200)
    widget.show()
    qtbot.waitExposed(widget)
    QApplication.processEvents()
    assert title.text.endswith("…") and title.toolTip() == whole
    assert inside(widget.getPlotItem().sceneBoundingRect(), viewport_rect(widget))
    assert title.item.boundingRect().width() <= title.width() + SLACK
    widget.resize(900, 200)
    qtbot.waitUntil(lambda: title.text == whole)
    assert title.toolTip() == ""


def test_a_log_axis_labels_only_the_ticks_with_room(qtbot, request):
    """The quality-vs-NFE case: five decades of NFE and a short span of ratios in a small plot. pyqtgraph's own
    axis labels every minor tick and its labels run into each other; LogAxis's do not, and keep the decades."""
    widgets = {}
    for axis in (pg.AxisItem, LogAxis):
        widget = pg.PlotWidget(axisItems={"left": axis("left"), "bottom": axis("bottom")})
        deleted_after(request, widget)
        widget.setLogMode(x=True, y=True)
        widget.plot([5, 10, 20, 50, 100, 1000], [4.6, 3.7, 3.9, 5.2, 5.4, 1.7])
        widget.resize(680, 180)
        widget.show()
        widgets[axis] = widget
    qtbot.waitExposed(widgets[LogAxis])
    QApplication.processEvents()

    def clashes(widget, side):
        labels = tick_labels(widget.getAxis(side))
        return sum(a.intersects(b) for i, (_, a) in enumerate(labels) for _, b in labels[i + 1 :])

    assert clashes(widgets[pg.AxisItem], "bottom") > 0  # the failure LogAxis exists for
    assert clashes(widgets[LogAxis], "bottom") == clashes(widgets[LogAxis], "left") == 0
    texts = [text for text, _ in tick_labels(widgets[LogAxis].getAxis("bottom"))]
    assert {"10", "100", "1000", "5", "20", "50"} <= set(texts)
    assert {text for text, _ in tick_labels(widgets[LogAxis].getAxis("left"))} >= {"2", "3", "4", "5"}


def test_a_squeezed_compact_combo_box_elides_its_text_and_tooltips_it(qtbot):
    box = QComboBox()
    qtbot.addWidget(box)
    box.addItems(["short", "an item much wider than the box"])
    compact_combo(box)
    box.setToolTip("what the box chooses")
    assert box.sizeHint().width() > box.minimumSizeHint().width()  # asks for the longest item, needs 5 letters
    box.resize(box.sizeHint())
    box.show()
    box.setCurrentIndex(1)
    assert combo_text_fits(box) and box.toolTip() == "what the box chooses"
    box.resize(box.minimumSizeHint())
    qtbot.waitUntil(lambda: not combo_text_fits(box))
    assert box.toolTip() == "an item much wider than the box\nwhat the box chooses"
    box.setCurrentIndex(0)
    assert combo_text_fits(box) and box.toolTip() == "what the box chooses"
    image = box.grab().toImage()  # drawn, not blank: the elided text is painted
    assert len({image.pixel(x, image.height() // 2) for x in range(image.width())}) > 2


def test_the_splitter_between_panels_and_views_returns_at_the_next_launch(qtbot, tmp_path, request):
    settings_file = tmp_path / "settings.json"
    first = MainWindow(Settings(settings_file))
    deleted_after(request, first)
    first.show()
    first.resize(790, 560)  # within the offscreen platform's 800 × 600 screen
    first.splitter.setSizes([first.side.minimumWidth() + 40, 400])
    QApplication.processEvents()
    sizes = first.splitter.sizes()
    first.close()
    second = MainWindow(Settings(settings_file))
    deleted_after(request, second)
    second.show()
    QApplication.processEvents()
    assert second.splitter.sizes() == sizes
    second.close()
