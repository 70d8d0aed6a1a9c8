"""The training loop: learns, reproducible, reports, pauses, cancels, and stops cleanly on NaN."""

import threading
import time

import numpy as np
import pytest
import torch

from diffvis.core.datasets import make_dataset
from diffvis.core.models import ModelConfig
from diffvis.core.pipeline import make_trainer
from diffvis.core.training import N_BUCKETS, Progress, TrainConfig, TrainControl, lr_at, resolve_device
from diffvis.errors import Cancelled, ConfigError, TrainingDiverged

DATA = make_dataset("moons", 2000, seed=0).points


def _trainer(objective="ddpm", prediction=None, **cfg):
    settings = {"steps": 300, "batch": 256, "report_every": 50, "device": "cpu", **cfg}
    model = ModelConfig(objective=objective, width=32, depth=2, prediction=prediction)
    trainer, _ = make_trainer(DATA, model, TrainConfig(**settings))
    return trainer


@pytest.mark.parametrize(
    ("objective", "prediction", "fall"),
    [("ddpm", "eps", 0.8), ("ddpm", "v", 0.97), ("ncsn", None, 0.8), ("edm", None, 0.9)],
)
def test_short_training_lowers_the_loss(objective, prediction, fall):
    """Each loss falls; v's and EDM's fall less in 300 steps, as their targets hold more that no network can
    predict (v ≈ −x₀ at high noise, where ε ≈ x_t is easy)."""
    trainer = _trainer(objective, prediction)
    reports = []
    trainer.run(on_progress=reports.append)
    assert [r.step for r in reports] == [50, 100, 150, 200, 250, 300]
    assert reports[-1].loss < fall * reports[0].loss
    assert reports[-1].bucket_loss.shape == (N_BUCKETS,) and np.isfinite(reports[-1].bucket_loss).all()
    assert all(r.steps_per_second > 0 for r in reports)
    assert trainer.loss_history == [r.loss for r in reports]


def test_ddpm_loss_per_bucket_falls_with_t():
    """Predicting ε is hardest at small t (x_t ≈ x_0 hides the noise): the first bucket's loss is the largest."""
    trainer = _trainer(steps=400, prediction="eps")
    reports = []
    trainer.run(on_progress=reports.append)
    buckets = reports[-1].bucket_loss
    assert buckets[0] > buckets[-1] and buckets[0] == buckets.max()


def test_training_is_reproducible_for_a_seed():
    a, b, c = (_trainer(seed=seed, steps=100, report_every=20) for seed in (3, 3, 4))
    for t in (a, b, c):
        t.run()
    assert a.loss_history == b.loss_history != c.loss_history
    for pa, pb in zip(a.ema.parameters(), b.ema.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_weights():
    trainer = _trainer()
    real = trainer.per_sample_loss

    def poisoned(*batch):
        losses = real(*batch)
        return losses * float("nan") if trainer.step == 7 else losses

    trainer.per_sample_loss = poisoned
    for _ in range(7):
        trainer.train_step()
    good_model = [p.detach().clone() for p in trainer.model.parameters()]
    good_ema = [p.detach().clone() for p in trainer.ema.parameters()]
    with pytest.raises(TrainingDiverged, match="step 7.*last good weights"):
        trainer.run()
    assert trainer.step == 7
    for kept, now in zip(
        good_model + good_ema, list(trainer.model.parameters()) + list(trainer.ema.parameters()), strict=True
    ):
        assert torch.isfinite(now).all()
        torch.testing.assert_close(now.detach(), kept, rtol=0, atol=0)


def test_pause_resume_and_cancel_from_another_thread():
    trainer = _trainer(steps=10**6)
    control = TrainControl()
    outcome = {}

    def work():
        try:
            trainer.run(control=control)
        except Cancelled as e:
            outcome["cancelled"] = str(e)

    thread = threading.Thread(target=work)
    thread.start()
    _wait_for(lambda: trainer.step > 0)
    control.pause()
    time.sleep(0.1)  # a step under way when the pause came may still finish
    paused_at = trainer.step
    time.sleep(0.3)
    assert trainer.step == paused_at and control.paused
    control.resume()
    _wait_for(lambda: trainer.step > paused_at)
    control.cancel()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert "cancelled" in outcome["cancelled"]


def _wait_for(condition, timeout: float = 30.0) -> None:
    """Poll until ``condition()`` holds (a loaded machine may take long; the test asserts order, not speed)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_cancel_while_paused_stops_at_once():
    trainer = _trainer(steps=10**6)
    control = TrainControl()
    control.pause()
    thread = threading.Thread(target=lambda: pytest.raises(Cancelled, trainer.run, control=control))
    thread.start()
    time.sleep(0.1)
    control.cancel()
    thread.join(timeout=30)
    assert not thread.is_alive() and trainer.step == 0


def test_learning_rate_warms_up_then_decays_to_a_tenth():
    cfg = TrainConfig(steps=1000, warmup=100, lr=1e-3)
    assert lr_at(0, cfg) == pytest.approx(1e-5)
    assert lr_at(99, cfg) == pytest.approx(1e-3)
    assert lr_at(550, cfg) == pytest.approx(0.55e-3)
    assert lr_at(1000, cfg) == pytest.approx(1e-4)


@pytest.mark.parametrize(
    "kwargs",
    [{"steps": 0}, {"batch": 0}, {"lr": 0.0}, {"lr": float("nan")}, {"lr": 5.0}, {"ema_decay": 1.0},
     {"timesteps": 1}, {"schedule": "exp"}, {"device": "tpu"}, {"grad_clip": -1.0}],
)  # fmt: skip
def test_absurd_hyperparameters_are_user_errors(kwargs):
    with pytest.raises(ConfigError):
        TrainConfig(**kwargs)


def test_cuda_request_without_a_gpu_is_a_user_error():
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
    else:
        assert resolve_device("auto").type == "cpu"
        with pytest.raises(ConfigError, match="CUDA"):
            resolve_device("cuda")


def test_time_left_is_measured_after_the_first_report(monkeypatch):
    """The first report's window carries the start-up costs: no estimate there; later ones divide the steps left
    by the rate since the first report (a slow first window must not promise an hour for seconds of work)."""
    from diffvis.core import training

    now = [0.0]
    monkeypatch.setattr(training.time, "perf_counter", lambda: now[0])
    trainer = _trainer(steps=200)
    real_step = trainer.train_step

    def timed_step():
        now[0] += 1.0 if trainer.step == 0 else 0.01  # a slow first step, then 100 steps per second
        return real_step()

    trainer.train_step = timed_step
    reports = []
    trainer.run(on_progress=reports.append)
    assert reports[0].seconds_left is None and reports[0].time_left() == "estimating time left"
    assert reports[1].seconds_left == pytest.approx(1.0)  # 100 steps left at 100 steps/s
    assert reports[2].seconds_left == pytest.approx(0.5) and reports[-1].seconds_left == pytest.approx(0.0)


@pytest.mark.parametrize(("seconds", "text"), [(None, "estimating time left"), (44.6, "45 s left"),
                                               (185, "3 min 05 s left"), (7830, "2 h 10 min left")])  # fmt: skip
def test_time_left_reads_in_units_a_person_uses(seconds, text):
    assert Progress(1, 2, 0.0, 0.0, 1.0, np.zeros(2), seconds).time_left() == text
