"""What a flow does to space: a grid of lines pushed through the flow map ψ_t, and how far each path bends.

The grid is drawn in the source's region (±``GRID_REACH`` standard deviations of the standardised source, in data
coordinates); every line is a polyline of points, and every point follows the request's ODE (``pipeline``), so
frame k of the result is ψ_{t_k} of the grid: the picture folds and stretches as the flow carries the source onto
the data.

A path's straightness is its chord over its length, |x_end − x_start| / Σ_k |x_{k+1} − x_k| (1 for a straight
path, smaller the more it bends); ``bend`` = 1 − straightness colours the trajectories.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from diffvis.core.pipeline import sample_request
from diffvis.core.request import SampleRequest
from diffvis.core.run import SamplingModel

GRID_REACH = 3.0


@dataclass(frozen=True)
class GridFlow:
    """``frames`` (F, L, P, 2): the L lines of P points each at every frame, in data coordinates; ``times`` (F,)."""

    frames: np.ndarray
    times: np.ndarray

    @property
    def lines(self) -> int:
        return self.frames.shape[1]


def grid_lines(model: SamplingModel, lines: int = 40, points_per_line: int = 60) -> np.ndarray:
    """(2·lines, points_per_line, 2): ``lines`` horizontal and ``lines`` vertical lines over the source's region,
    in data coordinates: the square of side 2·GRID_REACH around the origin of the standardised space for the
    N(0, I) source, the bounding box of a data-set source's points."""
    if model.source is None:
        (x0, y0), (x1, y1) = (-GRID_REACH, -GRID_REACH), (GRID_REACH, GRID_REACH)
    else:
        (x0, y0), (x1, y1) = model.source.min(0).values.tolist(), model.source.max(0).values.tolist()
    t = np.linspace(0.0, 1.0, points_per_line)[None, :]  # along a line
    s = np.linspace(0.0, 1.0, lines)[:, None]  # across the lines
    horizontal = np.stack(np.broadcast_arrays(x0 + t * (x1 - x0), y0 + s * (y1 - y0)), axis=-1)
    vertical = np.stack(np.broadcast_arrays(x0 + s * (x1 - x0), y0 + t * (y1 - y0)), axis=-1)
    return model.normaliser.to_data(np.concatenate([horizontal, vertical]))


def push_grid(model: SamplingModel, request: SampleRequest, lines: np.ndarray, *, callback=None) -> GridFlow:
    """Every point of ``lines`` (L, P, 2, data coordinates) carried along ``request``'s ODE: ψ_t of the grid."""
    shape = lines.shape
    x = torch.as_tensor(model.normaliser.to_std(lines.reshape(-1, 2)), dtype=torch.float32)
    traj = sample_request(model, request, callback=callback, x_T=x.to(model.device))
    return GridFlow(traj.frames.reshape(len(traj.frames), *shape), traj.times)


def bend(frames: np.ndarray) -> np.ndarray:
    """(N,) 1 − chord/length of each path of ``frames`` (F, N, 2): 0 for a straight path."""
    steps = np.linalg.norm(np.diff(frames, axis=0), axis=-1).sum(0)
    chord = np.linalg.norm(frames[-1] - frames[0], axis=-1)
    return np.where(steps > 0, 1 - chord / np.maximum(steps, 1e-300), 0.0)
