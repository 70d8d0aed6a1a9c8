"""Class-conditional models and classifier-free guidance: classes, label embeddings, the guidance wrapper, the exact
conditional model, label dropout in training, conditional checkpoints, per-class metrics, and (the acceptance test)
default training that samples each class where it belongs."""

import json
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from diffvis.core import metrics
from diffvis.core.checkpoint import load_run, save_run
from diffvis.core.classes import ALL_CLASSES, MAX_CLASSES, NULL_LABEL, UNCONDITIONAL, Classes, dense_labels
from diffvis.core.datasets import PointSet, make_dataset
from diffvis.core.exact import ExactNoisePredictor, ExactScore, mixture_score
from diffvis.core.guidance import MAX_GUIDANCE, check_guidance, guided
from diffvis.core.models import ModelConfig, NoisePredictor, ScoreNetwork, build_model
from diffvis.core.pipeline import (
    evaluate_classes,
    make_trainer,
    sample_request,
    sampling_model,
    score_classes,
    train_run,
)
from diffvis.core.request import SampleRequest
from diffvis.core.run import LABEL_SEED, SamplingModel, sample_run
from diffvis.core.samplers import sample_ddim, sample_ddpm
from diffvis.core.training import TrainConfig, Trainer
from diffvis.errors import CheckpointError, ConfigError

OLD_RUN = Path(__file__).resolve().parent.parent / "data" / "run_before_labels"
OLD_RUN_SAMPLES = [
    [73.78787, -17.39013],
    [-117.06493, 32.990738],
    [-66.177666, -68.9226],
    [16.993326, 50.568592],
    [-45.354156, -21.470465],
]
SMALL = {"width": 16, "depth": 1, "embed_dim": 8}


@pytest.fixture(scope="module", autouse=True)
def _single_thread(one_torch_thread):
    """Tiny tensors and 1000-step samplers: one intra-op thread keeps them fast when another job shares the cores."""


def _within_binomial(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    """``count`` successes of ``n`` trials are within ``sigmas`` standard deviations of n·p."""
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p)) + 1e-9


def _nearest(samples: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index, distance) of each sample's nearest point."""
    d = np.linalg.norm(samples[:, None, :].astype(np.float64) - points[None, :, :], axis=-1)
    return d.argmin(1), d.min(1)


# ---------------------------------------------------------------------------------------------------------- Classes


def _sparse_set() -> PointSet:
    points = np.arange(20, dtype=np.float64).reshape(10, 2)
    return PointSet(points, np.array([5, 1, 5, 5, 1, 5, 5, 1, 5, 5], dtype=np.int64))


def test_classes_of_sparse_raw_labels_are_dense_and_named_by_value():
    classes = Classes.of(_sparse_set())
    assert classes.values == (1, 5)
    assert classes.names == ("1", "5")
    assert classes.fractions == pytest.approx((0.3, 0.7))
    assert len(classes) == 2
    np.testing.assert_array_equal(classes.encode(np.array([5, 1, 1, 5])), [1, 0, 0, 1])
    assert classes.encode(np.array([5, 1])).dtype == np.int64
    assert classes.encode(np.array([], dtype=np.int64)).shape == (0,)
    np.testing.assert_array_equal(dense_labels(classes, _sparse_set()), [1, 0, 1, 1, 0, 1, 1, 0, 1, 1])


def test_classes_of_uses_the_point_sets_class_names():
    data = make_dataset("rings", 300, seed=0)
    classes = Classes.of(data)
    assert classes.values == (0, 1, 2) and classes.names == ("r = 1", "r = 2", "r = 3")
    np.testing.assert_allclose(classes.fractions, np.bincount(data.labels) / 300)
    assert sum(classes.fractions) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "data",
    [
        PointSet(np.zeros((4, 2))),  # unlabelled
        PointSet(np.zeros((4, 2)), np.full(4, 3, dtype=np.int64)),  # one class only
        PointSet(np.zeros((0, 2)), np.zeros(0, dtype=np.int64)),  # empty
    ],
)
def test_classes_of_unlabelled_single_class_or_empty_data_is_none(data):
    assert Classes.of(data) is None
    assert dense_labels(None, data) is None


def test_dense_labels_of_unlabelled_points_for_a_conditional_model_is_refused():
    with pytest.raises(ConfigError, match="no labels"):
        dense_labels(Classes.of(_sparse_set()), PointSet(np.zeros((3, 2))))


@pytest.mark.parametrize("raw", [[3], [0], [6], [-1], [1, 5, 2]])
def test_encode_refuses_a_label_that_is_not_a_class(raw):
    with pytest.raises(ConfigError, match="not trained on"):
        Classes.of(_sparse_set()).encode(np.array(raw))


def test_index_by_name_then_by_dense_number():
    classes = Classes.of(_sparse_set())  # names "1" and "5": a name wins over a dense number
    assert classes.index("1") == 0 and classes.index("5") == 1
    assert classes.index("0") == 0  # not a name: dense number 0
    moons = Classes.of(make_dataset("moons", 100, seed=0))
    assert moons.index("upper") == 0 and moons.index("lower") == 1
    assert moons.index("0") == 0 and moons.index("1") == 1


