"""The tour's state without Qt: which chapter is open (kept in the settings, so that the tour resumes there).

tour = TourModel()
tour.next()          # chapter 1 → 2 ('chapter' event)
tour.chapter = 7     # clamped to the chapters there are
"""

from __future__ import annotations

from diffvis.app.models.evented import EventedModel
from diffvis.core.tour import CHAPTERS, Chapter


class TourModel(EventedModel):
    """``chapter``: the index of the open chapter in ``CHAPTERS``."""

    FIELDS = {"chapter": 0}

    def __setattr__(self, name: str, value) -> None:
        if name == "chapter":
            value = min(max(int(value), 0), len(CHAPTERS) - 1)
        super().__setattr__(name, value)

    @property
    def current(self) -> Chapter:
        return CHAPTERS[self.chapter]

    @property
    def count(self) -> int:
        return len(CHAPTERS)

    def next(self) -> None:
        self.chapter += 1

    def back(self) -> None:
        self.chapter -= 1
