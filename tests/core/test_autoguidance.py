"""Guidance in an interval of noise levels and autoguidance: the interval is exactly CFG inside it and the plain
conditional model outside; autoguidance by the model itself is the model; snapshots of training are kept, saved
and loaded, and guide the run they come from."""

import math

import numpy as np
import pytest
import torch

from diffvis.core.checkpoint import load_run, save_run
from diffvis.core.classes import Classes, dense_labels
from diffvis.core.datasets import make_dataset
from diffvis.core.exact import ExactNoisePredictor
from diffvis.core.flow import LINEAR_PATH
from diffvis.core.guidance import guided, noise_level
from diffvis.core.models import ModelConfig
from diffvis.core.pipeline import make_trainer, request_model, sample_request, with_guide
from diffvis.core.request import SampleRequest
from diffvis.core.run import Run, SamplingModel
from diffvis.core.schedules import Schedule, SigmaLadder
from diffvis.core.training import TrainConfig, snapshot_steps
from diffvis.errors import ConfigError

SCHEDULE = Schedule.make("linear", 1000)
DATA = make_dataset("gmm8", 800, seed=0)


def exact_eps():
    classes = Classes.of(DATA)
    return ExactNoisePredictor(DATA.points / 2, SCHEDULE, dense_labels(classes, DATA))


def test_noise_levels_of_each_kind_of_tables():
    level = noise_level(SCHEDULE)
    abar = SCHEDULE.alphas_cumprod[300]
    assert level(300) == pytest.approx(math.sqrt((1 - abar) / abar))
    assert noise_level(SigmaLadder.geometric(5.0))(0.7) == 0.7
    assert noise_level(LINEAR_PATH)(0.25) == pytest.approx(3.0) and noise_level(LINEAR_PATH)(0.0) == math.inf


def test_the_interval_is_cfg_inside_and_the_plain_conditional_model_outside():
    model = exact_eps()
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    level = noise_level(SCHEDULE)
    interval = (0.2, 2.0)
    limited = guided(model, 3, 4.0, interval=interval, level=level)
    everywhere = guided(model, 3, 4.0)
    inside = [t for t in (50, 200, 400, 600, 800, 999) if 0.2 < level(t) <= 2.0]
    outside = [t for t in (0, 10, 50, 200, 400, 600, 800, 999) if t not in inside]
    assert inside and outside
    for t in inside:
        torch.testing.assert_close(limited(x, t), everywhere(x, t), rtol=0, atol=0)
    for t in outside:
        torch.testing.assert_close(limited(x, t), model(x, t, 3), rtol=0, atol=0)
        assert not torch.allclose(everywhere(x, t), model(x, t, 3), atol=1e-4) or level(t) < 0.05