@pytest.mark.parametrize("name", ["2", "-1", "middle", "", "Upper", "1.0"])
def test_index_of_an_unknown_class_lists_the_choices(name):
    moons = Classes.of(make_dataset("moons", 100, seed=0))
    with pytest.raises(ConfigError, match="unknown class") as info:
        moons.index(name)
    assert "0 (upper), 1 (lower)" in str(info.value) and "'all'" in str(info.value)


def test_index_of_a_superscript_digit_is_a_config_error():
    with pytest.raises(ConfigError):
        Classes.of(make_dataset("moons", 100, seed=0)).index("²")


def test_classes_with_values_out_of_order_are_refused_or_encode_correctly():
    try:
        classes = Classes.from_dict({"values": [5, 1], "names": ["five", "one"], "fractions": [0.5, 0.5]})
    except ConfigError:
        return  # refusing them is a fix too
    np.testing.assert_array_equal(classes.encode(np.array([5, 1, 1])), [0, 1, 1])


def test_draw_is_in_proportion_and_reproducible():
    classes = Classes((0, 4, 9), ("a", "b", "c"), (0.2, 0.3, 0.5))
    n = 20_000
    labels = classes.draw(n, torch.Generator().manual_seed(0))
    assert labels.shape == (n,) and labels.dtype == torch.int64
    assert labels.min() >= 0 and labels.max() <= 2  # dense ids, not raw values
    counts = torch.bincount(labels, minlength=3).tolist()
    for count, p in zip(counts, classes.fractions, strict=True):
        assert _within_binomial(count, n, p), counts
    assert torch.equal(labels, classes.draw(n, torch.Generator().manual_seed(0)))
    assert not torch.equal(labels, classes.draw(n, torch.Generator().manual_seed(1)))


def test_classes_dict_round_trip_through_json():
    classes = Classes.of(make_dataset("gmm8", 500, seed=3))
    d = json.loads(json.dumps(classes.to_dict()))
    assert d == {"values": list(range(8)), "names": [f"{45 * i}°" for i in range(8)],
                 "fractions": list(classes.fractions)}  # fmt: skip
    assert Classes.from_dict(d) == classes


@pytest.mark.parametrize(
    "values, names, fractions",
    [
        ((3,), ("a",), (1.0,)),  # one class
        (tuple(range(MAX_CLASSES + 1)), tuple(map(str, range(MAX_CLASSES + 1))), (1.0,) * (MAX_CLASSES + 1)),
        ((0, 1), ("a",), (0.5, 0.5)),  # lengths differ
        ((0, 1), ("a", "b"), (1.0,)),
        ((0, 0), ("a", "b"), (0.5, 0.5)),  # duplicate value
        ((0, 1), ("a", "b"), (1.0, 0.0)),  # a class without points
        ((0, 1), ("a", "b"), (0.5, math.nan)),
    ],
)
def test_invalid_classes_are_refused(values, names, fractions):
    with pytest.raises(ConfigError):
        Classes(values, names, fractions)


def test_the_most_classes_allowed_are_accepted():
    k = MAX_CLASSES
    assert len(Classes(tuple(range(k)), tuple(map(str, range(k))), (1 / k,) * k)) == k


# ----------------------------------------------------------------------------------------------------------- Models


@pytest.mark.parametrize("objective, cond", [("ddpm", 37), ("ncsn", 0.3)])
def test_conditional_network_embeds_k_plus_one_labels(objective, cond):
    torch.manual_seed(0)
    model = build_model(ModelConfig(objective=objective, num_classes=3, width=32, depth=2, embed_dim=16)).eval()
    assert isinstance(model, NoisePredictor if objective == "ddpm" else ScoreNetwork)
    assert isinstance(model.embed_label, torch.nn.Embedding)
    assert model.embed_label.num_embeddings == 4 and model.embed_label.embedding_dim == 32
    assert model.num_classes == 3
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        null = model(x, cond, NULL_LABEL)
        torch.testing.assert_close(model(x, cond), null, rtol=0, atol=0)
        torch.testing.assert_close(model(x, cond, None), null, rtol=0, atol=0)
        torch.testing.assert_close(model(x, cond, torch.full((50,), NULL_LABEL)), null, rtol=0, atol=1e-7)
        per_label = [model(x, cond, c) for c in range(3)]
        for a in range(3):
            assert (per_label[a] - null).abs().max() > 1e-3
            for b in range(a + 1, 3):
                assert (per_label[a] - per_label[b]).abs().max() > 1e-3
        y = torch.arange(50) % 4 - 1  # −1 (∅), 0, 1, 2 in turn
        mixed = model(x, cond, y)
        expected = torch.stack([null, *per_label])[y + 1, torch.arange(50)]
        torch.testing.assert_close(mixed, expected, rtol=1e-6, atol=1e-6)
    # the training path (autograd, no in-place arithmetic) computes the same
    torch.testing.assert_close(model(x, cond, y).detach(), mixed, rtol=1e-6, atol=1e-6)


def test_label_embedding_takes_part_in_training():
    model = build_model(ModelConfig(num_classes=2, **SMALL))
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    model(x, torch.arange(8), torch.tensor([0, 0, 1, 1, -1, -1, 0, 1])).square().sum().backward()
    grad = model.embed_label.weight.grad
    assert grad.shape == (3, 16) and (grad.abs().sum(1) > 0).all()


