"""Class conditioning and classifier-free guidance in the app, driven as a user would: the class pickers and
guidance sliders of the reverse, score and compare views (recomputed in the worker, the per-class table), the
unconditional/conditional/guided score fields checked against u + w (c − u), the guidance compare preset, and the
label settings of the model panel. With labelled data and no trained run every view uses the exact model of the
data, which is class-conditional."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt

from diffvis.app.models import reverse as reverse_module
from diffvis.app.views.class_controls import SETTLE_MS
from diffvis.core.classes import ALL_CLASSES, UNCONDITIONAL
from diffvis.core.metrics import nearest_labels

LEFT = Qt.MouseButton.LeftButton
N_DATA = 120  # training points
N_SAMPLES = 100  # samples per computation
STEPS = 8  # DDIM steps

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def window(make_window):
    win = make_window()
    win.data_panel.source.setCurrentText("moons")
    win.data_panel.n.setValue(N_DATA)
    return win


@pytest.fixture
def reverse(window, qtbot):
    """The reverse view set to DDIM with few steps over few points, then shown: it samples at once."""
    view = window.reverse_view
    view.controls.combo.setCurrentIndex(view.controls.combo.findData("ddim"))
    steps(view).setValue(STEPS)
    view.points.setValue(N_SAMPLES)
    view.trails.setValue(0)
    with qtbot.waitSignal(view.computed, timeout=30_000):
        window.tabs.setCurrentWidget(view)
    return view


# --- helpers --------------------------------------------------------------------------------------------------------


def xy(item) -> np.ndarray:
    """(M, 2) the points a scatter item holds (none yet: (0, 2))."""
    x, y = item.getData()
    if x is None or len(x) == 0:
        return np.zeros((0, 2))
    return np.column_stack([x, y])


def compute(view, qtbot, timeout=30_000):
    """Press the view's compute button and wait for its result."""
    if view.job.busy:  # the computation the view started when first shown: cancel it, as a user would
        qtbot.mouseClick(view.compute_button, LEFT)
    assert not view.job.busy
    with qtbot.waitSignal(view.computed, timeout=timeout):
        qtbot.mouseClick(view.compute_button, LEFT)
    return view.result


def steps(view):
    """The reverse view's editor of DDIM's step count S."""
    return view.controls.settings["ddim"].editors["steps"]


def items(picker) -> list[tuple[str, object]]:
    return [(picker.itemText(i), picker.itemData(i)) for i in range(picker.count())]


def choose(picker, text: str) -> None:
    index = picker.findText(text)
    assert index >= 0, f"{text!r} not offered: {items(picker)}"
    picker.setCurrentIndex(index)


def table_rows(table) -> list[list[str]]:
    return [[table.item(r, c).text() for c in range(3)] for r in range(table.rowCount())]


def show_last_frame(view) -> np.ndarray:
    """Scrub the view to its last frame; the points its scatter draws there."""
    view.timeline.slider.setValue(view.timeline.slider.maximum())
    return xy(view.scatter)


def count_emissions(signal) -> list:
    seen = []
    signal.connect(lambda *args: seen.append(args))
    return seen


# --- 1. the reverse view's class picker -----------------------------------------------------------------------------


