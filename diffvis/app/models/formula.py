"""The formula panel's state without Qt: which point it explains and the filled-in equation of the step at the
scene's frame for that point (``core.explain``).

    formula = FormulaModel()
    formula.follow(reverse_model)   # recomputed when its result or frame changes
    formula.point = 12              # the pinned point
    formula.hovered = 40            # shown instead while the pointer is on it; None: the pinned one again

What is explained is the scene's (``SceneModel.explain``): for a sampled scene, at frame k the step k → k + 1, at
the last frame the step that led to it; for the forward process, x_t of the frame.
"""

from __future__ import annotations

from diffvis.app.models.evented import EventedModel
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
        scene.events.connect(lambda name, _: self.refresh() if name in scene.FORMULA_FIELDS else None)
        self.refresh()

    def __setattr__(self, name: str, value) -> None:
        super().__setattr__(name, value)
        if name in ("point", "hovered"):
            self.refresh()

    @property
    def shown_point(self) -> int:
        return self.point if self.hovered is None else self.hovered

    def refresh(self) -> None:
        """Recompute the explanation of the point shown at the scene's frame (``SceneModel.explain``)."""
        scene = self.scene
        try:
            explanation = None if scene is None else scene.explain(self.shown_point, scene.frame)
        except DiffvisError as e:
            self.update(explanation=None, reason=str(e))
            return
        self.update(
            explanation=explanation, reason="" if explanation is not None or scene is None else scene.FORMULA_HINT
        )

    def latex(self) -> str:
        """The explanation as LaTeX ('' when there is none)."""
        return "" if self.explanation is None else self.explanation.latex()
