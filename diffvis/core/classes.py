"""Class labels: what a conditional model is conditioned on.

A data set's raw labels are any non-negative integers (a CSV may use 1 and 5); a network sees dense ids
0 … K−1 in the order of the sorted raw values, and ``NULL_LABEL`` (−1) for "no label" (∅), which the network
maps to its extra embedding entry. ``Classes`` keeps the raw values, their names and their shares of the data,
so that a run can name its classes and draw labels "all, in proportion".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from diffvis.core.datasets import PointSet
from diffvis.errors import ConfigError

NULL_LABEL = -1
ALL_CLASSES = "all"  # sample every class, one label per point in proportion to the data
UNCONDITIONAL = "unconditional"  # sample a conditional model without a class: f(x, t, ∅)
MAX_CLASSES = 64


@dataclass(frozen=True)
class Classes:
    """``values[i]`` is the raw label of dense class i, ``names[i]`` its name, ``fractions[i]`` its share."""

    values: tuple[int, ...]
    names: tuple[str, ...]
    fractions: tuple[float, ...]

    def __post_init__(self) -> None:
        k = len(self.values)
        if not 2 <= k <= MAX_CLASSES:
            raise ConfigError(f"a conditional model needs between 2 and {MAX_CLASSES} classes, got {k}")
        if len(self.names) != k or len(self.fractions) != k:
            raise ConfigError("class values, names and fractions must match one to one")
        if list(self.values) != sorted(set(self.values)):
            raise ConfigError(f"class values must be distinct and in increasing order, got {list(self.values)}")
        if not all(math.isfinite(f) and f > 0 for f in self.fractions):
            raise ConfigError("every class must hold a positive share of the points")

    def __len__(self) -> int:
        return len(self.values)

    @classmethod
    def of(cls, data: PointSet) -> Classes | None:
        """The classes of a labelled point set, or None when it has fewer than two (nothing to condition on)."""
        if data.labels is None or len(data) == 0:
            return None
        values, counts = np.unique(data.labels, return_counts=True)
        if len(values) < 2:
            return None
        names = tuple(data.class_name(int(v)) for v in values)
        return cls(tuple(int(v) for v in values), names, tuple(float(c) / len(data) for c in counts))

    def encode(self, raw: np.ndarray) -> np.ndarray:
        """Raw labels → dense ids (int64); a label that is not one of the classes is an error."""
        raw = np.asarray(raw, dtype=np.int64)
        values = np.asarray(self.values)
        dense = np.searchsorted(values, raw)
        if len(raw) and not np.array_equal(values[np.minimum(dense, len(values) - 1)], raw):
            raise ConfigError("the points hold a class label the model was not trained on")
        return dense.astype(np.int64)

    def index(self, name: str) -> int:
        """The dense id of a class given by name, or else by its dense number; raises with the choices."""
        if name in self.names:
            return self.names.index(name)
        if name.isascii() and name.isdigit() and int(name) < len(self):
            return int(name)
        choices = ", ".join(f"{i} ({n})" for i, n in enumerate(self.names))
        raise ConfigError(f"unknown class {name!r}; choose one of {choices}, or 'all'")

    def draw(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n,) dense labels drawn in proportion to the classes' shares of the data."""
        weights = torch.tensor(self.fractions, dtype=torch.float64)
        return torch.multinomial(weights, n, replacement=True, generator=generator)

    def to_dict(self) -> dict:
        return {"values": list(self.values), "names": list(self.names), "fractions": list(self.fractions)}

    @classmethod
    def from_dict(cls, d: dict) -> Classes:
        return cls(tuple(int(v) for v in d["values"]), tuple(str(s) for s in d["names"]),
                   tuple(float(f) for f in d["fractions"]))  # fmt: skip


def dense_labels(classes: Classes | None, data: PointSet) -> np.ndarray | None:
    """The dense ids of ``data``'s points for a model conditioned on ``classes`` (None for an unconditional one)."""
    if classes is None:
        return None
    if data.labels is None:
        raise ConfigError("this model is conditioned on classes, but the points have no labels")
    return classes.encode(data.labels)
