"""The guided tour's chapters: a few sentences each, in the app's side panel, and what *Show me* sets up (the data
or a shipped example run, the view, the sampler, the frame and the overlays) so that every chapter runs with no
training wait. The app plays them (``diffvis.app.panels.tour_panel``); this module only says what they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from diffvis.core.request import SampleRequest


@dataclass(frozen=True)
class Chapter:
    """``view``: the window's view shown (its attribute name); ``example``: the shipped run opened first (None:
    the data set ``data`` of ``n`` points, no trained model needed); ``request``: what the view samples;
    ``preset``: the comparison applied; ``frame``: the frame shown once computed ('first' and play, 'last', or a
    number); ``overlays``: the view model's fields set (trails, x̂₀, …)."""

    title: str
    text: str
    view: str
    example: str | None = None
    data: str = "moons"
    n: int | None = None
    request: SampleRequest | None = None
    preset: str | None = None
    frame: int | str = "first"
    overlays: dict = field(default_factory=dict)

    @property
    def plays(self) -> bool:
        return self.frame == "first"


CHAPTERS = (
    Chapter(
        "1 · The forward process",
        "A diffusion model learns to undo a fixed noising. Each step mixes in a little Gaussian noise of variance "
        "β<sub>t</sub>, so that after t steps x<sub>t</sub> = √ᾱ<sub>t</sub> x<sub>0</sub> + √(1 − ᾱ<sub>t</sub>) ε "
        "with ᾱ<sub>t</sub> = Π (1 − β<sub>s</sub>) (Ho et al. 2020, eq. 4). On the linear schedule ᾱ at "
        "t = T = 1000 is 4·10<sup>−5</sup>: the last frame is N(0, I) whatever the data, which is why sampling may "
        "start from noise alone. Watch the moons dissolve, then scrub back.",
        "forward_view",
    ),
    Chapter(
        "2 · What the network learns",
        "The network sees a noised point x<sub>t</sub> with its t and predicts the noise in it: here "
        "v = √ᾱ<sub>t</sub> ε − √(1 − ᾱ<sub>t</sub>) x<sub>0</sub> (Salimans &amp; Ho 2022), which reads back as "
        "ε̂. The loss is a plain squared error at a uniformly drawn t (Ho et al. 2020, Algorithm 1). This shipped "
        "run's loss curve is on the right, and below it the variational bound per timestep: the terms at small t, "
        "where the fine detail is decided, dominate.",
        "training_view",
        example="moons-ddpm",
    ),
    Chapter(
        "3 · One DDPM step",
        "Sampling runs the chain backwards, a thousand small steps, each with fresh noise z: "
        "x<sub>t−1</sub> = (x<sub>t</sub> − β<sub>t</sub>/√(1 − ᾱ<sub>t</sub>) ε̂)/√α<sub>t</sub> + σ<sub>t</sub> z "
        "(Ho et al. 2020, Algorithm 2). The panel beside the plot fills this equation in for one point at the frame "
        "shown; hover over a sample to see its own numbers, and check that its result is where the point goes next.",
        "reverse_view",
        example="moons-ddpm",
        request=SampleRequest("ddpm", n=1000),
        overlays={"trails": 60},
    ),
    Chapter(
        "4 · DDIM: skipping steps",
        "The same network defines a whole family of samplers (Song, Meng &amp; Ermon 2021). With η = 0 each step "
        "is deterministic, x<sub>t−1</sub> = √ᾱ<sub>t−1</sub> x̂<sub>0</sub> + √(1 − ᾱ<sub>t−1</sub>) ε̂, and it may "
        "jump over many timesteps at once: twenty steps land close to where a thousand do. Turn on x̂<sub>0</sub> "
        "to see what the model predicts at each step.",
        "reverse_view",
        example="moons-ddpm",
        request=SampleRequest("ddim", {"steps": 20}, n=1000),
        overlays={"trails": 100, "show_x0": True},
    ),
    Chapter(
        "5 · η: how much noise each step adds",
        "DDIM's η moves between the deterministic sampler (η = 0) and DDPM (η = 1, their eq. 16): "
        "σ<sub>t</sub> = η √((1 − ᾱ<sub>t−1</sub>)/(1 − ᾱ<sub>t</sub>)) √(1 − ᾱ<sub>t</sub>/ᾱ<sub>t−1</sub>). The "
        "four panels start from the same noise at η = 0, 0.3, 0.6 and 1; the table compares how close each comes "
        "to the data (× the floor that fresh data reaches).",
        "compare_view",
        example="moons-ddpm",
        preset="eta",
    ),
    Chapter(
        "6 · Scores and Langevin dynamics",
        "A score network learns ∇ log p<sub>σ</sub>(x), the direction in which the noised data gets denser, at "
        "noise levels σ<sub>1</sub> &gt; … &gt; σ<sub>L</sub> (Song &amp; Ermon 2019). Langevin dynamics, "
        "x ← x + α/2 · s(x, σ) + √α z, climbs that log-density with noise; starting at a large σ lets the particles "
        "cross the empty space between the moons before the small σ pull them onto them. The arrows are the score "
        "at the level of the frame.",
        "langevin_view",
        example="moons-ncsn",
    ),
    Chapter(
        "7 · The exact denoiser memorises",
        "For a finite set of points the best possible denoiser is known in closed form: a softmax-weighted "
        "average of the training points, the posterior mean E[x<sub>0</sub> | x<sub>t</sub>]. Sampling with it "
        "lands every sample on a training point: a perfectly trained model only copies its data. Here 60 points "
        "and DDIM 50 with the exact model; the caption counts the samples that sit on a training point.",
        "reverse_view",
        n=60,
        request=SampleRequest("ddim", {"steps": 50}, exact=True, n=500),
        frame="last",
    ),
    Chapter(
        "8 · Guidance",
        "Classifier-free guidance (Ho &amp; Salimans 2021) pushes a class-conditional prediction away from the "
        "unconditional one: ε̃ = ε<sub>∅</sub> + w (ε<sub>c</sub> − ε<sub>∅</sub>). At w = 3 the class sharpens but "
        "samples leave the data. Guiding only at middle noise levels (Kynkäänniemi et al. 2024), or by a weaker "
        "snapshot of the same network instead of the unconditional one (autoguidance, Karras et al. 2024), keeps "
        "them on it: compare the share in support and the class recall in the table.",
        "compare_view",
        example="tree-ddpm",
        preset="guidance-study",
    ),
    Chapter(
        "9 · Flow matching",
        "Flow matching (Lipman et al. 2023; Liu, Gong &amp; Liu 2023) regresses a velocity v(x<sub>t</sub>, t) on "
        "x<sub>1</sub> − x<sub>0</sub> along straight lines x<sub>t</sub> = (1 − t) x<sub>0</sub> + t x<sub>1</sub> "
        "from noise to data; pairing each batch by optimal transport (Tong et al. 2024) keeps those lines from "
        "crossing, so the learned paths are nearly straight. The grid is the plane carried by the learned flow "
        "from t = 0 to t = 1.",
        "transport_view",
        example="moons-flow-ot",
    ),
    Chapter(
        "10 · The density a model learned",
        "Every model here defines a density through its ODE: along a path, d log p/dt = −∇·v, so "
        "log p(x) = log p<sub>0</sub>(x<sub>0</sub>) − ∫ ∇·v dt (Chen et al. 2018; Song et al. 2021, §4.3). In 2D "
        "the divergence is exact. The heatmap is this flow's log-density on a grid; click a point for its path.",
        "density_view",
        example="moons-flow-ot",
    ),
    Chapter(
        "11 · EDM",
        "Karras et al. 2022 rewrote diffusion as one denoiser D(x; σ) = c<sub>skip</sub> x + c<sub>out</sub> "
        "F(c<sub>in</sub> x; c<sub>noise</sub>), scaled so that the network's input and target have unit variance "
        "at every σ, sampled with Heun's method over noise levels crowded towards σ<sub>min</sub> (ρ = 7): 18 "
        "levels, 35 evaluations, land as well as DDPM's thousand.",
        "reverse_view",
        example="moons-edm",
        request=SampleRequest("edm", {"steps": 18}, n=1000),
        overlays={"trails": 100},
    ),
)
