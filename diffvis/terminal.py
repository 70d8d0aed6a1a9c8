"""Progress on a terminal: the one-line bar every headless command shows on stderr."""

from __future__ import annotations

import sys


class ProgressBar:
    """A one-line progress bar on stderr (a line per 10 % when stderr is not a terminal)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty, self.last_decile = self.stream.isatty(), -1

    def show(self, done: int, total: int, text: str = "") -> None:
        frac = done / max(total, 1)
        line = f"[{'#' * int(30 * frac):<30}] {done}/{total}  {text}".rstrip()
        if self.tty:
            self.stream.write("\r" + line + ("\n" if done == total else ""))
        elif int(10 * frac) > self.last_decile:
            self.last_decile = int(10 * frac)
            self.stream.write(line + "\n")
        self.stream.flush()

    def __call__(self, p) -> None:
        """Show a training ``Progress``."""
        self.show(p.step, p.total, f"loss {p.loss:.4f}  {p.steps_per_second:.0f} steps/s  {p.time_left()}")


def sampling_progress(model, request, x_T):
    """A callback that shows a request's frames on a terminal, with the time left from each frame's predicted
    work (the exact model's steps cost more the lower the noise, so seconds per step would mislead)."""
    from diffvis.core.progress import TimeLeft, frame_work

    bar = ProgressBar()
    left = TimeLeft(frame_work(model, request.sampler, x_T, **request.sampler_kwargs()))
    return lambda info: bar.show(info.i, info.total, left(info.i))
