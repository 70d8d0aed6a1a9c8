"""The exact model of a known distribution, offered beside the exact model of the training points: chosen through
the real model combo of the reverse view and of a compare panel, enabled only for data drawn from a known density."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from diffvis.core.request import EXACT_DENSITY


@pytest.fixture
def window(make_window):
    win = make_window()
    win.data_panel.source.setCurrentText("gmm8")
    win.data_panel.n.setValue(60)
    win.tabs.setCurrentWidget(win.reverse_view)
    return win


def density_item(box):
    return box.model().item(box.findData(EXACT_DENSITY))


def test_the_reverse_view_samples_the_distribution_not_the_points(window, qtbot):
    view = window.reverse_view
    assert density_item(view.model_choice).isEnabled()
    view.points.setValue(300)
    view.model_choice.setCurrentIndex(view.model_choice.findData(EXACT_DENSITY))
    assert view.model.request.exact == EXACT_DENSITY
    with qtbot.waitSignal(view.computed, timeout=60_000):
        assert view.compute()
    samples = view.model.trajectory.samples.astype(np.float64)
    data = window.state.data.points
    gaps = np.linalg.norm(samples[:, None] - data[None], axis=-1).min(1)
    assert np.median(gaps) > 0.02  # fresh draws of the mixture, not the 60 training points (the points' model: ~0)
    log_p = window.state.data.density.log_prob(torch.as_tensor(samples)).numpy()
    assert np.median(log_p) > -1.0  # and they sit where the mixture's mass is (gmm8: log p ≈ 0.2 at its means)
    assert "exact density" in view.caption.text or "exact density" in view.plot.getPlotItem().titleLabel.text


def test_data_without_a_known_density_greys_the_choice_out(window):
    window.data_panel.source.setCurrentText("moons")
    assert not density_item(window.reverse_view.model_choice).isEnabled()
    editor = window.compare_view.editors[0]
    assert not density_item(editor.model_choice).isEnabled()
    window.data_panel.source.setCurrentText("grid25")
    assert density_item(window.reverse_view.model_choice).isEnabled() and density_item(editor.model_choice).isEnabled()


def test_a_compare_panel_can_sample_the_exact_density(window, qtbot):
    view = window.compare_view
    window.tabs.setCurrentWidget(view)
    view.count.setValue(2)
    editor = view.editors[1]
    editor.model_choice.setCurrentIndex(editor.model_choice.findData(EXACT_DENSITY))
    assert view.model.panels[1].request.exact == EXACT_DENSITY
    with qtbot.waitSignal(view.computed, timeout=120_000):
        assert view.compute()
    assert view.model.result[1].label.endswith("· exact density")


def test_langevin_follows_the_exact_density_score_and_draws_its_arrows(window, qtbot):
    from diffvis.core.fields import field_series, padded_extent
    from diffvis.core.pipeline import request_model

    view = window.langevin_view
    window.tabs.setCurrentWidget(view)
    assert density_item(view.model_choice).isEnabled()
    view.points.setValue(200)
    view.model_choice.setCurrentIndex(view.model_choice.findData(EXACT_DENSITY))
    assert view.model.request.exact == EXACT_DENSITY
    with qtbot.waitSignal(view.computed, timeout=120_000):
        assert view.compute()
    result = view.model.result
    assert result.source == "exact density score" and result.model.model.mixture is not None
    state = window.state
    model, _ = request_model(view.model.request, None, state.data, result.model.schedule)
    expected = field_series(model, state.data.points, padded_extent(state.data.points),
                            resolution=view.model.resolution, max_noised=1)  # fmt: skip
    np.testing.assert_allclose(result.series.exact, expected.exact, rtol=1e-5, atol=1e-6)  # the density's arrows
    points_model, _ = request_model(replace(view.model.request, exact=True), None, state.data, model.schedule)
    of_points = field_series(points_model, state.data.points, padded_extent(state.data.points),
                             resolution=view.model.resolution, max_noised=1)  # fmt: skip
    assert not np.allclose(result.series.exact[-1], of_points.exact[-1], atol=1e-2)  # not the 60 points' arrows


def test_the_score_view_draws_the_exact_density_score(window, qtbot):
    view = window.score_view
    window.tabs.setCurrentWidget(view)
    assert density_item(view.model_choice).isEnabled()
    view.model_choice.setCurrentIndex(view.model_choice.findData(EXACT_DENSITY))
    assert view.model.exact == EXACT_DENSITY
    with qtbot.waitSignal(view.computed, timeout=120_000):
        assert view.compute()
    model = view.model.result.model
    assert model.exact and model.model.mixture is not None  # the distribution's score, not the 60 points'
