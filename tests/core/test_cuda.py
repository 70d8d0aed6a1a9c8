"""The CUDA path: training and every sampler on the GPU agree with the CPU. Skipped where torch sees no GPU."""

import numpy as np
import pytest
import torch

from diffvis.core.datasets import make_dataset
from diffvis.core.exact import ExactScore
from diffvis.core.models import ModelConfig
from diffvis.core.pipeline import make_trainer
from diffvis.core.run import Run
from diffvis.core.samplers import sample_ddim, sample_ddpm, sample_langevin
from diffvis.core.schedules import SigmaLadder
from diffvis.core.training import TrainConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA GPU")


def test_training_runs_on_the_gpu_and_auto_picks_it():
    data = make_dataset("moons", 2000, seed=0).points
    trainer, norm = make_trainer(data, ModelConfig(width=32), TrainConfig(steps=200, batch=512, device="auto"))
    assert trainer.device.type == "cuda" and next(trainer.model.parameters()).is_cuda
    trainer.run()
    assert trainer.loss_history[-1] < trainer.loss_history[0]
    run = Run.from_trainer(trainer, norm, {"source": "moons"})
    assert not next(run.ema.parameters()).is_cuda  # handed over on the CPU


def test_samplers_on_the_gpu_match_the_cpu():
    data = make_dataset("moons", 2000, seed=0).points
    trainer, _ = make_trainer(data, ModelConfig(width=32), TrainConfig(steps=100, batch=256, device="cpu"))
    trainer.run()
    cpu_model = trainer.ema_model()
    gpu_model = trainer.ema_model().cuda()
    x = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    a = sample_ddim(cpu_model, x, trainer.schedule, steps=20)
    b = sample_ddim(gpu_model, x.cuda(), trainer.schedule, steps=20)
    np.testing.assert_allclose(a.frames, b.frames, atol=2e-4)
    # stochastic samplers with a CPU generator draw the same noise on either device
    c = sample_ddpm(cpu_model, x, trainer.schedule, generator=torch.Generator().manual_seed(1))
    d = sample_ddpm(gpu_model, x.cuda(), trainer.schedule, generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(c.frames[-1], d.frames[-1], rtol=1e-4, atol=1e-3)
    e = sample_ddpm(gpu_model, x.cuda(), trainer.schedule, generator=torch.Generator("cuda").manual_seed(1))
    assert np.isfinite(e.frames).all()
    pts = torch.tensor([[1.0, 0.0], [-1.0, 0.5]])
    f = sample_langevin(ExactScore(pts), x.cuda(), SigmaLadder.geometric(3.0, 0.01, 5), steps_per_level=20)
    assert np.linalg.norm(f.samples[:, None] - pts.numpy()[None], axis=-1).min(1).max() < 1e-2


@pytest.mark.parametrize("name", ["euler", "heun", "dpmpp_2m"])
def test_ode_solvers_on_the_gpu_match_the_cpu(name):
    from diffvis.core.exact import ExactNoisePredictor
    from diffvis.core.registry import SAMPLERS
    from diffvis.core.schedules import Schedule

    schedule = Schedule.make()
    pts = torch.tensor([[1.0, 0.0], [-1.0, 0.5], [0.0, -1.0]])
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    a = SAMPLERS[name].fn(ExactNoisePredictor(pts, schedule), x, schedule, steps=25)
    b = SAMPLERS[name].fn(ExactNoisePredictor(pts.cuda(), schedule), x.cuda(), schedule, steps=25)
    np.testing.assert_allclose(a.frames, b.frames, atol=1e-3)
    assert a.nfe == b.nfe and list(a.evals) == list(b.evals)


def test_conditional_training_and_guided_sampling_on_the_gpu_match_the_cpu():
    """Label dropout, the label embedding and the batched guidance pass run on the GPU; the exact conditional
    denoiser's labels follow its points there."""
    from diffvis.core.classes import Classes
    from diffvis.core.exact import ExactNoisePredictor
    from diffvis.core.run import SamplingModel
    from diffvis.core.schedules import Schedule

    data = make_dataset("moons", 2000, seed=0)
    trainer, norm = make_trainer(data, ModelConfig(width=32), TrainConfig(steps=200, batch=512, device="cuda"))
    assert trainer.labels.is_cuda and trainer.model_config.num_classes == 2
    trainer.run()
    assert trainer.loss_history[-1] < trainer.loss_history[0]
    run = Run.from_trainer(trainer, norm, {"source": "moons"})
    cpu, gpu = SamplingModel.of_run(run), SamplingModel.of_run(Run.from_trainer(trainer, norm, {}))
    gpu.model.cuda()
    x = torch.randn(400, 2, generator=torch.Generator().manual_seed(0))
    for label in (0, "all"):
        a = cpu.sample("ddim", x, steps=20, label=label, guidance=3.0)
        b = gpu.sample("ddim", x.cuda(), steps=20, label=label, guidance=3.0)
        np.testing.assert_allclose(a.frames, b.frames, atol=5e-4)
        assert np.array_equal(a.labels, b.labels)
    schedule = Schedule.make()
    pts, labels = torch.tensor([[1.0, 0.0], [-1.0, 0.5], [0.0, -1.0]]), np.array([0, 1, 1])
    exact = ExactNoisePredictor(pts.cuda(), schedule, labels)
    classes = Classes((0, 1), ("a", "b"), (1 / 3, 2 / 3))
    model = SamplingModel(exact, "ddpm", schedule, run.ladder, norm, exact=True, classes=classes)
    c = model.sample("ddim", x.cuda(), steps=25, label=1)
    assert np.linalg.norm(norm.to_std(c.samples)[:, None] - pts.numpy()[[1, 2]][None], axis=-1).min(1).max() < 1e-2
