"""The training view's formula, without Qt: one training example's loss under the lab's model (the finished run,
or the newest snapshot of the one in training), term by term (``core.formulas.explain_training_example``).

    example = TrainingExample()
    example.update(run=state.model_run, data=state.data)   # the view does this when either changes
    example.explain(12, 0)                                  # training point 12's loss
"""

from __future__ import annotations

from diffvis.app.models.evented import EventedModel
from diffvis.core.classes import dense_labels
from diffvis.core.explain import Explanation
from diffvis.core.formulas import explain_training_example


class TrainingExample(EventedModel):
    """``run``: the model whose loss is shown (None: none yet); ``data``: the lab's training points (a PointSet).
    ``frame`` is the training view's snapshot (the loss is the newest model's at every snapshot)."""

    FIELDS = {"run": None, "data": None, "frame": 0}
    FORMULA_FIELDS = ("run", "data")
    FORMULA_HINT = "Train or open a run to see the loss of one training example here."

    def explain(self, point: int, frame: int) -> Explanation | None:
        if self.run is None or self.data is None or len(self.data) < 2:
            return None
        labels = dense_labels(self.run.classes, self.data) if self.run.classes is not None else None
        return explain_training_example(self.run, self.data.points, labels, point)
