"""The real `diffvis` process: a window under Xvfb (xcb) or offscreen, a screenshot mid-training, a clean exit."""

import os
import shutil
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

BAD_SIGNS = ("QThread: Destroyed", "Traceback", "Fatal Python error", "Segmentation fault")


def _launch(args, home: Path, xvfb: bool) -> dict:
    """A background job (the conftest's ``Background``): `python -m diffvis args` under Xvfb or offscreen."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(home / "cfg"), "XDG_DATA_HOME": str(home / "data")}
    cmd = [sys.executable, "-m", "diffvis", *args]
    if xvfb:
        env["QT_QPA_PLATFORM"] = "xcb"
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", *cmd]
    else:
        env["QT_QPA_PLATFORM"] = "offscreen"
    return {"argv": cmd, "env": env}


def _assert_real_window_picture(path):
    image = QImage(str(path))
    assert image.width() >= 1000 and image.height() >= 700
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 50  # widgets, text, plotted points: not a blank or single-colour window


# Run after the other modules (the conftest): two demo processes, about 15 s of one core each in the background.
BACKGROUND_HEAVY = True


def background_jobs(home: Path) -> dict[str, dict]:
    """`diffvis --demo --screenshot` under Xvfb (where xvfb-run is installed) and offscreen, each in its own
    process (its training thread keeps about one core busy), started at the end of collection beside the tests."""
    xvfbs = (True, False) if shutil.which("xvfb-run") is not None else (False,)
    jobs = {_NAMES[x]: _launch(["--demo", "--screenshot", str(home / f"{_NAMES[x]}.png")], home / _NAMES[x], x)
            for x in xvfbs}  # fmt: skip
    jobs["tour"] = _launch(["--tour", "--screenshot", str(home / "tour.png")], home / "tour", False)
    return jobs


_NAMES = {True: "xvfb", False: "offscreen"}


@pytest.mark.parametrize("xvfb", [True, False], ids=["xvfb", "offscreen"])
def test_demo_screenshot_process_exits_cleanly(background, xvfb):
    if xvfb and shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed (.ci/run installs it)")
    done = background.result(__name__, _NAMES[xvfb])  # a hang guard of 900 s, not a timing
    assert done.returncode == 0, done.stderr
    assert not any(sign in done.stderr for sign in BAD_SIGNS), done.stderr
    _assert_real_window_picture(background.folder(__name__) / f"{_NAMES[xvfb]}.png")


def test_the_tour_opens_from_the_command_line_and_exits_cleanly(background):
    """`diffvis --tour --screenshot`: the window with the tour's first chapter, a picture, exit status 0."""
    done = background.result(__name__, "tour")
    assert done.returncode == 0, done.stderr
    assert not any(sign in done.stderr for sign in BAD_SIGNS), done.stderr
    _assert_real_window_picture(background.folder(__name__) / "tour.png")
