"""The fast exact score (``diffvis.core.mixture``) against a plain dense float64 sum, from tiny to huge noise, for
point sets of awkward shapes, with and without class labels, and in bounded memory.

Errors are relative to the score's scale at each query, Σ_i w_i ‖a c_i − x‖ / s² (the size of the terms the
score sums; it bounds ‖score‖), so that a query where the score nearly cancels is judged fairly."""

import json
import math
import sys

import numpy as np
import pytest
import torch

from diffvis.core import mixture as mx
from diffvis.core.classes import NULL_LABEL
from diffvis.core.exact import ExactNoisePredictor, ExactScore, class_mixture_score, mixture_score
from diffvis.core.schedules import Schedule

NOISE = [1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0]
TOL32 = mx.default_tol(torch.float32)


def dense_reference(x, centres, s):
    """The plain formula in float64: score = Σ_i w_i (c_i − x)/s², w = softmax(−‖c_i − x‖²/2s²); and its scale."""
    x, c = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(centres, dtype=torch.float64)
    d = c[None] - x[:, None]
    w = torch.softmax(-(d**2).sum(-1) / (2 * s * s), dim=1)
    return (w[..., None] * d).sum(1) / s**2, (w * d.norm(dim=-1)).sum(1) / s**2


def plain_float32(x, centres, s):
    """The plain formula in float32, the (n, M, 2) way: what float precision allows."""
    d = centres[None].float() - x[:, None].float()
    w = torch.softmax(-(d**2).sum(-1) / (2 * s * s), dim=1)
    return torch.einsum("nm,nmd->nd", w, d) / (s * s)


def relative_error(got, x, centres, s):
    ref, scale = dense_reference(x, centres, s)
    return ((got.double() - ref).norm(dim=1) / scale).max().item()


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def point_sets():
    g = _gen(0)
    blobs = torch.cat([torch.randn(400, 2, generator=g) * 1e-3 + torch.tensor(c) for c in ([0, 0], [1, 1], [-2, 0.5])])
    clustered = torch.cat([blobs, torch.randn(300, 2, generator=g)])
    duplicated = torch.randn(5, 2, generator=g).repeat(200, 1)
    outliers = torch.cat([torch.randn(600, 2, generator=g), torch.tensor([[1e3, 0.0], [-400.0, 700.0], [0.0, -1e4]])])
    return {
        "clustered": clustered,
        "duplicated": duplicated,
        "far outliers": outliers,
        "a single point": torch.tensor([[0.3, -0.7]]),
        "two points": torch.tensor([[0.0, 0.0], [1.0, 0.0]]),
    }


def queries(centres, s, seed=1):
    """Points of the noised set, points of a box around it, and a few far away."""
    g = _gen(seed)
    near = centres[torch.randint(len(centres), (60,), generator=g)] + s * torch.randn(60, 2, generator=g)
    lo, hi = centres.min(0).values, centres.max(0).values
    box = lo + (hi - lo + 2 * s) * torch.rand(30, 2, generator=g) - s
    far = torch.tensor([[50.0, 50.0], [-3e3, 10.0], [0.5, 1e4]])
    return torch.cat([near, box, far])


@pytest.mark.parametrize("name", list(point_sets()))
def test_fast_score_equals_the_dense_sum_at_every_noise_level(name):
    """In float64 with the float32 tolerance (the cutoffs and expansions it picks for float32), to 1e-6."""
    centres = point_sets()[name].double()
    index = mx.PointIndex.build(centres)
    for s in NOISE:
        x = queries(centres, s)
        got = mx.mixture_score_of(x, index, 1.0, s, tol=TOL32)
        assert relative_error(got, x, centres, s) < 1e-6, (name, s)


@pytest.mark.parametrize("name", list(point_sets()))
def test_float32_score_is_as_precise_as_the_plain_float32_sum(name):
    """The public mixture_score in float32 errs about as little as the plain float32 formula does (which is what
    float32 can do: far from every point at tiny noise the weights hang on the last bits of ‖x − c‖²)."""
    centres = point_sets()[name]
    for s in NOISE:
        x = queries(centres.double(), s).float()
        ours = relative_error(mixture_score(x, centres, s), x, centres, s)
        plain = relative_error(plain_float32(x, centres, s), x, centres, s)
        assert ours <= max(4 * plain, 1e-6), (name, s, ours, plain)


