"""A minimal evented model: assigning a declared field a new value tells every listener, once per change.

    class Frame(EventedModel):
        FIELDS = {"index": 0, "count": 1}

    frame = Frame()
    frame.events.connect(lambda name, value: print(name, value))
    frame.index = 3          # → "index 3"; assigning 3 again says nothing
    frame.update(index=4, count=9)   # each changed field, in the order given

No Qt here: the models are tested, and driven headless, without a display.
"""

from __future__ import annotations

from collections.abc import Callable


class Event:
    """A list of callbacks called with the emitted arguments, in the order they connected."""

    def __init__(self) -> None:
        self._callbacks: list[Callable] = []

    def connect(self, callback: Callable) -> Callable:
        self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable) -> None:
        self._callbacks.remove(callback)

    def emit(self, *args) -> None:
        for callback in list(self._callbacks):
            callback(*args)


class EventedModel:
    """Subclasses declare ``FIELDS`` {name: default}; ``events`` emits (name, value) when a field changes."""

    FIELDS: dict[str, object] = {}

    def __init__(self, **values) -> None:
        object.__setattr__(self, "events", Event())
        unknown = values.keys() - self.FIELDS.keys()
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {', '.join(sorted(unknown))}")
        for name, default in self.FIELDS.items():
            object.__setattr__(self, name, values.get(name, default))

    def __setattr__(self, name: str, value) -> None:
        if name not in self.FIELDS:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}")
        if _same(getattr(self, name), value):
            return
        object.__setattr__(self, name, value)
        self.events.emit(name, value)

    def update(self, **values) -> None:
        for name, value in values.items():
            setattr(self, name, value)


def _same(a, b) -> bool:
    """Equal, for values that compare to a bool (arrays compare elementwise: an array is never 'the same')."""
    try:
        return bool(a is b or a == b)
    except (TypeError, ValueError):
        return False