def test_autoguidance_by_the_model_itself_is_the_model():
    model = exact_eps()
    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(1))
    for w in (0.0, 2.5, 7.0):
        torch.testing.assert_close(guided(model, 2, w, weak=model)(x, 500), model(x, 500, 2), rtol=0, atol=1e-7)
    other = exact_eps()
    other.points = other.points * 1.5  # a "weak" model that differs
    auto = guided(model, None, 2.0, weak=other)
    expected = other(x, 500, None) + 2.0 * (model(x, 500, None) - other(x, 500, None))
    torch.testing.assert_close(auto(x, 500), expected, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    trainer, norm = make_trainer(DATA, ModelConfig(width=32, depth=2), TrainConfig(steps=64, device="cpu"))
    states = {}
    while trainer.step < 64:
        trainer.train_step()
        if trainer.step in (8, 32):
            states[trainer.step] = {k: v.clone() for k, v in trainer.ema.state_dict().items()}
    run = Run.from_trainer(trainer, norm, {"source": "gmm8", "n": 800, "noise": None, "seed": 0})
    folder = tmp_path_factory.mktemp("auto") / "run"
    save_run(run, folder)
    return run, folder, states


def test_training_keeps_snapshots_that_save_and_load(trained):
    run, folder, states = trained
    assert snapshot_steps(64) == (4, 8, 16, 32) and sorted(run.snapshots) == [4, 8, 16, 32]
    loaded = load_run(folder)
    assert sorted(loaded.snapshots) == [4, 8, 16, 32]
    for step, state in states.items():
        for name, tensor in loaded.snapshot(step).state_dict().items():
            torch.testing.assert_close(tensor, state[name], rtol=0, atol=0)
    with pytest.raises(ConfigError, match="keeps 4, 8, 16, 32"):
        loaded.snapshot(5)


def test_a_snapshot_guides_its_run_and_the_label_says_so(trained):
    run, folder, _ = trained
    request = SampleRequest("ddim", {"steps": 10}, label=2, guidance=3.0, guide_with="snapshot:8", n=300)
    model, label = request_model(request, run, DATA, SCHEDULE)
    assert "auto-guided by snapshot 8" in label and model.guide is not None
    auto = sample_request(model, request).samples
    cfg_request = SampleRequest("ddim", {"steps": 10}, label=2, guidance=3.0, n=300)
    cfg = sample_request(request_model(cfg_request, run, DATA, SCHEDULE)[0], cfg_request).samples
    assert np.isfinite(auto).all() and np.abs(auto - cfg).max() > 1e-3
    itself = with_guide(SamplingModel.of_run(run), str(folder), run)  # the run guided by its own saved copy
    plain = sample_request(SamplingModel.of_run(run), SampleRequest("ddim", {"steps": 10}, label=2, n=300)).samples
    same = sample_request(itself, SampleRequest("ddim", {"steps": 10}, label=2, guidance=3.0, n=300,
                                                guide_with=str(folder))).samples  # fmt: skip
    np.testing.assert_allclose(same, plain, atol=1e-4)


def test_what_cannot_be_autoguided_is_refused(trained, tmp_path):
    run, _, _ = trained
    exact = SamplingModel.exact_of(DATA.points, "ddpm", SCHEDULE)
    with pytest.raises(ConfigError, match="exact model has none"):
        with_guide(exact, "snapshot:8", run)
    other, norm = make_trainer(make_dataset("moons", 300, seed=0), ModelConfig(width=16, depth=1),
                               TrainConfig(steps=16, device="cpu"))  # fmt: skip
    other.run()
    save_run(Run.from_trainer(other, norm, {}), tmp_path / "moons")
    with pytest.raises(ConfigError, match="same points"):
        with_guide(SamplingModel.of_run(run), str(tmp_path / "moons"), run)
    with pytest.raises(ConfigError, match="snapshot:STEP"):
        SampleRequest(guide_with="snapshot:x")
    with pytest.raises(ConfigError, match="interval"):
        SampleRequest(label=1, interval=(0.1, 1.0))
    with pytest.raises(ConfigError, match="σ_lo < σ_hi"):
        SampleRequest(label=1, guidance=2.0, interval=(1.0, 0.5))


def test_snapshot_alone_is_the_half_way_one(trained):
    run, _, _ = trained
    model = with_guide(SamplingModel.of_run(run), "snapshot", run)
    half = run.snapshot(32)
    for name, tensor in half.state_dict().items():
        torch.testing.assert_close(model.guide.net.state_dict()[name], tensor, rtol=0, atol=0)
    assert SampleRequest(label=1, guidance=2.0, guide_with="snapshot").label_text.endswith(
        "auto-guided by the half-way snapshot")  # fmt: skip


def test_class_check_of_the_class_itself_and_of_a_collapsed_class():
    """Fresh draws of a class sit in its 99 % region 99 % of the time, recall at its floor, NLL at its entropy;
    samples collapsed onto one component are all in the support but recall badly; the NLL is the mean −log p_c."""
    from diffvis.core.class_check import class_check
    from diffvis.core.datasets import DATASETS
    from diffvis.core.gaussian_mixture import known_density

    tree = known_density("tree", DATASETS["tree"].default_noise)
    label = int(tree.labels[0])
    own = tree.of_class(label)
    fresh = own.sample(2000, np.random.default_rng(5))[0]
    check = class_check(fresh, tree, label, seed=1)
    assert abs(check.in_support - 0.99) < 0.01 and abs(check.recall.ratio - 1) < 0.1
    assert abs(check.nll - check.entropy) < 0.15
    heaviest = int(np.argmax(own.weights))
    collapsed = np.random.default_rng(6).multivariate_normal(own.means[heaviest], own.covs[heaviest] / 16, 2000)
    narrow = class_check(collapsed, tree, label, seed=1)
    assert narrow.in_support > 0.99 and narrow.recall.ratio > 5
    assert narrow.nll == pytest.approx(-float(own.log_prob(torch.as_tensor(collapsed)).mean()), rel=1e-9)
