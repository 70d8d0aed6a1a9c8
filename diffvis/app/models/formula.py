"""The formula panel's state without Qt: which point it explains and the filled-in equation of the step at the
scene's frame for that point (``core.explain``).

    formula = FormulaModel()
    formula.follow(reverse_model)   # recomputed when its result or frame changes
    formula.point = 12              # the pinned point
    formula.hovered = 40            # shown instead while the pointer is on it; None: the pinned one again

At frame k the step k → k + 1 is explained; at the last frame, the step that led to it.
"""

from __future__ import annotations

from diffvis.app.models.evented import EventedModel
from diffvis.core.explain import explain_frame
from diffvis.errors import DiffvisError


class FormulaModel(EventedModel):
    """``point``: the pinned sample; ``hovered``: the sample under the pointer (None: none); ``explanation``: the
    step explained (None: nothing sampled yet, or ``reason`` says why not)."""

    FIELDS = {"point": 0, "hovered": None, "explanation": None, "reason": ""}

    def __init__(self, **values) -> None:
        super().__init__(**values)
        object.__setattr__(self, "scene", None)

    def follow(self, scene) -> None:
        """Explain the frame of ``scene`` (its result holds the sampling ``model``, the ``request`` and the
        ``trajectory``), again whenever its result or frame changes."""
        object.__setattr__(self, "scene", scene)
        scene.events.connect(lambda name, _: self.refresh() if name in ("result", "frame") else None)
        self.refresh()

    def __setattr__(self, name: str, value) -> None:
        super().__setattr__(name, value)
        if name in ("point", "hovered"):
            self.refresh()

    @property
    def shown_point(self) -> int:
        return self.point if self.hovered is None else self.hovered

    def refresh(self) -> None:
        """Recompute the explanation for the scene's frame and the point shown."""
        scene = self.scene
        result = None if scene is None else scene.result
        if result is None:
            self.update(explanation=None, reason="")
            return
        traj = result.trajectory
        frame = min(scene.frame, traj.steps - 1)
        try:
            explanation = explain_frame(result.model, result.request, traj, self.shown_point, frame)
        except DiffvisError as e:
            self.update(explanation=None, reason=str(e))
            return
        self.update(explanation=explanation, reason="")

    def latex(self) -> str:
        """The explanation as LaTeX ('' when there is none)."""
        return "" if self.explanation is None else self.explanation.latex()