@pytest.mark.parametrize("objective", ["ddpm", "ncsn"])
def test_unconditional_network_refuses_a_label(objective):
    model = build_model(ModelConfig(objective=objective, **SMALL))
    assert model.embed_label is None and model.num_classes == 0
    x = torch.randn(4, 2)
    assert model(x, 0.5).shape == (4, 2)
    for label in (0, NULL_LABEL, torch.zeros(4, dtype=torch.long)):
        with pytest.raises(ConfigError, match="without class labels"):
            model(x, 0.5, label)


def test_unconditional_state_dict_keeps_the_keys_of_the_previous_version():
    old_keys = set(load_file(next(OLD_RUN.glob("weights-*.safetensors"))))
    old_model = json.loads((OLD_RUN / "run.json").read_text())["model"]
    assert "num_classes" not in old_model
    config = ModelConfig.from_dict(old_model)
    assert config.num_classes == 0
    assert set(build_model(config).state_dict()) == old_keys
    assert "embed_label.weight" not in old_keys
    conditional = build_model(ModelConfig.from_dict({**old_model, "num_classes": 2}))
    assert set(conditional.state_dict()) == old_keys | {"embed_label.weight"}


def test_model_config_num_classes_round_trips_and_defaults_to_zero():
    assert ModelConfig.from_dict({"objective": "ncsn"}).num_classes == 0
    config = ModelConfig(num_classes=5)
    assert config.to_dict()["num_classes"] == 5
    assert ModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert ModelConfig(num_classes=MAX_CLASSES).num_classes == MAX_CLASSES


@pytest.mark.parametrize("k", [1, -1, MAX_CLASSES + 1, 1000])
def test_invalid_num_classes_is_refused(k):
    with pytest.raises(ConfigError, match="num_classes"):
        ModelConfig(num_classes=k)


# --------------------------------------------------------------------------------------------------------- Guidance