def test_reverse_view_offers_the_data_classes_and_only_unconditional_for_unlabelled_data(window, reverse, qtbot):
    view, picker = reverse, reverse.class_picker
    assert items(picker) == [("unconditional", None), ("all, in proportion", ALL_CLASSES), ("upper", 0), ("lower", 1)]
    # a model with classes samples every class in proportion unless asked otherwise
    assert picker.isEnabled() and picker.label == ALL_CLASSES and view.guidance.isEnabled()
    choose(picker, "unconditional")
    assert picker.label is None and not view.guidance.isEnabled()  # no class: nothing to guide towards
    choose(picker, "lower")
    assert picker.label == 1 and view.guidance.isEnabled()
    choose(picker, "all, in proportion")
    assert picker.label == ALL_CLASSES and view.guidance.isEnabled()
    choose(picker, "unconditional")
    assert not view.guidance.isEnabled()

    # eight labelled Gaussians: eight classes, named by their angle
    window.data_panel.source.setCurrentText("gmm8")
    names = [f"{45 * i}°" for i in range(8)]
    assert items(picker) == [("unconditional", None), ("all, in proportion", ALL_CLASSES)] + [
        (name, i) for i, name in enumerate(names)
    ]
    choose(picker, "90°")
    assert view.guidance.isEnabled()

    # unlabelled data: only 'unconditional', the picker and the slider disabled
    window.data_panel.source.setCurrentText("butterfly")
    assert window.state.data.labels is None
    assert items(picker) == [("unconditional", None)]
    assert picker.label is None and not picker.isEnabled() and not view.guidance.isEnabled()
    # the score and compare views follow the same data
    assert items(window.score_view.class_picker) == [("unconditional", None)]
    assert not window.score_view.class_picker.isEnabled() and not window.score_view.guidance.isEnabled()
    assert items(window.compare_view.class_picker) == [("unconditional", None)]

    # labelled again: the classes come back, 'all, in proportion' chosen
    window.data_panel.source.setCurrentText("moons")
    assert [text for text, _ in items(picker)] == ["unconditional", "all, in proportion", "upper", "lower"]
    assert picker.isEnabled() and picker.label == ALL_CLASSES and view.guidance.isEnabled()


def test_guidance_slider_reads_w_in_tenths(reverse, qtbot):
    guidance = reverse.guidance
    assert (guidance.slider.minimum(), guidance.slider.maximum(), guidance.slider.value()) == (0, 100, 10)
    assert guidance.w == 1.0 and guidance.readout.text() == "w = 1.0"
    moves = count_emissions(guidance.changed)
    guidance.slider.setValue(37)
    assert guidance.w == pytest.approx(3.7) and guidance.readout.text() == "w = 3.7"
    guidance.set_w(7.25)  # rounds to the slider's tenths
    assert guidance.slider.value() == 72 and guidance.readout.text() == "w = 7.2"
    assert moves == [(3.7,), (7.2,)]
    with qtbot.waitSignal(guidance.settled, timeout=2000) as settled:
        pass
    assert settled.args == [7.2]


def test_the_class_choice_is_kept_across_new_draws_of_the_same_classes(window, reverse, qtbot):
    picker = reverse.class_picker
    choose(picker, "lower")
    window.data_panel.n.setValue(100)  # the same two moons, drawn again
    assert picker.currentText() == "lower" and picker.label == 1 and reverse.guidance.isEnabled()
    choose(picker, "all, in proportion")
    window.data_panel.source.setCurrentText("gmm8")  # other classes: 'all' is still offered
    assert picker.count() == 10 and picker.label == ALL_CLASSES and reverse.guidance.isEnabled()


def test_a_chosen_class_is_not_swapped_for_another_when_the_classes_change(window, reverse, qtbot):
    choose(reverse.class_picker, "lower")
    assert compute(reverse, qtbot).request.label == 1
    with qtbot.waitSignal(reverse.computed, timeout=30_000):  # new data: resampled at once
        window.data_panel.source.setCurrentText("gmm8")
    assert reverse.class_picker.currentText() != "45°"  # the class is gone: back to the default, every class
    assert reverse.class_picker.label == ALL_CLASSES and reverse.result.request.label == ALL_CLASSES


# --- 2. choosing a class --------------------------------------------------------------------------------------------