def test_each_evaluation_equals_the_dense_sum_where_it_answers():
    """Local, taylor and dense sums on their own, at every level and noise level, on the queries they certify;
    each serves some."""
    centres = point_sets()["clustered"].double()
    index = mx.PointIndex.build(centres)
    served = {"local": 0, "taylor": 0}
    for s in NOISE:
        x = queries(centres, s)
        ref, scale = dense_reference(x, centres, s)

        check = _checker(s, ref, scale)
        check(mx.dense_sums(x, index, s), torch.ones(len(x), dtype=torch.bool))
        for level in range(0, 12):
            sums, ok, crowded = mx.local_sums(x, index, s, TOL32, level)
            served["local"] += check(sums, ok)
            assert not (ok & crowded).any()
            if len(index.cells(level)) <= 2000:
                served["taylor"] += check(*mx.taylor_sums(x, index, index.cells(level), s, TOL32))
    assert served["local"] > 100 and served["taylor"] > 100, served


def _checker(s, ref, scale):
    """check(sums, ok): the score of ``sums`` is within 1e-6 of ``ref`` where ``ok``; how many rows are ok."""

    def check(sums, ok) -> int:
        score = sums.s1 / (s * s * sums.s0[:, None])
        if ok.any():
            assert ((score - ref).norm(dim=1) / scale)[ok].max().item() < 1e-6
        return int(ok.sum())

    return check


def test_low_noise_is_served_locally_and_high_noise_by_taylor(monkeypatch):
    """The cost model picks the cheap evaluations where they pay: nothing goes dense at either end."""
    g = _gen(3)
    centres = torch.cat([torch.randn(20_000, 2, generator=g), torch.rand(20_000, 2, generator=g) * 4 - 2])
    index = mx.PointIndex.build(centres)
    calls = []
    for name in ("local_sums", "taylor_sums", "dense_sums"):
        monkeypatch.setattr(mx, name, _spy(getattr(mx, name), name, calls))
    for s, used in ((1e-3, "local_sums"), (3.0, "taylor_sums")):
        calls.clear()
        x = centres[:200] + s * torch.randn(200, 2, generator=g)
        score = mx.mixture_score_of(x, index, 1.0, s)
        assert set(calls) == {used}, (s, calls)
        sub = torch.randperm(len(x), generator=g)[:10]
        assert relative_error(score[sub], x[sub], centres, s) < 1e-5


def _spy(f, name, calls):
    def spied(*args, **kwargs):
        calls.append(name)
        return f(*args, **kwargs)

    return spied


def test_scaled_centres_are_the_centres_times_a():
    """ExactModel asks for a·x0_i through the index of x0_i; the same numbers as indexing a·x0_i, float32."""
    g = _gen(4)
    points = torch.randn(3000, 2, generator=g)
    index = mx.PointIndex.build(points)
    for a, s in ((0.05, 1.0), (0.9, 0.3), (1.0, 0.01)):
        x = a * points[:100] + s * torch.randn(100, 2, generator=g)
        got = mx.mixture_score_of(x, index, a, s)
        torch.testing.assert_close(got, mixture_score(x, a * points, s), rtol=1e-5, atol=1e-5 / s)
        assert relative_error(got, x, a * points.double(), s) < 1e-5