class _Counting:
    """Wraps a model and records the batch size and labels of every call."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def __call__(self, x, t, label=None):
        self.calls.append((len(x), label))
        return self.model(x, t, label)


@pytest.mark.parametrize("objective, cond", [("ddpm", 412), ("ncsn", 0.7)])
@pytest.mark.parametrize("w", [0.0, 0.5, 1.0, 3.0, 7.5])
def test_guided_is_the_classifier_free_combination(objective, cond, w):
    torch.manual_seed(1)
    net = build_model(ModelConfig(objective=objective, num_classes=3, width=32, depth=2, embed_dim=16)).eval()
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(2))
    per_point = torch.arange(64) % 3
    with torch.no_grad():
        null = net(x, cond, NULL_LABEL).double()
        for label in (2, per_point):
            conditional = net(x, cond, label).double()
            counted = _Counting(net)
            out = guided(counted, label, w)(x, cond)
            assert out.shape == (64, 2)
            torch.testing.assert_close(out.double(), null + w * (conditional - null), rtol=1e-6, atol=1e-6)
            assert len(counted.calls) == 1  # one forward pass per evaluation
            size, seen = counted.calls[0]
            if w in (0.0, 1.0):
                assert size == 64
                assert torch.equal(torch.as_tensor(seen), torch.as_tensor(NULL_LABEL if w == 0 else label))
            else:
                assert size == 128
                expected = torch.cat([torch.full((64,), NULL_LABEL), torch.as_tensor(label).expand(64)])
                assert torch.equal(seen, expected)


def test_guided_without_a_label_is_the_model_itself():
    net = build_model(ModelConfig(num_classes=2, **SMALL))
    for w in (0.0, 1.0, 3.0):
        assert guided(net, None, w) is net


@pytest.mark.parametrize("w", [-0.1, -1, math.nan, math.inf, -math.inf, MAX_GUIDANCE + 0.5, 1000])
def test_guidance_scale_out_of_range_is_refused(w):
    net = build_model(ModelConfig(num_classes=2, **SMALL))
    with pytest.raises(ConfigError, match="guidance scale"):
        check_guidance(w)
    with pytest.raises(ConfigError, match="guidance scale"):
        guided(net, 0, w)
    with pytest.raises(ConfigError, match="guidance scale"):
        guided(net, None, w)


def test_guidance_scale_bounds_are_accepted():
    net = build_model(ModelConfig(num_classes=2, **SMALL))
    x = torch.randn(3, 2)
    with torch.no_grad():
        for w in (0, MAX_GUIDANCE):
            assert torch.isfinite(guided(net, 1, w)(x, 5)).all()


# --------------------------------------------------------------------------------------------- Exact conditional model


@pytest.fixture(scope="module")
def moons():
    return make_dataset("moons", 200, seed=0)


@pytest.fixture(scope="module")
def exact_ddpm(moons):
    return sampling_model(None, moons, "ddpm")


def test_exact_model_of_labelled_points_is_conditional(moons, exact_ddpm):
    assert exact_ddpm.exact and exact_ddpm.classes == Classes.of(moons)
    assert exact_ddpm.classes.names == ("upper", "lower")
    np.testing.assert_array_equal(exact_ddpm.model.labels.numpy(), moons.labels)
    unlabelled = sampling_model(None, moons.points, "ddpm")
    assert unlabelled.classes is None and unlabelled.model.labels is None
    with pytest.raises(ConfigError, match="cannot be conditioned"):
        unlabelled.model(torch.zeros(3, 2), 10, 0)


@pytest.mark.parametrize("t", [0, 50, 300, 999])
def test_exact_conditional_denoiser_is_the_exact_denoiser_of_the_class(exact_ddpm, moons, t):
    model = exact_ddpm.model
    std, abar = model.points, float(model.schedule.alphas_cumprod[t])
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(t))
    for c in (0, 1):
        subset = std[torch.as_tensor(moons.labels) == c]
        expected = -((1 - abar) ** 0.5) * mixture_score(x, abar**0.5 * subset, (1 - abar) ** 0.5)
        torch.testing.assert_close(model(x, t, c), expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(model(x, t, c), ExactNoisePredictor(subset, model.schedule)(x, t))
    unconditional = ExactNoisePredictor(std, model.schedule)(x, t)
    torch.testing.assert_close(model(x, t, NULL_LABEL), unconditional)
    torch.testing.assert_close(model(x, t), unconditional)
    y = torch.arange(300) % 3 - 1
    mixed = model(x, t, y)
    for c in (-1, 0, 1):
        torch.testing.assert_close(mixed[y == c], model(x[y == c], t, c))


def test_exact_conditional_score_is_the_exact_score_of_the_class(moons):
    model = sampling_model(None, moons, "ncsn").model
    assert isinstance(model, ExactScore)
    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
    for c in (0, 1):
        subset = model.points[torch.as_tensor(moons.labels) == c]
        torch.testing.assert_close(model(x, 0.2, c), mixture_score(x, subset, 0.2))
    torch.testing.assert_close(model(x, 0.2, NULL_LABEL), mixture_score(x, model.points, 0.2))


@pytest.mark.parametrize("c", [0, 1])
def test_exact_conditional_ddpm_equals_the_exact_model_of_the_class_alone(exact_ddpm, moons, c):
    """Sampling class c from the conditional exact model is sampling the exact model of class c's points."""
    subset = exact_ddpm.model.points[torch.as_tensor(moons.labels) == c]
    x_T = torch.randn(200, 2, generator=torch.Generator().manual_seed(5))
    traj = exact_ddpm.sample("ddpm", x_T, label=c, generator=torch.Generator().manual_seed(6))
    alone = sample_ddpm(ExactNoisePredictor(subset, exact_ddpm.schedule), x_T, exact_ddpm.schedule,
                        generator=torch.Generator().manual_seed(6), normaliser=exact_ddpm.normaliser)  # fmt: skip
    np.testing.assert_allclose(traj.samples, alone.samples, rtol=1e-5, atol=1e-5)
    traj = exact_ddpm.sample("ddim", x_T, label=c, steps=20)
    alone = sample_ddim(ExactNoisePredictor(subset, exact_ddpm.schedule), x_T, exact_ddpm.schedule, steps=20,
                        normaliser=exact_ddpm.normaliser)  # fmt: skip
    np.testing.assert_allclose(traj.samples, alone.samples, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
@pytest.mark.parametrize("c", [0, 1])
def test_exact_conditional_sampling_lands_on_the_class_training_points(exact_ddpm, moons, sampler, c):
    traj = sample_request(exact_ddpm, SampleRequest(sampler, n=400, seed=c, label=c))
    np.testing.assert_array_equal(traj.labels, np.full(400, c))
    assert traj.params["class"] == c and traj.params["guidance"] == 1.0
    index, distance = _nearest(traj.samples, moons.points)
    assert (moons.labels[index] == c).all()
    # The last step (σ ≈ 0.0074 in data units) averages training points closer than that; the moons set has a few.
    assert np.mean(distance < 1e-2) >= 0.9
    assert np.median(distance) < 1e-3
    assert distance.max() < 0.1


def test_exact_conditional_langevin_lands_on_the_class(moons):
    model = sampling_model(None, moons, "ncsn")
    for c in (0, 1):
        traj = sample_request(model, SampleRequest("langevin", {"steps_per_level": 50}, n=300, seed=c, label=c))
        index, distance = _nearest(traj.samples, moons.points)
        assert np.mean(moons.labels[index] == c) >= 0.99
        assert np.median(distance) < 1e-2


def test_exact_guidance_zero_is_unconditional(exact_ddpm, moons):
    x_T = torch.randn(400, 2, generator=torch.Generator().manual_seed(0))
    traj = exact_ddpm.sample("ddim", x_T, label=0, guidance=0.0, steps=30)
    plain = exact_ddpm.sample("ddim", x_T, steps=30, label=UNCONDITIONAL)
    np.testing.assert_allclose(traj.samples, plain.samples, rtol=1e-6, atol=1e-6)
    assert traj.params["guidance"] == 0.0 and plain.labels is None
    counts = np.bincount(moons.labels[_nearest(traj.samples, moons.points)[0]], minlength=2)
    assert counts.min() >= 0.3 * 400, counts


def test_exact_strong_guidance_stays_on_the_class(exact_ddpm, moons):
    traj = sample_request(exact_ddpm, SampleRequest("ddim", {"steps": 50}, n=300, seed=3, label=1, guidance=3.0))
    assert np.all(np.isfinite(traj.samples))
    assert np.mean(moons.labels[_nearest(traj.samples, moons.points)[0]] == 1) >= 0.99


def test_all_classes_draws_labels_in_proportion_from_a_fixed_seed(exact_ddpm, moons):
    x_T = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))
    traj = exact_ddpm.sample("ddim", x_T, label=ALL_CLASSES, steps=20)
    expected = exact_ddpm.classes.draw(1000, torch.Generator().manual_seed(LABEL_SEED)).numpy()
    np.testing.assert_array_equal(traj.labels, expected)
    assert traj.params["class"] == "all"
    assert _within_binomial(int((traj.labels == 1).sum()), 1000, exact_ddpm.classes.fractions[1])
    assert np.mean(moons.labels[_nearest(traj.samples, moons.points)[0]] == traj.labels) >= 0.99


