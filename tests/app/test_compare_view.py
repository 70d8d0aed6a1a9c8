"""The Compare tab driven as a user would: presets and panel editors, the comparison computed in the background
and checked against an independent call of the core (shared noise, frames under the shared slider, captions,
metrics table), hover and pin, the quality-vs-NFE sweep, exports, and closing mid-computation."""

from __future__ import annotations

import re
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QApplication

from diffvis.app.views import compare_view as compare_module
from diffvis.app.views.compare_view import PROGRESS_FRAMES, panel_columns, panel_frame
from diffvis.core import compare as core_compare
from diffvis.core.compare import PRESETS, PanelSpec, Reference, compare
from diffvis.core.datasets import Normaliser
from diffvis.core.fields import padded_extent
from diffvis.core.metrics import METRICS
from diffvis.core.pointfiles import load_points
from diffvis.core.schedules import Schedule
from diffvis.core.sources import fresh_draw

LEFT = Qt.MouseButton.LeftButton
N_POINTS = 100  # samples per panel

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def window(make_window):
    win = make_window()
    win.data_panel.source.setCurrentText("moons")
    win.data_panel.n.setValue(100)
    win.tabs.setCurrentWidget(win.compare_view)
    win.compare_view.points.setValue(N_POINTS)
    return win


# --- helpers --------------------------------------------------------------------------------------------------------


def xy(item) -> np.ndarray:
    """(M, 2) the points a scatter or curve item holds (none: (0, 2))."""
    x, y = item.getData()
    if x is None or len(x) == 0:
        return np.zeros((0, 2))
    return np.column_stack([x, y])


def compute(view, qtbot, button=None, timeout=30_000):
    """Press the compute button (or ``button``) and wait for the comparison."""
    if view.job.busy:  # the computation the view started when first shown: cancel it, as a user would
        qtbot.mouseClick(view.compute_button, LEFT)
    assert not view.job.busy
    with qtbot.waitSignal(view.computed, timeout=timeout):
        qtbot.mouseClick(button or view.compute_button, LEFT)
    return view.result


def seeded_noise(n: int, seed: int) -> np.ndarray:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)).numpy().astype(np.float64)


def pixel_of(view, panel, point) -> QPoint:
    """The pixel of the grid's viewport where ``panel`` draws data point ``point``."""
    view.grid.scene().prepareForPaint()  # view boxes apply a new range only when about to paint
    scene = panel.plot.getViewBox().mapViewToScene(QPointF(float(point[0]), float(point[1])))
    return view.grid.mapFromScene(scene)


def isolated_point(view, panel, frame: np.ndarray, exclude: int | None = None) -> int:
    """The index of a point of ``frame`` (not ``exclude``) well inside the panel's view whose nearest neighbour is
    farthest."""
    view.grid.scene().prepareForPaint()
    (x0, x1), (y0, y1) = panel.plot.getViewBox().viewRange()
    inside = (frame[:, 0] > x0 + 0.2 * (x1 - x0)) & (frame[:, 0] < x1 - 0.2 * (x1 - x0))
    inside &= (frame[:, 1] > y0 + 0.2 * (y1 - y0)) & (frame[:, 1] < y1 - 0.2 * (y1 - y0))
    d = np.linalg.norm(frame[:, None] - frame[None], axis=2)
    np.fill_diagonal(d, np.inf)
    nearest = np.where(inside, d.min(1), -np.inf)
    if exclude is not None:
        nearest[exclude] = -np.inf
    index = int(np.argmax(nearest))
    pixel = (x1 - x0) / panel.plot.getViewBox().width()
    assert nearest[index] > 6 * pixel, "no point stands alone enough to be hovered reliably"
    return index


def sampling(view, qtbot) -> None:
    """Wait until the comparison in flight reports sampling progress (the floors are drawn before it).

    Polled, not waited for with waitSignal: a blocker on a signal that a worker thread keeps emitting may still be
    called after it is torn down (PySide6 + pytest-qt: AttributeError, then a crash)."""
    qtbot.waitUntil(lambda: re.fullmatch(r"computing… \d+ %", view.timeline.label.text()) is not None, timeout=10_000)


