"""The real `diffvis` process: a window under Xvfb (xcb) or offscreen, a screenshot mid-training, a clean exit."""

import os
import shutil
import subprocess
import sys

import pytest
from PySide6.QtGui import QImage

BAD_SIGNS = ("QThread: Destroyed", "Traceback", "Fatal Python error", "Segmentation fault")


def _launch(args, home, xvfb: bool) -> subprocess.Popen:
    env = {**os.environ, "XDG_CONFIG_HOME": str(home / "cfg"), "XDG_DATA_HOME": str(home / "data")}
    cmd = [sys.executable, "-m", "diffvis", *args]
    if xvfb:
        env["QT_QPA_PLATFORM"] = "xcb"
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", *cmd]
    else:
        env["QT_QPA_PLATFORM"] = "offscreen"
    with open(home / "stdout.txt", "w") as out, open(home / "stderr.txt", "w") as err:  # no pipe to fill
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=err)


def _assert_real_window_picture(path):
    image = QImage(str(path))
    assert image.width() >= 1000 and image.height() >= 700
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 50  # widgets, text, plotted points: not a blank or single-colour window


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    """`diffvis --demo --screenshot` under Xvfb (where xvfb-run is installed) and offscreen, both processes at
    once (each trains on one thread beside its idle GUI thread): {xvfb: (exit status, stderr, screenshot)}."""
    started = {}
    for xvfb in (True, False) if shutil.which("xvfb-run") is not None else (False,):
        home = tmp_path_factory.mktemp("xvfb" if xvfb else "offscreen")
        started[xvfb] = _launch(["--demo", "--screenshot", str(home / "demo.png")], home, xvfb), home / "demo.png"
    done = {}
    try:
        for xvfb, (process, shot) in started.items():
            process.wait(timeout=900)  # a hang guard, not a timing
            done[xvfb] = process.returncode, (shot.parent / "stderr.txt").read_text(), shot
    finally:
        for process, _ in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return done


@pytest.mark.parametrize("xvfb", [True, False], ids=["xvfb", "offscreen"])
def test_demo_screenshot_process_exits_cleanly(demos, xvfb):
    if xvfb and shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed (.ci/run installs it)")
    returncode, stderr, shot = demos[xvfb]
    assert returncode == 0, stderr
    assert not any(sign in stderr for sign in BAD_SIGNS), stderr
    _assert_real_window_picture(shot)