def test_a_conditional_model_samples_every_class_by_default(exact_ddpm, moons):
    """label None is 'all, in proportion' at w = 1 for a model with classes; ``UNCONDITIONAL`` asks for f(x, t, ∅);
    a model without classes takes None and ``UNCONDITIONAL`` alike."""
    x_T = torch.randn(300, 2, generator=torch.Generator().manual_seed(1))
    default = exact_ddpm.sample("ddim", x_T, steps=10)
    every = exact_ddpm.sample("ddim", x_T, label=ALL_CLASSES, guidance=1.0, steps=10)
    np.testing.assert_array_equal(default.samples, every.samples)
    np.testing.assert_array_equal(default.labels, every.labels)
    assert default.params["class"] == "all" and default.params["guidance"] == 1.0
    unconditional = exact_ddpm.sample("ddim", x_T, label=UNCONDITIONAL, steps=10)
    assert unconditional.labels is None and "class" not in unconditional.params
    plain = sampling_model(None, moons.points, "ddpm")  # a bare array: no classes
    np.testing.assert_array_equal(plain.sample("ddim", x_T, steps=10).samples,
                                  plain.sample("ddim", x_T, label=UNCONDITIONAL, steps=10).samples)  # fmt: skip


@pytest.mark.parametrize("exact", [True, False])
def test_a_class_id_the_model_does_not_have_is_refused(exact_ddpm, exact):
    net = build_model(ModelConfig(num_classes=2, **SMALL)).eval()
    model = (
        exact_ddpm if exact else SamplingModel.of_run(_FakeRun(net, exact_ddpm, ModelConfig(num_classes=2, **SMALL)))
    )
    with pytest.raises(ConfigError):
        model.sample("ddim", torch.zeros(4, 2), label=2, steps=2)


class _FakeRun:
    """The fields SamplingModel.of_run reads, for a fresh network and the exact model's tables."""

    def __init__(self, net, like: SamplingModel, config: ModelConfig):
        self.ema, self.objective, self.classes, self.model_config = net, "ddpm", like.classes, config
        self.schedule, self.ladder, self.normaliser = like.schedule, like.ladder, like.normaliser


@pytest.mark.parametrize("label", ["all", "upper", "everything"])
def test_class_choices_a_model_cannot_take_are_refused(exact_ddpm, moons, label):
    x_T = torch.zeros(4, 2)
    unconditional = sampling_model(None, moons.points, "ddpm")
    with pytest.raises(ConfigError, match="without classes"):
        unconditional.sample("ddim", x_T, label=label, steps=2)
    if label != ALL_CLASSES:
        with pytest.raises(ConfigError, match="unknown class choice"):
            exact_ddpm.sample("ddim", x_T, label=label, steps=2)


# --------------------------------------------------------------------------------------------------------- Training


def _trainer(data, **cfg):
    config = {"steps": 10, "batch": 1024, "device": "cpu", **cfg}
    return make_trainer(data, ModelConfig(**SMALL), TrainConfig(**config))[0]


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5])
def test_label_dropout_rate_and_kept_labels_are_the_points_labels(p):
    data = make_dataset("rings", 600, seed=0)
    trainer = _trainer(data, p_uncond=p)
    assert trainer.model_config.num_classes == 3 and trainer.classes == Classes.of(data)
    n_null = n = 0
    for _ in range(30):
        x0, k, labels = trainer.draw_batch()
        assert x0.shape == (1024, 2) and k.shape == labels.shape == (1024,) and labels.dtype == torch.long
        assert k.min() >= 0 and k.max() < trainer.schedule.T
        same = (x0[:, None, :] == trainer.data[None, :, :]).all(-1)  # (B, N): x0 row i is training point j
        assert (same.sum(1) == 1).all()  # each x0 is exactly one training point
        kept = labels != NULL_LABEL
        assert torch.equal(labels[kept], trainer.labels[same.int().argmax(1)][kept])
        assert labels.min() >= NULL_LABEL and labels.max() <= 2
        n_null += int((~kept).sum())
        n += len(labels)
    if p == 0:
        assert n_null == 0
    else:
        assert _within_binomial(n_null, n, p), (n_null, n)
    np.testing.assert_array_equal(trainer.labels.numpy(), data.labels)  # rings' raw labels are the dense ids


def test_unconditional_batches_spend_no_random_draws_on_labels():
    labelled = make_dataset("moons", 500, seed=0)
    unlabelled = _trainer(labelled.points)
    ignored = _trainer(labelled, conditional=False)
    for trainer in (unlabelled, ignored):
        assert trainer.classes is None and trainer.labels is None
        assert trainer.model_config.num_classes == 0 and trainer.model.embed_label is None
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        a, b = unlabelled.draw_batch(), ignored.draw_batch()
        assert a[2] is None and b[2] is None
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        idx = torch.randint(500, (1024,), generator=g)  # exactly what an unconditional batch draws, no more
        k = torch.randint(1000, (1024,), generator=g)
        assert torch.equal(a[0], unlabelled.data[idx]) and torch.equal(a[1], k)


