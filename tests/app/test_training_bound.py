"""The training view's variational-bound plot: a trained DDPM run's per-t terms, computed in a worker, drawn as the
core computes them, with the ODE NLL beside the total; other runs say what it needs."""

import numpy as np
import pytest

from diffvis.core.bound import run_bound_report
from diffvis.core.registry import OBJECTIVES

TINY = {"steps": 60, "batch": 64, "timesteps": 100}
FLOW = next(name for name, info in OBJECTIVES.items() if info.transports)


@pytest.fixture
def window(make_window):
    win = make_window()
    win.model_panel.width.setValue(16)
    win.data_panel.source.setCurrentText("gmm8")
    win.data_panel.n.setValue(300)
    win.state.update_train_config(**TINY)
    win.tabs.setCurrentWidget(win.training_view)
    return win


def train(window, qtbot):
    with qtbot.waitSignal(window.controller.ended, timeout=60_000):
        window.controller.start()


def test_a_ddpm_run_draws_its_bound_per_t_beside_the_ode_nll(window, qtbot):
    view = window.training_view
    train(window, qtbot)
    qtbot.waitUntil(lambda: view.bound_report is not None, timeout=120_000)
    expected = run_bound_report(window.state.model_run, window.state.data_info, window.state.data)
    np.testing.assert_allclose(view.bound_report.bound.terms, expected.bound.terms, rtol=1e-6)
    x, y = view.bound_curve.getData()
    T = len(expected.bound.terms)
    np.testing.assert_allclose(x, np.arange(1, T) / T)
    np.testing.assert_allclose(10**y, expected.bound.terms[1:], rtol=1e-5)  # the axis is logarithmic
    total, nll = expected.bound.total[0], expected.ode_nll[0]
    assert f"bound {total:.3f}" in view.bound_caption.text and f"ODE {nll:.3f}" in view.bound_caption.text
    assert "each in its class" in view.bound_caption.text  # gmm8 is labelled: −log p(x | y)


def test_a_flow_run_has_no_bound_and_says_so(window, qtbot):
    window.model_panel.objective.setCurrentIndex(window.model_panel.objective.findData(FLOW))
    train(window, qtbot)
    view = window.training_view
    assert view.bound_report is None and not view.bound_job.busy
    assert len(view.bound_curve.getData()[0] or []) == 0 and view.bound_caption.text.startswith("for a trained")


def test_closing_while_the_bound_is_computed_stops_its_worker(window, qtbot):
    train(window, qtbot)
    view = window.training_view
    worker = view.bound_job.worker  # started as the run arrived, a thousand model evaluations from done
    assert worker is not None
    window.close()
    assert worker.isFinished() and not worker.isRunning()