def test_choosing_a_class_recomputes_in_the_worker_and_samples_only_that_class(window, reverse, qtbot, monkeypatch):
    view, data = reverse, window.state.data
    threads = []
    real = reverse_module.sample_request

    def recording(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(reverse_module, "sample_request", recording)

    with qtbot.waitSignal(view.computed, timeout=30_000):  # shown: another class samples again at once
        choose(view.class_picker, "unconditional")
    first = view.result
    assert first.request.label == UNCONDITIONAL and view.model.label == UNCONDITIONAL
    assert first.trajectory.labels is None and "class" not in first.trajectory.params
    assert first.class_scores == [] and view.class_table.isHidden() and view.class_table.rowCount() == 0
    # unconditional samples of the exact model land on both moons
    assert set(nearest_labels(first.trajectory.samples, data.points, data.labels)) == {0, 1}

    with qtbot.waitSignal(view.computed, timeout=30_000):
        choose(view.class_picker, "lower")
        assert view.job.busy  # the recomputation runs in the worker: the GUI thread is free meanwhile
    result = view.result
    assert result is not first and len(threads) == 2
    assert all(t is not threading.main_thread() for t in threads)
    traj = result.trajectory
    assert (result.request.params["steps"], result.request.label, result.request.guidance) == (STEPS, 1, 1.0)
    assert traj.params["class"] == 1 and traj.params["guidance"] == 1.0
    np.testing.assert_array_equal(traj.labels, np.ones(N_SAMPLES, dtype=np.int64))
    # every final sample's nearest training point is a 'lower' one
    nearest = nearest_labels(traj.samples, data.points, data.labels)
    np.testing.assert_array_equal(nearest, np.ones(N_SAMPLES, dtype=np.int64))
    # the same noise as before: only where it is carried differs
    np.testing.assert_array_equal(traj.frames[0], first.trajectory.frames[0])
    # the drawn points are the trajectory's, at the frame shown before: the last
    assert view.timeline.frame == view.model.frame == STEPS
    np.testing.assert_array_equal(xy(view.scatter), traj.samples)
    np.testing.assert_allclose(show_last_frame(view), traj.samples)

    # the class table: one row, for 'lower', every sample nearest its own class
    table = view.class_table
    assert table.isVisible()
    assert [s.name for s in table.scores] == ["lower"]
    assert table.scores[0].count == N_SAMPLES and table.scores[0].accuracy == 1.0
    assert table_rows(table) == [["lower", str(N_SAMPLES), "100.0 %"]]
    assert table.item(0, 3).text().endswith("× floor")

    # back to unconditional: recomputed, the table hidden again
    with qtbot.waitSignal(view.computed, timeout=30_000):
        choose(view.class_picker, "unconditional")
    assert view.result.trajectory.labels is None and view.result.request.label == UNCONDITIONAL
    assert not view.result.request.conditional
    np.testing.assert_array_equal(view.result.trajectory.samples, first.trajectory.samples)
    assert view.class_table.isHidden() and view.class_table.rowCount() == 0


def test_a_class_chosen_in_a_hidden_view_computes_nothing_until_it_is_shown(window, qtbot):
    view = window.reverse_view
    steps(view).setValue(STEPS)
    view.points.setValue(N_SAMPLES)
    assert not view.isVisible()
    computed = count_emissions(view.computed)
    choose(view.class_picker, "upper")
    assert not view.job.busy and view.result is None
    qtbot.wait(50)
    assert computed == []
    with qtbot.waitSignal(view.computed, timeout=30_000):  # first shown: it samples, with the class chosen
        window.tabs.setCurrentWidget(view)
    result = view.result
    assert len(computed) == 1
    assert result.request.label == 0 and set(result.trajectory.labels) == {0}


# --- 3. the guidance slider -----------------------------------------------------------------------------------------


def test_moving_the_guidance_slider_resamples_in_the_worker(window, reverse, qtbot, monkeypatch):
    view, data = reverse, window.state.data
    choose(view.class_picker, "lower")
    at_one = compute(view, qtbot)
    assert at_one.request.guidance == 1.0
    final_at_one = show_last_frame(view)
    np.testing.assert_allclose(final_at_one, at_one.trajectory.samples)

    threads = []
    real = reverse_module.sample_request

    def recording(model, request, **kwargs):
        threads.append((threading.current_thread(), request.guidance))
        return real(model, request, **kwargs)

    monkeypatch.setattr(reverse_module, "sample_request", recording)

    settled = count_emissions(view.guidance.settled)
    computed = count_emissions(view.computed)
    busy_when_settled = []
    view.guidance.settled.connect(lambda _: busy_when_settled.append(view.job.busy))
    # a drag: three quick steps of the keyboard (PageUp: +1.0 each), well inside the settling time
    view.guidance.slider.setFocus()
    with qtbot.waitSignal(view.computed, timeout=30_000):
        for _ in range(3):
            qtbot.keyClick(view.guidance.slider, Qt.Key.Key_PageUp)
        assert view.guidance.w == 4.0 and view.guidance.readout.text() == "w = 4.0"
        assert view.result is at_one and not view.job.busy  # nothing is computed while the slider moves
    qtbot.wait(3 * SETTLE_MS)  # nothing else is on its way
    assert settled == [(4.0,)] and len(computed) == 1 and busy_when_settled == [True]
    assert len(threads) == 1 and threads[0][0] is not threading.main_thread() and threads[0][1] == 4.0

    at_four = view.result
    assert (at_four.request.label, at_four.request.guidance) == (1, 4.0) and view.model.guidance == 4.0
    assert at_four.trajectory.params["guidance"] == 4.0 and at_four.trajectory.params["class"] == 1
    # the same noise, carried elsewhere: the drawn samples at the last frame changed
    np.testing.assert_array_equal(at_four.trajectory.frames[0], at_one.trajectory.frames[0])
    assert view.timeline.frame == STEPS  # the frame shown before, the last
    final_at_four = show_last_frame(view)
    np.testing.assert_allclose(final_at_four, at_four.trajectory.samples)
    moved = np.linalg.norm(final_at_four - final_at_one, axis=1)
    assert moved.max() > 1e-3, "guidance at w = 4 left the samples where w = 1 put them"
    # still of their class
    np.testing.assert_array_equal(nearest_labels(at_four.trajectory.samples, data.points, data.labels), 1)


def test_a_move_during_sampling_supersedes_it_and_only_the_last_w_is_shown(reverse, qtbot, monkeypatch):
    view = reverse
    choose(view.class_picker, "upper")
    compute(view, qtbot)

    gate, calls = threading.Event(), []
    real = reverse_module.sample_request

    def slow_first(model, request, **kwargs):
        calls.append(request.guidance)
        if len(calls) == 1:  # held until superseded, then finished regardless (deaf to the cancellation)
            assert gate.wait(20), "the first computation was never released"
            kwargs.pop("callback")
        return real(model, request, **kwargs)

    monkeypatch.setattr(reverse_module, "sample_request", slow_first)
    shown = []
    view.computed.connect(lambda: shown.append(view.result.request.guidance))

    with qtbot.waitSignal(view.guidance.settled, timeout=2000):
        view.guidance.slider.setValue(20)
    assert view.job.busy
    qtbot.waitUntil(lambda: calls == [2.0], timeout=5000)
    # the second move settles while the first sampling still runs; that one is released only then
    view.guidance.settled.connect(lambda w: gate.set())
    with qtbot.waitSignal(view.computed, timeout=30_000):
        view.guidance.slider.setValue(55)
    qtbot.wait(300)  # the superseded result, finished by now, must not arrive
    assert gate.is_set() and calls == [2.0, 5.5]
    assert shown == [5.5]
    assert view.result.request.guidance == 5.5 and view.result.trajectory.params["guidance"] == 5.5


# --- 4. every class, in proportion ----------------------------------------------------------------------------------


def test_all_in_proportion_draws_every_class_by_its_share(window, reverse, qtbot):
    view = reverse
    window.data_panel.source.setCurrentText("gmm8")
    window.data_panel.n.setValue(160)
    data = window.state.data
    n = 240
    view.points.setValue(n)
    choose(view.class_picker, "all, in proportion")
    result = compute(view, qtbot)
    traj = result.trajectory
    assert result.request.label == ALL_CLASSES and traj.params["class"] == "all"
    classes = result.model.classes
    assert classes.names == tuple(f"{45 * i}°" for i in range(8))
    counts = np.bincount(traj.labels, minlength=8)
    assert counts.sum() == n and np.all(counts > 0)
    shares = np.bincount(data.labels, minlength=8) / len(data)
    np.testing.assert_allclose(classes.fractions, shares)
    assert np.abs(counts / n - shares).max() < 0.08
    # each sample lands on its own Gaussian
    nearest = nearest_labels(traj.samples, data.points, data.labels)
    assert (nearest == traj.labels).mean() > 0.95

    table = view.class_table
    assert table.isVisible() and table.rowCount() == 8
    assert [row[0] for row in table_rows(table)] == list(classes.names)
    assert [int(row[1]) for row in table_rows(table)] == counts.tolist()
    for score, row in zip(table.scores, table_rows(table), strict=True):
        assert row[2] == f"{100 * score.accuracy:.1f} %"
        assert score.accuracy > 0.8


# --- 5. the score view's three fields -------------------------------------------------------------------------------


def test_score_view_switches_fields_without_recomputing(window, qtbot):
    view = window.score_view
    window.tabs.setCurrentWidget(view)
    view.resolution.setValue(6)
    view.levels.setValue(4)
    assert [view.field.itemData(i) for i in range(view.field.count())] == ["unconditional", "conditional", "guided"]
    assert items(view.class_picker) == [("unconditional", None), ("upper", 0), ("lower", 1)]  # no 'all' here
    assert not view.field.isEnabled() and not view.guidance.isEnabled()

    first = compute(view, qtbot)
    assert first.label is None and first.conditional is None
    with qtbot.waitSignal(view.computed, timeout=30_000):  # a class chosen after computing: computed again
        choose(view.class_picker, "lower")
        assert view.job.busy
    fields = view.result
    assert fields is not first and fields.label == 1 and fields.conditional is not None
    assert view.field.isEnabled() and view.guidance.isEnabled()
    u, c = fields.unconditional, fields.conditional
    np.testing.assert_array_equal(u.times, c.times)
    k = 2
    view.timeline.slider.setValue(k)
    grid = len(u.xs) * len(u.ys)

    computed = count_emissions(view.computed)

    def drawn(kind: str) -> np.ndarray:
        view.field.setCurrentIndex(view.field.findData(kind))
        assert view.result is fields and not view.job.busy
        assert view.quiver.vectors.shape == (grid, 2)
        return view.quiver.vectors.copy()

    unconditional = drawn("unconditional")
    np.testing.assert_array_equal(unconditional, fields.unconditional.shown[k].reshape(-1, 2))
    assert view.model.series is fields.unconditional
    conditional = drawn("conditional")
    np.testing.assert_array_equal(conditional, c.shown[k].reshape(-1, 2))
    assert view.caption.text.endswith("lower, w = 1")
    assert np.abs(conditional - unconditional).max() > 1e-3  # the class's field differs from the data's

    view.guidance.set_w(4.0)  # the slider moves, nothing is recomputed
    guided = drawn("guided")
    u_k, c_k = u.shown[k].reshape(-1, 2), c.shown[k].reshape(-1, 2)
    np.testing.assert_allclose(guided, u_k + 4.0 * (c_k - u_k), rtol=1e-5, atol=1e-5)
    assert view.caption.text.endswith("lower, w = 4")
    assert np.abs(guided - conditional).max() > 1e-3

    # the slider re-guides the shown field at once
    view.guidance.slider.setValue(25)
    np.testing.assert_allclose(view.quiver.vectors, u_k + 2.5 * (c_k - u_k), rtol=1e-5, atol=1e-5)
    assert view.caption.text.endswith("lower, w = 2.5")
    view.guidance.set_w(1.0)  # w = 1: the guided field is the conditional one
    np.testing.assert_allclose(view.quiver.vectors, conditional, rtol=1e-5, atol=1e-5)
    view.guidance.set_w(0.0)  # w = 0: the unconditional one
    np.testing.assert_allclose(view.quiver.vectors, unconditional, rtol=1e-5, atol=1e-5)

    # another frame: the guided field follows the timeline
    view.guidance.set_w(3.0)
    view.timeline.slider.setValue(1)
    u_1, c_1 = u.shown[1].reshape(-1, 2), c.shown[1].reshape(-1, 2)
    np.testing.assert_allclose(view.quiver.vectors, u_1 + 3.0 * (c_1 - u_1), rtol=1e-5, atol=1e-5)
    drawn("unconditional")
    np.testing.assert_array_equal(view.quiver.vectors, u_1)

    qtbot.wait(3 * SETTLE_MS)  # the slider's settling triggers nothing here either
    assert computed == [] and view.result is fields and not view.job.busy


def test_score_view_shows_the_class_picked_while_it_computes(window, qtbot):
    view = window.score_view
    window.tabs.setCurrentWidget(view)
    view.resolution.setValue(6)
    view.levels.setValue(3)
    choose(view.class_picker, "upper")
    assert compute(view, qtbot).label == 0
    with qtbot.waitSignal(view.computed, timeout=30_000):
        choose(view.class_picker, "lower")  # computing 'lower' ...
        assert view.job.busy
        choose(view.class_picker, "upper")  # ... and back before it is done
    qtbot.wait(300)
    assert view.class_picker.label == 0
    assert view.result.label == view.class_picker.label


# --- 6. the compare view's guidance preset --------------------------------------------------------------------------


def test_compare_guidance_preset_samples_every_class_at_four_scales(window, qtbot):
    view = window.compare_view
    window.tabs.setCurrentWidget(view)
    view.points.setValue(60)
    assert view.class_picker.label == ALL_CLASSES  # the default for a model with classes
    choose(view.class_picker, "unconditional")
    view.model.apply_preset("guidance")
    assert view.class_picker.currentText() == "all, in proportion" and view.class_picker.label == ALL_CLASSES
    assert view.count.value() == 4 and len(view.panels) == 4
    assert [editor.guidance.value() for editor in view.editors[:4]] == [0.0, 1.0, 3.0, 7.0]
    for editor in view.editors[:4]:
        steps = editor.controls.settings["ddim"].editors["steps"]
        assert editor.controls.sampler == "ddim" and steps.value() == 50
        steps.setValue(5)  # keep it quick

    requests = view.model.requests()  # w = 1 for every class is the model's default: the request leaves it unsaid
    assert [(r.label, r.guidance) for r in requests] == [(ALL_CLASSES, 0.0), (None, 1.0), (ALL_CLASSES, 3.0),
                                                         (ALL_CLASSES, 7.0)]  # fmt: skip

    results = compute(view, qtbot, timeout=60_000)
    assert len(results) == 4
    for result, w in zip(results, [" w=0", "", " w=3", " w=7"], strict=True):
        assert re.fullmatch(rf"DDIM S=5 η=0{w} · exact", result.label), result.label
    trajs = [panel.result.trajectory for panel in view.panels]
    for traj, w in zip(trajs, [0.0, 1.0, 3.0, 7.0], strict=True):
        assert traj.params["class"] == "all" and traj.params["guidance"] == w
        np.testing.assert_array_equal(traj.frames[0], trajs[0].frames[0])  # the same initial noise
        np.testing.assert_array_equal(traj.labels, trajs[0].labels)  # and the same labels
    assert set(trajs[0].labels) == {0, 1}
    # w changes where the samples end up
    assert np.abs(trajs[3].samples - trajs[1].samples).max() > 1e-3
    assert np.abs(trajs[0].samples - trajs[1].samples).max() > 1e-3
    # the captions name the scale
    for panel, w in zip(view.panels, [" w=0", "", " w=3", " w=7"], strict=True):
        assert f"η=0{w} · exact" in panel.caption.text

    # an editor's own w goes into its panel's request
    view.editors[2].guidance.setValue(2.5)
    assert view.model.requests()[2].guidance == 2.5
    # unconditional: f(x, t, ∅), no guidance in the requests
    choose(view.class_picker, "unconditional")
    assert all(r.label == UNCONDITIONAL and not r.conditional for r in view.model.requests())
    # a preset without classes goes back to the default, every class in proportion
    view.model.apply_preset("eta")
    assert view.class_picker.label == ALL_CLASSES and all(r.label is None for r in view.model.requests())


# --- 7. the model panel's label settings ----------------------------------------------------------------------------


def test_model_panel_writes_the_label_settings(window, qtbot):
    panel = window.model_panel
    panel.show()
    assert window.state.train_config.conditional is True and panel.conditional.isChecked()
    assert window.state.train_config.p_uncond == pytest.approx(0.1) and panel.p_uncond.value() == pytest.approx(0.1)

    changes = count_emissions(window.state.train_config_changed)
    qtbot.mouseClick(panel.conditional, LEFT)  # untick
    assert not panel.conditional.isChecked()
    assert window.state.train_config.conditional is False and len(changes) == 1
    assert changes[0][0].conditional is False

    panel.p_uncond.setFocus()
    qtbot.keyClick(panel.p_uncond, Qt.Key.Key_Up)  # one step: 0.10 → 0.15
    assert window.state.train_config.p_uncond == pytest.approx(0.15)
    panel.p_uncond.setValue(0.3)
    assert window.state.train_config.p_uncond == pytest.approx(0.3)
    assert window.state.train_config.conditional is False  # the other setting is kept
    panel.p_uncond.setValue(2.0)  # clamped to the spin's range
    assert window.state.train_config.p_uncond == pytest.approx(0.95) and panel.valid

    qtbot.mouseClick(panel.conditional, LEFT)  # tick again
    assert window.state.train_config.conditional is True
    assert window.state.train_config.p_uncond == pytest.approx(0.95)
