"""The real `diffvis` process: a window under Xvfb (xcb) or offscreen, a screenshot mid-training, a clean exit."""

import os
import shutil
import subprocess
import sys

import pytest
from PySide6.QtGui import QImage

BAD_SIGNS = ("QThread: Destroyed", "Traceback", "Fatal Python error", "Segmentation fault")


def _launch(args, tmp_path, xvfb: bool):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data")}
    cmd = [sys.executable, "-m", "diffvis", *args]
    if xvfb:
        env["QT_QPA_PLATFORM"] = "xcb"
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", *cmd]
    else:
        env["QT_QPA_PLATFORM"] = "offscreen"
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)  # a hang guard, not a timing


def _assert_real_window_picture(path):
    image = QImage(str(path))
    assert image.width() >= 1000 and image.height() >= 700
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 50  # widgets, text, plotted points: not a blank or single-colour window


@pytest.mark.parametrize("xvfb", [True, False], ids=["xvfb", "offscreen"])
def test_demo_screenshot_process_exits_cleanly(tmp_path, xvfb):
    if xvfb and shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed (.ci/run installs it)")
    shot = tmp_path / "demo.png"
    done = _launch(["--demo", "--screenshot", str(shot)], tmp_path, xvfb)
    assert done.returncode == 0, done.stderr
    assert not any(sign in done.stderr for sign in BAD_SIGNS), done.stderr
    _assert_real_window_picture(shot)