def test_make_trainer_sets_num_classes_from_the_data():
    trainer, _ = make_trainer(make_dataset("gmm8", 400, seed=0), ModelConfig(num_classes=5, **SMALL),
                              TrainConfig(steps=5, device="cpu"))  # fmt: skip
    assert trainer.model_config.num_classes == 8 and trainer.model.embed_label.num_embeddings == 9
    trainer, _ = make_trainer(make_dataset("gmm8", 400, seed=0), ModelConfig(num_classes=5, **SMALL),
                              TrainConfig(steps=5, device="cpu", conditional=False))  # fmt: skip
    assert trainer.model_config.num_classes == 0 and trainer.classes is None
    sparse = _trainer(_sparse_set())
    assert sparse.classes.values == (1, 5) and sparse.model_config.num_classes == 2
    np.testing.assert_array_equal(sparse.labels.numpy(), [1, 0, 1, 1, 0, 1, 1, 0, 1, 1])  # dense ids
    one_class = PointSet(make_dataset("moons", 100).points, np.full(100, 7, dtype=np.int64))
    assert _trainer(one_class).model_config.num_classes == 0


def test_trainer_refuses_classes_that_disagree_with_the_model():
    data = np.random.default_rng(0).standard_normal((10, 2))
    classes, labels = Classes((0, 1), ("a", "b"), (0.5, 0.5)), np.arange(10) % 2
    cfg = TrainConfig(steps=1, device="cpu")
    with pytest.raises(ConfigError, match="class-conditional"):
        Trainer(data, ModelConfig(num_classes=3, **SMALL), cfg, classes=classes, labels=labels)
    with pytest.raises(ConfigError, match="class-conditional"):
        Trainer(data, ModelConfig(num_classes=2, **SMALL), cfg, classes=classes)
    with pytest.raises(ConfigError, match="class-conditional"):
        Trainer(data, ModelConfig(**SMALL), cfg, labels=labels)


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5, math.nan])
def test_label_dropout_rate_out_of_range_is_refused(p):
    with pytest.raises(ConfigError, match="p_uncond"):
        TrainConfig(p_uncond=p)


def test_train_config_without_label_settings_takes_the_defaults():
    old = TrainConfig.from_dict({"steps": 5})
    assert old.p_uncond == 0.1 and old.conditional is True
    cfg = TrainConfig(p_uncond=0.0, conditional=False)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


# ------------------------------------------------------------------------------------------------------ Checkpoints


@pytest.fixture(scope="module")
def small_run():
    """A briefly trained conditional run on the three rings (enough to check saving, not quality)."""
    data = make_dataset("rings", 500, seed=0)
    cfg = TrainConfig(steps=30, batch=128, report_every=10, device="cpu")
    return train_run(data, ModelConfig(**SMALL), cfg, {"source": "rings", "n": 500, "noise": 0.05, "seed": 0})


def test_conditional_run_saves_and_loads_with_its_classes(tmp_path, small_run):
    assert small_run.classes == Classes.of(make_dataset("rings", 500, seed=0))
    assert small_run.model_config.num_classes == 3
    save_run(small_run, tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["version"] == 2
    assert meta["classes"] == small_run.classes.to_dict()
    assert meta["classes"]["names"] == ["r = 1", "r = 2", "r = 3"]
    assert meta["model"]["num_classes"] == 3 and meta["train"]["p_uncond"] == 0.1
    loaded = load_run(tmp_path / "run")
    assert loaded.classes == small_run.classes and loaded.model_config == small_run.model_config
    x_T = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    for label, w in ((2, 1.0), (0, 3.0), (ALL_CLASSES, 1.0)):
        a = sample_run(small_run, "ddim", x_T, steps=10, label=label, guidance=w)
        b = sample_run(loaded, "ddim", x_T, steps=10, label=label, guidance=w)
        np.testing.assert_array_equal(a.samples, b.samples)
        np.testing.assert_array_equal(a.labels, b.labels)
    different = sample_run(loaded, "ddim", x_T, steps=10, label=1)
    assert np.abs(different.samples - a.samples).max() > 1e-4


def test_unconditional_run_saves_version_2_with_no_classes(tmp_path):
    cfg = TrainConfig(steps=3, batch=32, device="cpu", conditional=False)
    run = train_run(make_dataset("moons", 100, seed=0), ModelConfig(**SMALL), cfg, {})
    save_run(run, tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["version"] == 2 and meta["classes"] is None and meta["model"]["num_classes"] == 0
    loaded = load_run(tmp_path / "run")
    assert loaded.classes is None and loaded.ema.embed_label is None


def test_run_saved_before_labels_loads_and_samples_as_before(tmp_path):
    shutil.copytree(OLD_RUN, tmp_path / "old")
    assert json.loads((tmp_path / "old" / "run.json").read_text())["version"] == 1
    run = load_run(tmp_path / "old")
    assert run.classes is None and run.model_config.num_classes == 0 and run.ema.embed_label is None
    assert run.train_config.p_uncond == 0.1
    x_T = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    samples = sample_run(run, "ddim", x_T, steps=5).samples
    np.testing.assert_allclose(samples, OLD_RUN_SAMPLES, rtol=1e-4)
    with pytest.raises(ConfigError):
        sample_run(run, "ddim", x_T, steps=5, label=0)
    with pytest.raises(ConfigError):
        sample_run(run, "ddim", x_T, steps=5, label=ALL_CLASSES)
    # saved again, it becomes version 2 and still samples the same
    save_run(run, tmp_path / "again")
    assert json.loads((tmp_path / "again" / "run.json").read_text())["version"] == 2
    np.testing.assert_array_equal(sample_run(load_run(tmp_path / "again"), "ddim", x_T, steps=5).samples, samples)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["model"].update(num_classes=2),  # three classes listed
        lambda m: m["model"].update(num_classes=0),
        lambda m: m.update(classes=None),  # a conditional model without its classes
        lambda m: m["classes"].update(values=[0, 1], names=["a", "b"], fractions=[0.5, 0.5]),
        lambda m: m["classes"].update(values=[0], names=["a"], fractions=[1.0]),  # invalid classes
        lambda m: m["classes"].pop("names"),
    ],
)
def test_run_whose_classes_disagree_with_its_model_is_refused(tmp_path, small_run, edit):
    save_run(small_run, tmp_path / "run")
    path = tmp_path / "run" / "run.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="invalid"):
        load_run(tmp_path / "run")