def test_class_labels_keep_working():
    """With labels, each row's score is that of its class's points (∅: all of them), for the plain function and
    for the exact models, against the dense float64 sum of the class."""
    g = _gen(5)
    points = torch.cat([torch.randn(500, 2, generator=g) * 0.3 + 1, torch.randn(300, 2, generator=g) * 0.3 - 1])
    labels = torch.cat([torch.zeros(500, dtype=torch.long), torch.ones(300, dtype=torch.long)])
    rows = torch.tensor([0, 1, NULL_LABEL]).repeat(40)
    schedule = Schedule.make("linear", 1000)
    for s in (1e-3, 0.1, 3.0):
        x = points[torch.randint(800, (120,), generator=g)].double() + s * torch.randn(120, 2, generator=g).double()
        got = class_mixture_score(x, points.double(), s, labels, rows)
        eps = ExactNoisePredictor(points, schedule, labels)(x.float(), 10, rows)
        score = ExactScore(points, labels)(x.float(), s, rows)
        for y in (0, 1, NULL_LABEL):
            subset = points if y == NULL_LABEL else points[labels == y]
            mine = rows == y
            assert relative_error(got[mine], x[mine], subset, s) < 1e-6
            assert relative_error(score[mine], x[mine].float(), subset, s) < 1e-5
        abar = float(schedule.alphas_cumprod[10])
        a, sd = math.sqrt(abar), math.sqrt(1 - abar)
        for y in (0, 1):
            subset, mine = points[labels == y], rows == y
            xs, centres = x[mine].float(), a * subset  # a·c in float32, as the model forms them
            ref, scale = dense_reference(xs, centres, sd)
            err = (eps[mine].double() + sd * ref).norm(dim=1) / (sd * scale)
            plain = (plain_float32(xs, centres, sd).double() - ref).norm(dim=1) / scale
            assert err.max() <= max(4 * plain.max(), 1e-6)


def test_chunks_stay_bounded_for_a_million_points():
    """Every evaluation's temporaries fit in TEMP_BYTES (64 MB) whatever M: the tile and chunk sizes."""
    M, n = 1_000_000, 2000
    rows, cols = mx.tile(n, M, mx.PAIR_BYTES)
    assert rows * cols <= mx.TILE_PAIRS and rows * cols * mx.PAIR_BYTES <= mx.TEMP_BYTES
    assert mx.chunk_rows(mx.MOMENT_POINT_BYTES) * mx.MOMENT_POINT_BYTES <= mx.TEMP_BYTES
    assert mx.chunk_rows(mx.MOMENT_CELL_BYTES) * mx.MOMENT_CELL_BYTES <= mx.TEMP_BYTES
    assert mx.MAX_TAYLOR_CELLS * 3 * mx.TAYLOR_P**2 * 4 <= mx.TEMP_BYTES
    assert mx.chunk_rows(10**12) == 1 and mx.chunk_rows(1) == mx.TEMP_BYTES
    assert mx.tile(3, 5, mx.PAIR_BYTES) == (3, 5)


_PEAK = """
import json, resource, sys, time, torch
from diffvis.core import mixture as mx
torch.manual_seed(0)
points = torch.randn(1_000_000, 2)
index = mx.PointIndex.build(points)
x = points[:256] + 0.01 * torch.randn(256, 2)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = {}
for s in (1e-3, 0.3, 30.0):
    score = mx.mixture_score_of(x[:8] if s == 0.3 else x, index, 1.0, s)
    out[str(s)] = score[:4].tolist()
out["peak_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps(out))
"""


def background_jobs(folder):
    """``_PEAK`` in a process of its own (its peak memory is its own), started at the end of collection beside the
    tests (the conftest's ``Background``)."""
    return {"peak": {"argv": [sys.executable, "-c", _PEAK]}}


def test_a_million_points_in_bounded_memory(background):
    """1,000,000 centres at low, middle and high noise: the peak memory grows by little more than the chunk
    budget, and the scores match the dense sum."""
    result = background.result(__name__, "peak", timeout=300)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    print(f"peak memory growth {out['peak_mb']:.0f} MB")
    assert out["peak_mb"] < 400, out["peak_mb"]
    torch.manual_seed(0)
    points = torch.randn(1_000_000, 2)
    x = points[:4] + 0.01 * torch.randn(256, 2)[:4]
    for s in (1e-3, 0.3, 30.0):
        parts = [dense_reference(x[i : i + 1], points, s) for i in range(4)]  # one query at a time: 16 MB each
        ref, scale = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        err = (torch.tensor(out[str(s)], dtype=torch.float64) - ref).norm(dim=1) / scale
        assert err.max() < 1e-5, (s, err)


