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
    """``point``: the pinned sample; ``hovered``: the sample under the pointer (None: none); ``probe``: the newest
    probe particle is explained (set when one is placed, cleared when a sample is picked); ``explanation``: the
    step explained (None: nothing sampled yet, or ``reason`` says why not)."""

    FIELDS = {"point": 0, "hovered": None, "probe": False, "explanation": None, "reason": ""}

    def __init__(self, **values) -> None:
        super().__init__(**values)
        object.__setattr__(self, "scene", None)

    def follow(self, scene) -> None:
        """Explain the frame of ``scene`` (its result holds the sampling ``model``, the ``request`` and the
        ``trajectory``), again whenever its result or frame changes."""
        object.__setattr__(self, "scene", scene)
        scene.events.connect(self._on_scene_event)
        self.refresh()

    def _on_scene_event(self, name: str, value) -> None:
        if name == "probes":  # a new probe is explained until a sample is picked again
            object.__setattr__(self, "probe", bool(value))
        if name in self.scene.FORMULA_FIELDS:
            self.refresh()

    def __setattr__(self, name: str, value) -> None:
        if name in ("point", "hovered") and value is not None:
            object.__setattr__(self, "probe", False)
        super().__setattr__(name, value)
        if name in ("point", "hovered", "probe"):
            self.refresh()

    @property
    def shown_point(self) -> int:
        return self.point if self.hovered is None else self.hovered

    def refresh(self) -> None:
        """Recompute the explanation of the point shown at the scene's frame (``SceneModel.explain``)."""
        scene = self.scene
        try:
            explanation = None
            if scene is not None and self.probe and hasattr(scene, "explain_probe"):
                explanation = scene.explain_probe(scene.frame)
            if scene is not None and explanation is None:
                explanation = scene.explain(self.shown_point, scene.frame)
        except DiffvisError as e:
            self.update(explanation=None, reason=str(e))
            return
        self.update(
            explanation=explanation, reason="" if explanation is not None or scene is None else scene.FORMULA_HINT
        )

    def latex(self) -> str:
        """The explanation as LaTeX ('' when there is none)."""
        return "" if self.explanation is None else self.explanation.latex()