def test_unconditional_old_run_given_classes_is_refused(tmp_path):
    shutil.copytree(OLD_RUN, tmp_path / "old")
    path = tmp_path / "old" / "run.json"
    meta = json.loads(path.read_text())
    meta["classes"] = {"values": [0, 1], "names": ["arm 1", "arm 2"], "fractions": [0.5, 0.5]}
    path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="number of classes"):
        load_run(tmp_path / "old")


# ---------------------------------------------------------------------------------------------------------- Metrics


def test_nearest_labels_and_class_accuracy_on_a_known_example():
    data = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    data_labels = np.array([7, 8, 9])
    samples = np.array([[1.0, 1.0], [9.0, 1.0], [-1.0, 8.0], [6.0, 0.0], [4.0, 0.0]])
    np.testing.assert_array_equal(metrics.nearest_labels(samples, data, data_labels), [7, 8, 9, 8, 7])
    assert metrics.class_accuracy(samples, np.array([7, 8, 9, 8, 7]), data, data_labels) == 1.0
    assert metrics.class_accuracy(samples, np.array([7, 8, 0, 7, 7]), data, data_labels) == pytest.approx(0.6)
    assert metrics.class_accuracy(samples, np.zeros(5, dtype=int), data, data_labels) == 0.0


def test_nearest_labels_across_chunks_matches_brute_force():
    rng = np.random.default_rng(0)
    samples, data = rng.standard_normal((5000, 2)), rng.standard_normal((300, 2))
    data_labels = rng.integers(0, 4, 300)
    index, _ = _nearest(samples, data)
    np.testing.assert_array_equal(metrics.nearest_labels(samples, data, data_labels), data_labels[index])


def _rings_draw(seed):
    data = make_dataset("rings", 600, seed=seed)
    return data.points, data.labels


def test_class_quality_reports_each_label_present():
    points, labels = _rings_draw(9_999)  # the reference draw of class_quality at its default seed
    keep = labels != 1
    report = metrics.class_quality(points[keep], labels[keep], _rings_draw, n_pairs=2)
    assert sorted(report) == [0, 2]
    for label in (0, 2):
        assert set(report[label]) == set(metrics.METRICS)
        for name in ("energy", "sliced_w1", "nn_precision", "nn_recall"):
            assert report[label][name].value == pytest.approx(0.0, abs=1e-6)  # the samples are the reference
            assert report[label][name].floor > 1e-3
        assert abs(report[label]["frechet"].value) < 1e-9
    swapped = metrics.class_quality(points[keep], 2 - labels[keep], _rings_draw, n_pairs=2)
    assert swapped[0]["nn_precision"].value > 1.5  # the r = 3 points are 2 away from the r = 1 ring
    assert swapped[2]["energy"].ratio > 10


def test_score_classes_of_exact_conditional_samples(exact_ddpm):
    traj = sample_request(exact_ddpm, SampleRequest("ddim", {"steps": 30}, n=400, seed=0, label=ALL_CLASSES))
    samples = traj.samples.astype(np.float64)
    scores = score_classes(samples, traj.labels, exact_ddpm.classes,
                           lambda seed: make_dataset("moons", 1000, seed=seed), n_pairs=2)  # fmt: skip
    swapped = score_classes(samples, 1 - traj.labels, exact_ddpm.classes,
                            lambda seed: make_dataset("moons", 1000, seed=seed), n_pairs=2)  # fmt: skip
    assert [s.accuracy for s in swapped] == [0.0, 0.0]
    assert swapped[0].metrics["nn_precision"].value > 0.1 > scores[0].metrics["nn_precision"].value
    assert [s.name for s in scores] == ["upper", "lower"]
    assert [s.count for s in scores] == np.bincount(traj.labels, minlength=2).tolist()
    assert sum(s.count for s in scores) == 400
    for s in scores:
        assert s.accuracy == 1.0
        assert set(s.metrics) == set(metrics.METRICS)
        assert s.metrics["nn_precision"].value < 0.05


# ---------------------------------------------------------------------------------------------- Acceptance (slow)