def test_default_tolerance_is_below_float_rounding():
    assert mx.default_tol(torch.float32) < np.finfo(np.float32).eps / 8
    assert mx.default_tol(torch.float64) < np.finfo(np.float64).eps / 8
    t, v = mx.taylor_limits(TOL32)
    assert 2 * t**mx.TAYLOR_P / math.factorial(mx.TAYLOR_P) * math.exp(2 * t) <= TOL32 / 2
    assert 0.5 < t < 1.5 and 0.05 < v < 0.5


# --- the time left of a sampling run whose steps cost different amounts ----------------------------------------


def test_frame_work_grows_as_the_noise_falls_and_leaves_the_generator_alone():
    """The exact model's predicted work per DDIM frame: one value per frame, each positive, the low-noise end
    dearer than the high-noise start; the dry run does not touch the caller's generator."""
    from diffvis.core.progress import frame_work
    from diffvis.core.run import SamplingModel

    g = _gen(6)
    model = SamplingModel.exact_of(torch.randn(20_000, 2, generator=g).numpy(), "ddpm", Schedule.make())
    x_T = torch.randn(2000, 2, generator=g)  # only priced, never sampled
    generator = torch.Generator().manual_seed(7)
    work = frame_work(model, "ddim", x_T, steps=20, eta=1.0, generator=generator)
    assert work.shape == (20,) and (work > 0).all()
    assert work[-5:].max() > 3 * work[:5].mean(), work
    assert torch.equal(generator.get_state(), torch.Generator().manual_seed(7).get_state())
    heun = frame_work(model, "heun", x_T, steps=10)
    assert len(heun) == 10 and (heun > 0).all()
    network = SamplingModel(lambda x, t: x, "ddpm", model.schedule, model.ladder, model.normaliser)
    np.testing.assert_array_equal(frame_work(network, "ddim", x_T, steps=10), np.ones(10))


def test_time_left_scales_the_elapsed_time_by_the_work_left():
    """elapsed × (work left / work done), both from the first frame reported: after 1 s for 10 % of the work, 9 s
    are left, however few frames that was."""
    from diffvis.core.progress import TimeLeft

    now = [10.0]
    left = TimeLeft(np.array([5.0, 1.0, 1.0, 8.0, 10.0]), clock=lambda: now[0])
    assert left(1) == "estimating time left"  # its 5 units carried the start-up
    now[0] = 11.0
    assert left.seconds(3) == pytest.approx(9.0)
    now[0] = 15.0
    assert left.seconds(4) == pytest.approx(5.0) and left.seconds(5) == 0.0
    now[0] = 15.0 + 3 * 3600
    assert left(4) == "3 h 00 min left"
    now[0] = 15.0 + 100
    assert left(4) == "1 min 45 s left"


def test_sample_command_shows_the_frames_with_the_time_left(tmp_path, monkeypatch):
    """On a terminal, `diffvis sample --ideal` shows a bar per frame with the time left; elsewhere nothing."""
    import io

    from diffvis.cli import main

    data = tmp_path / "points.npy"
    np.save(data, np.random.default_rng(0).normal(size=(300, 2)))

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for stream, shown in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(sys, "stderr", stream)
        out = tmp_path / "samples.npy"
        assert main(["sample", "--ideal", str(data), "--steps", "10", "--n", "50", "--out", str(out)]) == 0
        text = stream.getvalue()
        assert ("9/10" in text and "10/10" in text and " s left" in text) if shown else text == "", text


def test_bench_runs_of_the_exact_denoiser_report_time_and_memory():
    """`diffvis bench`'s exact-denoiser runs, tiny: each reports seconds, the peak while sampling and while
    building, for the fast and the dense evaluation."""
    from diffvis.bench import exact_run

    for run in (exact_run(300), exact_run(300, dense=True, evaluations=1)):
        assert run["seconds"] > 0 and 0 < run["peak_mb"] < 4000 and run["built_mb"] > 0, run