def cell_number(text: str) -> float:
    """The leading number of a table cell: '0.0123 (1.52×)' → 0.0123."""
    return float(re.match(r"[-+0-9.eE]+", text).group())


def core_results(window, specs, seed):
    """The comparison recomputed by the core alone, as the view should have computed it."""
    state = window.state
    points = state.data.points
    reference = Reference.draw(fresh_draw(state.data_info, points, N_POINTS))
    return compare(specs, None, state.data, Schedule.make("linear", 1000), reference, n=N_POINTS, seed=seed)


# --- presets and editors --------------------------------------------------------------------------------------------


def test_presets_and_panel_count_set_panels_and_editors(window, qtbot):
    view = window.compare_view
    qtbot.waitExposed(view)
    assert len(view.panels) == 3
    assert [s.label for s in view.specs()] == [s.label for s in PRESETS["ddpm-vs-ddim"][1]]

    view.apply_preset("eta")
    assert view.preset.currentData() == "eta" and view.count.value() == 4
    assert len(view.panels) == 4
    assert [e.isVisible() for e in view.editors] == [True] * 4 + [False] * 2
    assert [e.eta.value() for e in view.editors[:4]] == [0.0, 0.3, 0.6, 1.0]
    assert all(e.eta.isEnabled() and e.steps.value() == 50 for e in view.editors[:4])
    # the editors spell out the spacing the samplers would default to
    assert view.specs() == [replace(s, params={**s.params, "spacing": "leading"}) for s in PRESETS["eta"][1]]

    for count in (2, 6, 5, 3, 4):
        view.count.setValue(count)
        assert len(view.panels) == count
        assert [e.isVisible() for e in view.editors] == [i < count for i in range(6)]
        columns = view.columns
        assert columns == panel_columns(count, view.grid.width(), view.grid.height())
        layout = view.grid.ci.layout
        for i, panel in enumerate(view.panels):  # filled row by row
            assert layout.itemAt(i // columns, i % columns) is panel.plot and panel.plot.isVisible()
        assert layout.count() == count and not any(p.plot.isVisible() for p in view.all_panels[count:])
        assert len(view.specs()) == count
    view.count.setValue(1)  # clamped by the spin box
    assert view.count.value() == 2 and len(view.panels) == 2
    view.count.setValue(7)
    assert view.count.value() == 6 and len(view.panels) == 6

    # the editor's spec follows its widgets; DDPM has no steps, only DDIM an η
    editor = view.editors[0]
    editor.sampler.setCurrentIndex(editor.sampler.findData("ddpm"))
    assert not editor.steps.isEnabled() and not editor.eta.isEnabled() and not editor.spacing.isEnabled()
    assert editor.variance.isEnabled() and editor.spec() == PanelSpec("ddpm", {"variance": "beta_tilde"})
    editor.variance.setCurrentIndex(editor.variance.findData("beta"))
    assert editor.spec() == PanelSpec("ddpm", {"variance": "beta"}) and editor.spec().label == "DDPM (β)"
    editor.variance.setCurrentIndex(editor.variance.findData("beta_tilde"))
    editor.sampler.setCurrentIndex(editor.sampler.findData("langevin"))
    editor.steps.setValue(20)
    editor.exact.setChecked(True)
    assert editor.steps.isEnabled() and not editor.eta.isEnabled()
    assert editor.spec() == PanelSpec("langevin", {"steps_per_level": 20}, exact=True)
    assert editor.spec().label == "Langevin K=20 · exact"


def test_panel_columns_give_each_panel_the_largest_square():
    assert panel_columns(4, 960, 720) == 2  # 2 x 2: 440 px squares (4 x 1: 200 px)
    assert panel_columns(4, 940, 230) == 4  # a wide, low window: one row (2 x 2 would leave 90 px)
    assert panel_columns(3, 960, 720) == 2 and panel_columns(3, 1500, 400) == 3
    assert panel_columns(6, 960, 720) == 3 and panel_columns(6, 400, 900) == 2
    assert panel_columns(2, 300, 900) == 1  # a tall picture: one above the other
    assert panel_columns(5, 10, 10) in range(1, 6)  # too small for any: still a grid


def test_the_grid_follows_the_figure_shape(window, qtbot):
    view = window.compare_view
    view.apply_preset("eta")
    for size in ((1200, 800), (1000, 1400), (1600, 700)):
        window.resize(*size)
        qtbot.waitUntil(lambda: view.columns == panel_columns(4, view.grid.width(), view.grid.height()))
        layout = view.grid.ci.layout
        for i, panel in enumerate(view.panels):
            assert layout.itemAt(i // view.columns, i % view.columns) is panel.plot


# --- computing and scrubbing ----------------------------------------------------------------------------------------


def test_compare_with_the_exact_model_frames_slider_and_captions(window, qtbot):
    view = window.compare_view
    view.apply_preset("ddpm-vs-ddim")
    results = compute(view, qtbot)
    assert view.has_content() and view.frame_count() == PROGRESS_FRAMES + 1
    assert view.timeline.slider.maximum() == PROGRESS_FRAMES and view.timeline.frame == 0
    assert [r.label for r in results] == ["DDPM (β̃) · exact", "DDIM S=50 η=0 · exact", "DDIM S=10 η=0 · exact"]
    assert [p.result for p in view.panels] == results
    assert [len(r.trajectory.frames) for r in results] == [1001, 51, 11]

    # one noise for all: the seeded N(0, I) noise in data coordinates
    norm = Normaliser.fit(window.state.data.points)
    first = results[0].trajectory.frames[0]
    np.testing.assert_allclose(first, norm.to_data(seeded_noise(N_POINTS, 0)), rtol=1e-5, atol=1e-5)
    for r in results:
        np.testing.assert_array_equal(r.trajectory.frames[0], first)

    # the same numbers as the core computes alone
    for r, alone in zip(results, core_results(window, view.specs(), 0), strict=True):
        np.testing.assert_array_equal(r.trajectory.frames, alone.trajectory.frames)
        assert r.label == alone.label and r.trajectory.nfe == alone.trajectory.nfe
        for name in METRICS:
            assert r.metrics[name].value == pytest.approx(alone.metrics[name].value, rel=1e-12)
            assert r.metrics[name].floor == pytest.approx(alone.metrics[name].floor, rel=1e-12)

    for k in (0, 1, 7, 33, 50, 99, 100):
        view.timeline.slider.setValue(k)
        assert view.timeline.label.text() == f"progress {k} %"
        for panel, r in zip(view.panels, results, strict=True):
            traj = r.trajectory
            f = panel_frame(k, len(traj.frames))
            assert f == round(k * (len(traj.frames) - 1) / 100)
            np.testing.assert_array_equal(xy(panel.scatter), traj.frames[f])
            t = traj.times[f]
            when = "clean" if t < 0 else f"t = {int(t)}"
            assert panel.caption.text == f"{r.label} · {when} · NFE {traj.evals[f]}/{traj.nfe}"
    # the last position is every panel's clean samples, after all their evaluations
    for panel, r in zip(view.panels, results, strict=True):
        assert panel.caption.text.endswith(f"clean · NFE {r.trajectory.nfe}/{r.trajectory.nfe}")
        np.testing.assert_array_equal(xy(panel.scatter), r.trajectory.samples)
    assert view.panels[0].caption.text == "DDPM (β̃) · exact · clean · NFE 1000/1000"
    view.timeline.slider.setValue(30)
    assert view.panels[0].caption.text == "DDPM (β̃) · exact · t = 699 · NFE 300/1000"
    assert view.panels[2].caption.text == "DDIM S=10 η=0 · exact · t = 600 · NFE 3/10"  # leading: 900, 800, …


def test_a_langevin_panel_starts_from_the_noise_scaled_by_sigma_1(window, qtbot):
    view = window.compare_view
    view.apply_preset("ddpm-vs-langevin")
    view.editors[1].steps.setValue(3)
    ddpm, langevin = compute(view, qtbot)
    assert langevin.label == "Langevin K=3 · exact" and langevin.trajectory.nfe == 31
    norm = Normaliser.fit(window.state.data.points)
    model, _ = core_compare.panel_model(langevin.spec, None, window.state.data, Schedule.make())
    sigma_1 = model.ladder.sigmas[0]
    np.testing.assert_allclose(norm.to_std(langevin.trajectory.frames[0].astype(np.float64)),
                               sigma_1 * norm.to_std(ddpm.trajectory.frames[0].astype(np.float64)),
                               rtol=1e-4, atol=1e-4)  # fmt: skip
    view.timeline.slider.setValue(50)
    traj = langevin.trajectory
    f = panel_frame(50, len(traj.frames))
    assert view.panels[1].caption.text == f"Langevin K=3 · exact · σ = {traj.times[f]:.3g} · NFE {traj.evals[f]}/31"


def test_new_noise_draws_other_noise_for_every_panel(window, qtbot):
    view = window.compare_view
    view.apply_preset("solvers")
    first = compute(view, qtbot)
    before = first[0].trajectory.frames[0]
    view.timeline.slider.setValue(40)
    second = compute(view, qtbot, button=view.new_noise)
    assert view.seed == 1 and view.timeline.frame == 0
    after = second[0].trajectory.frames[0]
    assert not np.allclose(after, before, atol=1e-3)
    norm = Normaliser.fit(window.state.data.points)
    np.testing.assert_allclose(after, norm.to_data(seeded_noise(N_POINTS, 1)), rtol=1e-5, atol=1e-5)
    for r in second:
        np.testing.assert_array_equal(r.trajectory.frames[0], after)
    for panel, r in zip(view.panels, second, strict=True):
        np.testing.assert_array_equal(xy(panel.scatter), r.trajectory.frames[0])
    # the Compare button keeps the noise
    third = compute(view, qtbot)
    np.testing.assert_array_equal(third[0].trajectory.frames[0], after)


def test_the_metrics_table_shows_every_panel_and_marks_the_best(window, qtbot):
    view = window.compare_view
    view.apply_preset("solvers")
    results = compute(view, qtbot)
    table, rows = view.table, len(results)
    assert rows == 4 and table.rowCount() == rows + 1 and table.columnCount() == 3 + len(METRICS)
    for row, r in enumerate(results):
        assert table.item(row, 0).text() == r.label
        assert int(table.item(row, 1).text()) == r.trajectory.nfe
        assert float(table.item(row, 2).text()) == pytest.approx(r.seconds, abs=5e-4)
        for col, name in enumerate(METRICS, start=3):
            m = r.metrics[name]
            value, ratio = re.fullmatch(r"(\S+) \((\S+)×\)", table.item(row, col).text()).groups()
            assert float(value) == pytest.approx(m.value, rel=5e-3)
            assert float(ratio) == pytest.approx(m.ratio, abs=5e-3)
    assert [int(table.item(row, 1).text()) for row in range(rows)] == [10, 9, 10, 1000]

    # the last row: every metric's floor (two fresh draws), with its spread
    assert [table.item(rows, col).text() for col in range(3)] == ["floor (fresh data)", "", ""]
    for col, name in enumerate(METRICS, start=3):
        mean, std = re.fullmatch(r"(\S+) ± (\S+)", table.item(rows, col).text()).groups()
        assert float(mean) == pytest.approx(results[0].metrics[name].floor, rel=5e-3)
        assert float(std) == pytest.approx(results[0].metrics[name].floor_std, rel=5e-2)
        assert {r.metrics[name].floor for r in results} == {results[0].metrics[name].floor}

    # the best (smallest) figure of each column among the panels is bold on yellow; nothing else is
    for col in range(table.columnCount()):
        bold = [row for row in range(rows + 1) if table.item(row, col).font().bold()]
        if col == 0:
            assert bold == []
            continue
        shown = [cell_number(table.item(row, col).text()) for row in range(rows)]
        assert len(bold) == 1 and bold[0] < rows, f"column {col}: rows {bold} bold"
        assert shown[bold[0]] == min(shown)
        assert table.item(bold[0], col).background().color().name() == "#fff0a8"
    assert table.item(1, 1).font().bold()  # Heun's 9 evaluations are the fewest


# --- framing and stale results --------------------------------------------------------------------------------------

RUNAWAYS = np.array([[500.0, -500.0], [-500.0, 250.0], [480.0, 500.0]])


def test_panels_frame_the_data_not_a_few_far_flung_samples(window, qtbot, monkeypatch):
    """A trained network flings about one DDIM sample in 500 far away: the panels still frame the data."""

    def flinging(*args, **kwargs):
        results = compare(*args, **kwargs)
        for r in results:
            r.trajectory.frames[-1, : len(RUNAWAYS)] = RUNAWAYS
        return results

    monkeypatch.setattr(compare_module, "compare", flinging)
    view = window.compare_view  # the default preset, first shown after the data was set (as after training)
    compute(view, qtbot)
    view.timeline.slider.setValue(PROGRESS_FRAMES)
    view.grid.scene().prepareForPaint()  # view boxes apply a new range only when about to paint
    x_min, x_max, y_min, y_max = padded_extent(window.state.data.points)
    for panel in view.panels:
        shown = xy(panel.scatter)
        np.testing.assert_array_equal(shown[: len(RUNAWAYS)], RUNAWAYS)  # drawn, ...
        (x0, x1), (y0, y1) = panel.plot.getViewBox().viewRange()
        assert max(abs(x0), abs(x1), abs(y0), abs(y1)) < 20  # ... but far outside the frame
        tol = 1e-6 * (x_max - x_min)
        assert x0 <= x_min + tol and x1 >= x_max - tol and y0 <= y_min + tol and y1 >= y_max - tol  # all the data
        # the data fills the panel along one axis (equal aspect widens the other to the panel's shape; linked
        # panels whose axes differ by a few pixels widen it a little more)
        assert min((x1 - x0) / (x_max - x_min), (y1 - y0) / (y_max - y_min)) < 1.15


def choose_preset(view, qtbot, key: str) -> None:
    """Pick ``key`` in the preset combo box with the keyboard, as a user would (each step is 'activated')."""
    view.preset.setFocus()
    target = view.preset.findData(key)
    while view.preset.currentIndex() != target:
        qtbot.keyClick(view.preset, Qt.Key.Key_Down if view.preset.currentIndex() < target else Qt.Key.Key_Up)


def assert_nothing_shown(view, caption: str) -> None:
    """No panel shows samples, each names its new settings, and the metrics table has no numbers."""
    assert not view.has_content() and view.frame_count() == 0  # nothing to scrub or export
    for panel, spec in zip(view.panels, view.specs(), strict=True):
        assert panel.result is None and len(xy(panel.scatter)) == 0
        assert panel.caption.text == f"{spec.label} · {caption}"
    assert view.table.rowCount() == 0


def test_a_new_preset_never_shows_old_results_and_compares_again(window, qtbot):
    view = window.compare_view
    view.apply_preset("ddpm-vs-ddim")
    old = compute(view, qtbot)
    view.timeline.slider.setValue(PROGRESS_FRAMES)
    assert view.table.rowCount() == len(old) + 1

    choose_preset(view, qtbot, "solvers")
    assert view.preset.currentData() == "solvers" and len(view.panels) == 4
    assert_nothing_shown(view, "computing…")  # at once: old samples never sit under the new labels
    assert view.timeline.label.text() == "settings changed: comparing again…"
    with qtbot.waitSignal(view.computed, timeout=30_000):
        pass  # the visible view compares again once the settings rest
    new = view.result
    assert [r.spec for r in new] == view.specs()
    assert [r.label for r in new] == [
        "DDIM S=10 η=0 · exact", "Heun S=5 · exact", "DPM-Solver++(2M) S=10 · exact", "DDPM (β̃) · exact"]  # fmt: skip
    assert [view.table.item(row, 0).text() for row in range(4)] == [r.label for r in new]
    view.timeline.slider.setValue(PROGRESS_FRAMES)
    for panel, r in zip(view.panels, new, strict=True):
        np.testing.assert_array_equal(xy(panel.scatter), r.trajectory.samples)

    # one panel's steps, typed: that panel's label changes, and nothing old is shown under it
    qtbot.keyClick(view.editors[0].steps, Qt.Key.Key_Up)
    assert view.specs()[0].label == "DDIM S=11 η=0"
    assert_nothing_shown(view, "computing…")
    with qtbot.waitSignal(view.computed, timeout=30_000):
        pass
    assert view.result[0].label == "DDIM S=11 η=0 · exact" and view.result[0].trajectory.nfe == 11


def test_a_hidden_view_marks_changed_settings_and_compares_when_shown(window, qtbot):
    view = window.compare_view
    view.apply_preset("ddpm-vs-ddim")
    compute(view, qtbot)
    window.tabs.setCurrentWidget(window.forward_view)
    view.apply_preset("eta")  # e.g. a script, or the menu, while another tab is shown
    assert_nothing_shown(view, "compared when shown")
    assert not view.job.busy
    with qtbot.waitSignal(view.computed, timeout=30_000):
        window.tabs.setCurrentWidget(view)
    assert [r.spec for r in view.result] == view.specs() and view.preset.currentData() == "eta"
    assert all(len(xy(p.scatter)) == N_POINTS for p in view.panels)


# --- hover and pin --------------------------------------------------------------------------------------------------


def markers_follow(view, index: int, k: int) -> None:
    for panel in view.panels:
        traj = panel.result.trajectory
        f = panel_frame(k, len(traj.frames))
        np.testing.assert_array_equal(xy(panel.marker), traj.frames[f : f + 1, index])
        np.testing.assert_array_equal(xy(panel.path), traj.frames[: f + 1, index])


def test_hovering_highlights_a_point_in_every_panel_and_a_click_pins_it(window, qtbot):
    view = window.compare_view
    view.apply_preset("ddpm-vs-ddim")
    qtbot.waitExposed(view)
    compute(view, qtbot)
    k = 20
    view.timeline.slider.setValue(k)
    assert view.highlight is None and all(len(xy(p.marker)) == 0 for p in view.panels)
    moves = []  # every move the scene sees (QTest drops a move to where it last moved the mouse)
    view.grid.scene().sigMouseMoved.connect(moves.append)

    def hover(pixel: QPoint) -> None:
        seen = len(moves)
        qtbot.mouseMove(view.grid.viewport(), pixel)
        assert len(moves) == seen + 1

    panel = view.panels[1]
    frame = panel.result.trajectory.frames[panel_frame(k, len(panel.result.trajectory.frames))]
    index = isolated_point(view, panel, frame)
    hover(pixel_of(view, panel, frame[index]))
    assert view.highlight == index and not view.pinned
    markers_follow(view, index, k)
    assert not np.allclose(xy(view.panels[0].marker), xy(view.panels[2].marker))  # each in its own trajectory

    # another point under the mouse: the highlight follows it
    other = view.panels[2]
    other_frame = other.result.trajectory.frames[panel_frame(k, len(other.result.trajectory.frames))]
    second = isolated_point(view, other, other_frame, exclude=index)
    assert second != index
    hover(pixel_of(view, other, other_frame[second]))
    assert view.highlight == second
    markers_follow(view, second, k)

    # a click pins the point under it; moving elsewhere keeps it
    qtbot.mouseClick(view.grid.viewport(), LEFT, pos=pixel_of(view, panel, frame[index]))
    assert view.pinned and view.highlight == index
    hover(pixel_of(view, other, other_frame[second]) + QPoint(0, 1))
    assert view.highlight == index
    markers_follow(view, index, k)
    view.timeline.slider.setValue(80)  # the pinned point is followed along the timeline
    markers_follow(view, index, 80)
    # a second click unpins; then hovering moves the highlight again
    qtbot.wait(QApplication.styleHints().mouseDoubleClickInterval() + 50)  # not a double click
    qtbot.mouseClick(view.grid.viewport(), LEFT, pos=pixel_of(view, panel, frame[index]))
    assert not view.pinned
    view.timeline.slider.setValue(k)
    hover(pixel_of(view, other, other_frame[second]) + QPoint(1, 0))
    assert view.highlight == second
    markers_follow(view, second, k)


# --- the sweep ------------------------------------------------------------------------------------------------------


def test_sweep_plots_quality_against_nfe_per_family(window, qtbot):
    view = window.compare_view
    view.apply_preset("solvers")  # DDIM 10, Heun 5, DPM-Solver++(2M) 10, DDPM
    view.sweep_steps.setText("4, 2")
    with qtbot.waitSignal(view.sweep_job.done, timeout=30_000):
        qtbot.mouseClick(view.sweep_button, LEFT)
    assert view.sweep_button.isEnabled() and view.bottom.currentIndex() == 1
    points = view.sweep_points
    assert [(p.label, p.steps, p.nfe) for p in points] == [
        ("DDIM η=0 · exact", 2, 2), ("DDIM η=0 · exact", 4, 4), ("Heun · exact", 2, 3), ("Heun · exact", 4, 7),
        ("DPM-Solver++(2M) · exact", 2, 2), ("DPM-Solver++(2M) · exact", 4, 4),
        ("DDPM (β̃) · exact", None, 1000)]  # fmt: skip

    # the sweep's numbers are the core's own
    state = window.state
    reference = Reference.draw(fresh_draw(state.data_info, state.data.points, N_POINTS))
    specs = [PanelSpec("ddim", {"steps": 10}), PanelSpec("heun", {"steps": 5}), PanelSpec("dpmpp_2m", {"steps": 10}),
             PanelSpec("ddpm")]  # fmt: skip
    alone = core_compare.sweep(specs, [2, 4], None, state.data, Schedule.make(), reference, n=N_POINTS)
    for p, q in zip(points, alone, strict=True):
        assert (p.label, p.steps, p.nfe) == (q.label, q.steps, q.nfe)
        for name in METRICS:
            assert p.metrics[name].value == pytest.approx(q.metrics[name].value, rel=1e-12)

    curves = view.sweep_plot.listDataItems()
    families = ["DDIM η=0", "Heun", "DPM-Solver++(2M)", "DDPM (β̃)"]
    assert [c.name() for c in curves] == [f"{family} · exact" for family in families]
    assert view.sweep_metric.currentData() == "energy"
    for curve in curves:
        mine = sorted((p.nfe, p.metrics["energy"].ratio) for p in points if p.label == curve.name())
        np.testing.assert_allclose(np.column_stack([curve.xData, curve.yData]), mine, rtol=1e-12)
    # another metric redraws the same families
    view.sweep_metric.setCurrentIndex(view.sweep_metric.findData("nn_recall"))
    curves = view.sweep_plot.listDataItems()
    assert len(curves) == 4
    np.testing.assert_allclose(curves[1].yData, [p.metrics["nn_recall"].ratio for p in points[2:4]], rtol=1e-12)

    # bad step counts are refused with a message
    view.sweep_steps.setText("2, x")
    assert not view.start_sweep()
    assert "whole numbers" in window.statusBar().currentMessage()
    view.sweep_steps.setText("0")
    assert not view.start_sweep()


# --- exports --------------------------------------------------------------------------------------------------------


def test_exports_animate_every_progress_step(window, qtbot, tmp_path):
    window.resize(800, 600)  # smaller frames: 101 of them are grabbed and encoded
    view = window.compare_view
    view.apply_preset("ddpm-vs-ddim")
    qtbot.waitExposed(view)
    view.points.setValue(50)
    results = compute(view, qtbot)
    view.timeline.slider.setValue(37)

    # the DDPM panel's caption ("t = …", "NFE …") differs at every one of the 101 positions, so Pillow merges none
    assert view.export(tmp_path / "c.gif")
    assert window.statusBar().currentMessage() == f"exported 101 frames to {tmp_path / 'c.gif'}"
    with Image.open(tmp_path / "c.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == 101
        assert gif.size == (view.grid.width(), view.grid.height())
    assert view.timeline.frame == 37  # the export left the frame as it was
    for panel, r in zip(view.panels, results, strict=True):
        np.testing.assert_array_equal(xy(panel.scatter), r.trajectory.frames[panel_frame(37, len(r.trajectory.frames))])

    assert view.export(tmp_path / "c.png")
    with Image.open(tmp_path / "c.png") as png:
        png.load()
        assert png.format == "PNG" and png.size == (view.grid.width(), view.grid.height())

    assert view.export(tmp_path / "c.npy")
    frames = np.load(tmp_path / "c.npy")
    assert frames.shape == (101, 3 * 50, 2)
    for k in (0, 37, 100):
        expected = [r.trajectory.frames[panel_frame(k, len(r.trajectory.frames))] for r in results]
        np.testing.assert_array_equal(frames[k], np.concatenate(expected))

    assert view.export(tmp_path / "c.csv")
    np.testing.assert_allclose(load_points(tmp_path / "c.csv").points, frames[37], rtol=1e-7, atol=1e-7)


# --- closing mid-computation ----------------------------------------------------------------------------------------


def test_closing_while_comparing_cancels_at_once(window, qtbot, close_at_once):
    view = window.compare_view
    view.apply_preset("ddpm-vs-langevin")
    view.editors[1].steps.setValue(1000)  # 10,000 Langevin steps after 1,000 DDPM steps: seconds of work
    view.points.setValue(200)
    assert view.compute()
    sampling(view, qtbot)
    worker = view.job.worker
    assert worker is not None and worker.isRunning()
    close_at_once(window, worker)
    assert not view.job.busy and view.result is None


def test_closing_while_sweeping_many_short_runs_cancels_at_once(window, qtbot, close_at_once):
    view = window.compare_view
    view.apply_preset("eta")  # four families of short DDIM runs: the sweep checks between runs
    view.sweep_steps.setText(", ".join(str(s) for s in range(1, 41)))
    assert view.start_sweep()
    qtbot.waitUntil(lambda: view.sweep_bar.maximum() == 160 and view.sweep_bar.value() >= 1, timeout=10_000)
    worker = view.sweep_job.worker
    assert worker is not None and worker.isRunning() and not view.sweep_button.isEnabled()
    close_at_once(window, worker)
    assert not view.sweep_job.busy and view.sweep_points == []


# --- known bugs -----------------------------------------------------------------------------------------------------


def test_closing_while_the_floors_are_computed_cancels_at_once(window, qtbot, monkeypatch, close_at_once):
    view = window.compare_view
    view.points.setValue(2000)  # the default
    entered = threading.Event()
    floors = core_compare.floors

    def watched(*args, **kwargs):
        entered.set()
        return floors(*args, **kwargs)

    monkeypatch.setattr(core_compare, "floors", watched)
    assert view.compute()
    assert entered.wait(10)
    close_at_once(window, view.job.worker)


def test_closing_during_one_long_sweep_run_cancels_at_once(window, qtbot, close_at_once):
    view = window.compare_view
    view.apply_preset("ddpm-vs-langevin")
    view.editors[0].set_spec(PanelSpec("langevin", {"steps_per_level": 20}))  # the long run first
    view.editors[1].set_spec(PanelSpec("ddpm"))
    view.sweep_steps.setText("1000")
    view.points.setValue(200)
    assert view.start_sweep()
    qtbot.waitUntil(lambda: view.sweep_bar.maximum() == 2, timeout=10_000)  # progress(0, 2): the first run starts
    close_at_once(window, view.sweep_job.worker)


def test_the_backdrop_follows_the_data(window, qtbot):
    view = window.compare_view
    compute(view, qtbot)
    window.data_panel.n.setValue(150)  # new data: the visible view recomputes
    qtbot.waitSignal(view.computed, timeout=30_000).wait()
    assert len(window.state.data) == 150
    for panel in view.panels:
        np.testing.assert_array_equal(xy(panel.backdrop), window.state.data.points)


def test_changing_the_panel_count_while_comparing(window, qtbot):
    view = window.compare_view
    view.apply_preset("ddpm-vs-ddim")
    with qtbot.captureExceptions() as exceptions, qtbot.waitSignal(view.job.done, timeout=30_000):
        assert view.compute()
        view.count.setValue(4)  # while the three panels are computed
    assert [str(e) for _, e, _ in exceptions] == []
    assert view.result is None or all(panel.result is not None for panel in view.panels)
