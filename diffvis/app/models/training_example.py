"""The training view's formula, without Qt: one training example's loss under the lab's model (the finished run,
or the newest snapshot of the one in training), term by term (``core.formulas.explain_training_example``).

    example = TrainingExample()
    example.update(run=state.model_run, data=state.data)   # the view does this when either changes
    example.explain(12, 0)                                  # training point 12's loss
"""

from __future__ import annotations

import numpy as np

from diffvis.app.models.evented import EventedModel
from diffvis.core.classes import dense_labels
from diffvis.core.explain import Explanation
from diffvis.core.formulas import data_losses, explain_training_example


class TrainingExample(EventedModel):
    """``run``: the model whose loss is shown (None: none yet); ``data``: the lab's training points (a PointSet).
    ``frame`` is the training view's snapshot (the loss is the newest model's at every snapshot)."""

    FIELDS = {"run": None, "data": None, "frame": 0}
    FORMULA_FIELDS = ("run", "data")
    FORMULA_HINT = "Train or open a run to see the loss of one training example here."

    def explain(self, point: int, frame: int) -> Explanation | None:
        if not self._ready:
            return None
        return explain_training_example(self.run, self.data.points, self._labels, point)

    def bucket_loss(self) -> np.ndarray | None:
        """(N_BUCKETS,) the model's loss over the training points per bucket of conditions (None: no model)."""
        return data_losses(self.run, self.data.points, self._labels).per_bucket() if self._ready else None

    @property
    def _ready(self) -> bool:
        return self.run is not None and self.data is not None and len(self.data) >= 2

    @property
    def _labels(self):
        return dense_labels(self.run.classes, self.data) if self.run.classes is not None else None
