"""The coupling view's state without Qt: which coupling it draws (``kind``, one of the core's ``PICTURED``), how many
lines (``n``) and their ``seed``, and the pairs it computed (``result``, a ``Coupled``; one frame).

    model = CouplingModel(kind=PICTURED[1], n=100)
    model.result = model.work(state)(progress)   # the view runs this in its worker
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from diffvis.app.models.scene import SceneModel, lab_schedule
from diffvis.core.coupling_lines import DEFAULT_LINES, PICTURED, CouplingLines, coupling_lines, coupling_model
from diffvis.core.progress import ReportProgress


@dataclass(frozen=True)
class Coupled:
    """The pairs drawn, and whose flow gave their source (and ψ), in words."""

    lines: CouplingLines
    model: str


class CouplingModel(SceneModel):
    """``kind``: the coupling drawn; ``n``: its lines; ``seed``: the draw of their source points and partners."""

    FIELDS = {**SceneModel.FIELDS, "kind": PICTURED[0], "n": DEFAULT_LINES, "seed": 0}

    def frames_of(self, result: Coupled) -> int:
        return 1

    def work(self, state) -> Callable[[ReportProgress], Coupled]:
        run, data, schedule = state.model_run, state.data, lab_schedule(state)
        kind, n, seed = self.kind, self.n, self.seed

        def compute(progress: ReportProgress) -> Coupled:
            model = coupling_model(run, data, schedule)
            lines = coupling_lines(model, data.points, kind, n=n, seed=seed, progress=progress)
            return Coupled(lines, "exact flow of the points" if model.exact else "trained flow")

        return compute