ACCEPTANCE = ("spirals", "gmm8")
_TRAIN_DEFAULT = """
import sys
import torch
torch.set_num_threads(1)
from diffvis.core.datasets import make_dataset
from diffvis.core.models import ModelConfig
from diffvis.core.pipeline import train_run
from diffvis.core.training import TrainConfig
name, out = sys.argv[1:]
run = train_run(make_dataset(name, 4000, seed=0), ModelConfig(), TrainConfig(device="cpu"), {"source": name})
torch.save(run, out)
"""


# Run after the other modules (the conftest): two 10,000-step trainings, about 70 s of one core each in the background.
BACKGROUND_HEAVY = True


def background_jobs(folder):
    """ACCEPTANCE: a class-conditional run of each data set trained with the DEFAULT model and training settings
    (10,000 steps, about 30–40 s on CPU each), each in a process of its own running ``_TRAIN_DEFAULT`` (one torch
    thread, as here) and pickling its Run whole: bit-identical to one trained here (weights, configs, loss history,
    classes). They start at the end of collection (the conftest's ``Background``)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    root = str(Path(__file__).resolve().parents[2])
    return {name: {"argv": [sys.executable, "-c", _TRAIN_DEFAULT, name, str(folder / f"{name}.pt")], "env": env,
                   "cwd": root} for name in ACCEPTANCE}  # fmt: skip


@pytest.fixture(scope="module")
def default_runs(background):
    """{name: the default-trained Run}; the last first (the background thread takes them from the first on)."""
    runs = {}
    for name in reversed(ACCEPTANCE):
        done = background.result(__name__, name)
        assert done.returncode == 0, f"training {name} failed:\n{done.stderr}"
        runs[name] = torch.load(background.folder(__name__) / f"{name}.pt", weights_only=False)
    return runs


@pytest.fixture(scope="module", params=ACCEPTANCE)
def trained(request, default_runs):
    """ACCEPTANCE: the default-trained run of one data set, with fresh labelled data to score it against."""
    name = request.param
    return name, default_runs[name], make_dataset(name, 4000, seed=1)


def test_acceptance_default_training_samples_each_class_where_it_belongs(trained):
    """ACCEPTANCE: default conditional training, then the default DDPM sampler for each class c: ≥ 95 % of the
    samples have a nearest fresh data point of class c."""
    name, run, fresh = trained
    assert run.step == TrainConfig().steps == 10_000
    assert run.classes == Classes.of(make_dataset(name, 4000, seed=0))
    assert run.classes.values == Classes.of(fresh).values and len(run.classes) == (2 if name == "spirals" else 8)
    assert run.model_config.num_classes == len(run.classes)
    assert run.train_config.p_uncond == 0.1
    fresh_labels = run.classes.encode(fresh.labels)
    model = SamplingModel.of_run(run)
    for c in range(len(run.classes)):
        traj = sample_request(model, SampleRequest("ddpm", n=500, seed=c, label=c))
        np.testing.assert_array_equal(traj.labels, np.full(500, c))
        accuracy = metrics.class_accuracy(traj.samples, traj.labels, fresh.points, fresh_labels)
        assert accuracy >= 0.95, f"{name} class {c} ({run.classes.names[c]}): accuracy {accuracy:.3f}"


def test_trained_run_with_strong_guidance_keeps_to_the_class(trained):
    name, run, fresh = trained
    fresh_labels = run.classes.encode(fresh.labels)
    model = SamplingModel.of_run(run)
    for c in range(len(run.classes)):
        traj = sample_request(model, SampleRequest("ddim", n=500, seed=c, label=c, guidance=3.0))
        assert traj.params["guidance"] == 3.0 and np.isfinite(traj.samples).all()
        accuracy = metrics.class_accuracy(traj.samples, traj.labels, fresh.points, fresh_labels)
        assert accuracy >= 0.95, f"{name} class {c} at w = 3: accuracy {accuracy:.3f}"


def test_trained_run_samples_all_classes_in_proportion(trained):
    name, run, fresh = trained
    n = 2000
    traj = sample_request(SamplingModel.of_run(run), SampleRequest("ddim", n=n, seed=0, label=ALL_CLASSES))
    counts = np.bincount(traj.labels, minlength=len(run.classes))
    for count, p in zip(counts, run.classes.fractions, strict=True):
        assert _within_binomial(int(count), n, p), (name, counts)
    accuracy = metrics.class_accuracy(traj.samples, traj.labels, fresh.points, run.classes.encode(fresh.labels))
    assert accuracy >= 0.95
    # guidance 0 ignores the labels: the unconditional model, which covers every class
    plain = sample_request(SamplingModel.of_run(run), SampleRequest("ddim", n=n, seed=0, label=0, guidance=0.0))
    nearest = metrics.nearest_labels(plain.samples, fresh.points, run.classes.encode(fresh.labels))
    shares = np.bincount(nearest, minlength=len(run.classes)) / n
    np.testing.assert_allclose(shares, run.classes.fractions, atol=0.06)


def test_evaluate_classes_of_a_trained_run(trained):
    name, run, _ = trained
    scores = evaluate_classes(run, lambda seed: make_dataset(name, 1000, seed=seed), n=1000)
    assert [s.name for s in scores] == list(run.classes.names)
    assert sum(s.count for s in scores) == 1000
    for s in scores:
        assert s.count > 0 and s.accuracy >= 0.95, (name, s.name, s.accuracy)
        assert set(s.metrics) == set(metrics.METRICS)
