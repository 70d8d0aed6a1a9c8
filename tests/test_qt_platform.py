"""diffvis.qt_platform: Qt's missing system libraries are named, with their packages, before Qt loads."""

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from diffvis import qt_platform as qp
from diffvis.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
LINUX = sys.platform.startswith("linux")

# ldd's own format (glibc), cut from `ldd libqxcb.so` on a Debian 12 that had libxcb-cursor0 but lacked
# libxcb-icccm4 and libxcb-keysyms1: a missing library is listed once per library that needs it.
LDD_MISSING = """\
\tlinux-vdso.so.1 (0x00007f55e4902000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x00007f55e4834000)
\tlibQt6Gui.so.6 => /venv/PySide6/Qt/plugins/platforms/../../lib/libQt6Gui.so.6 (0x00007f55e3c00000)
\tlibGL.so.1 => /lib/x86_64-linux-gnu/libGL.so.1 (0x00007f55e47a4000)
\tlibxkbcommon-x11.so.0 => /lib/x86_64-linux-gnu/libxkbcommon-x11.so.0 (0x00007f55e4751000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f55e474a000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-util.so.1 => /lib/x86_64-linux-gnu/libxcb-util.so.1 (0x00007f55e4742000)
\tlibxcb-image.so.0 => /lib/x86_64-linux-gnu/libxcb-image.so.0 (0x00007f55e473c000)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-randr.so.0 => /lib/x86_64-linux-gnu/libxcb-randr.so.0 (0x00007f55e4729000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f55e2a1e000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibglib-2.0.so.0 => /lib/x86_64-linux-gnu/libglib-2.0.so.0 (0x00007f55e28e6000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f55e4904000)
"""
LDD_COMPLETE = "\n".join(line for line in LDD_MISSING.splitlines() if "not found" not in line) + "\n"
FAKE_LDD = '#!/bin/sh\necho "$1" >> "$(dirname "$0")/called"\ncat <<\'EOF\'\n' + LDD_MISSING + "EOF\n"


@pytest.fixture
def _collect_qt_garbage():
    """No Qt objects are made in this process: the shared conftest's full collection after each test (about 0.2 s
    each) is left out, and automatic collection stays on."""
    yield


def test_parse_missing_reads_not_found_lines_once_each_in_order():
    assert qp.parse_missing(LDD_MISSING) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert qp.parse_missing(LDD_COMPLETE) == []
    assert qp.parse_missing("") == []


def test_message_names_the_libraries_and_the_apt_and_dnf_commands():
    text = qp.missing_message(["libxcb-icccm.so.4", "libxcb-keysyms.so.1"], root=False)
    assert "\n" not in text
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in text
    assert "`sudo apt-get install libxcb-icccm4 libxcb-keysyms1` (Debian, Ubuntu)" in text
    assert "`sudo dnf install xcb-util-wm xcb-util-keysyms` (Fedora)" in text
    as_root = qp.missing_message(["libxcb-icccm.so.4"], root=True)
    assert "missing system library libxcb-icccm.so.4; install it with `apt-get install libxcb-icccm4`" in as_root
    assert "sudo" not in as_root


def test_message_names_each_package_once_and_points_to_a_search_for_unknown_libraries():
    text = qp.missing_message(["libxcb-shm.so.0", "libxcb-sync.so.1", "libfoo.so.3"], root=True)
    assert "`apt-get install libxcb-shm0 libxcb-sync1`" in text
    assert "`dnf install libxcb` (Fedora)" in text
    assert "libfoo.so.3" in text and "apt-file search" in text and "dnf provides" in text
    only_unknown = qp.missing_message(["libfoo.so.3"], root=True)
    assert "apt-get install" not in only_unknown and "apt-file search" in only_unknown


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({"DISPLAY": ":0"}, True),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, True),
        ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, True),
        ({}, True),  # no display at all: Qt would try xcb (check_can_open_window says "no display" first)
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, False),
        ({"QT_QPA_PLATFORM": "offscreen"}, False),
        ({"WAYLAND_DISPLAY": "wayland-0"}, False),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "wayland"}, False),
    ],
)
def test_xcb_wanted_only_where_qt_would_load_the_xcb_plugin(env, wanted):
    assert qp.xcb_wanted(env, system="linux") is wanted
    assert qp.xcb_wanted(env, system="darwin") is False and qp.xcb_wanted(env, system="win32") is False


def _no_ldd_allowed(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the xcb check ran")

    monkeypatch.setattr(qp, "missing_xcb_libraries", fail)


def test_the_check_is_skipped_offscreen_and_on_wayland(monkeypatch):
    _no_ldd_allowed(monkeypatch)
    monkeypatch.setattr(sys, "platform", "linux")
    qp.check_can_open_window(screenshot=False, environ={"QT_QPA_PLATFORM": "offscreen"})
    qp.check_can_open_window(screenshot=False, environ={"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"})
    qp.check_can_open_window(screenshot=False, environ={"WAYLAND_DISPLAY": "wayland-0"})


def test_no_display_is_one_clear_error_and_a_screenshot_goes_offscreen(monkeypatch):
    _no_ldd_allowed(monkeypatch)
    monkeypatch.setattr(sys, "platform", "linux")
    for environ in ({}, {"QT_QPA_PLATFORM": "xcb"}):
        with pytest.raises(ConfigError, match="^no display to open the app on .*xvfb-run.*QT_QPA_PLATFORM=offscreen"):
            qp.check_can_open_window(screenshot=False, environ=environ)
    environ = {}
    qp.check_can_open_window(screenshot=True, environ=environ)
    assert environ == {"QT_QPA_PLATFORM": "offscreen"}


def _no_display_message(monkeypatch) -> str:
    _no_ldd_allowed(monkeypatch)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(ConfigError) as error:
        qp.check_can_open_window(screenshot=False, environ={})
    return str(error.value)


def test_no_display_names_every_subcommand_as_headless(monkeypatch):
    """The subcommands as the parser's usage line lists them ({data,train,…}): each is named in the message."""
    from diffvis import cli

    usage = cli.build_parser().format_usage()
    commands = re.search(r"\{([\w,-]+)\}", usage).group(1).split(",")
    assert {"data", "train", "sample", "render", "sweep", "bench"} <= set(commands), usage
    listed = _no_display_message(monkeypatch).split("the headless commands are ")[1]
    assert re.split(r", | and ", listed) == commands


def test_a_new_subcommand_is_named_without_a_display(monkeypatch):
    """The message reads the parser, so a subcommand added to cli is listed with no second list to update."""
    from diffvis import cli

    build = cli.build_parser

    def with_frobnicate():
        parser = build()
        next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).add_parser("frobnicate")
        return parser

    monkeypatch.setattr(cli, "build_parser", with_frobnicate)
    assert _no_display_message(monkeypatch).endswith(" and frobnicate")


def test_missing_libraries_raise_with_the_message(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(qp, "missing_xcb_libraries", lambda: ["libxcb-icccm.so.4"])
    with pytest.raises(qp.QtLibrariesMissing, match="libxcb-icccm4.*xcb-util-wm"):
        qp.check_can_open_window(screenshot=False, environ={"DISPLAY": ":0"})
    monkeypatch.setattr(qp, "missing_xcb_libraries", lambda: [])
    qp.check_can_open_window(screenshot=False, environ={"DISPLAY": ":0"})


def test_the_check_is_skipped_when_ldd_is_absent_or_fails(monkeypatch, tmp_path):
    monkeypatch.setattr(qp, "qxcb_plugin", lambda: tmp_path / "libqxcb.so")
    monkeypatch.setenv("PATH", str(tmp_path))  # no ldd anywhere
    assert qp.run_ldd(tmp_path / "libqxcb.so") is None and qp.missing_xcb_libraries() == []
    ldd = tmp_path / "ldd"
    ldd.write_text("#!/bin/sh\necho 'ldd: exited with unknown exit code (139)' >&2\nexit 1\n")
    ldd.chmod(0o755)
    assert qp.run_ldd(tmp_path / "libqxcb.so") is None and qp.missing_xcb_libraries() == []
    monkeypatch.setattr(qp, "qxcb_plugin", lambda: None)  # PySide6 without the plugin: nothing to check
    assert qp.missing_xcb_libraries() == []


def test_finding_the_plugin_loads_no_qt():
    code = (
        "import sys; from diffvis import qt_platform as qp; p = qp.qxcb_plugin(); "
        "assert p is None or p.name == 'libqxcb.so', p; "
        "qt = [m for m in sys.modules if m.startswith('PySide6') or m.startswith('shiboken')]; assert not qt, qt"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.skipif(not LINUX, reason="the xcb plugin is Linux's")
def test_real_process_with_missing_libraries_exits_2_with_one_line(tmp_path):
    """`python -m diffvis` on a display where ldd (a fake, first on PATH) reports two libraries not found."""
    if qp.qxcb_plugin() is None:
        pytest.skip("this PySide6 has no libqxcb.so")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ldd").write_text(FAKE_LDD)
    (bin_dir / "ldd").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update(DISPLAY=":99", PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    done = subprocess.run([sys.executable, "-m", "diffvis"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    line = done.stderr.strip()
    assert line.startswith("diffvis: error: Qt's xcb platform plugin cannot load: missing system libraries ")
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in line
    assert re.search(r"`(sudo )?apt-get install libxcb-icccm4 libxcb-keysyms1` \(Debian, Ubuntu\)", line)
    assert re.search(r"`(sudo )?dnf install xcb-util-wm xcb-util-keysyms` \(Fedora\)", line)
    assert "xcb-cursor0" not in line  # not Qt's misleading line: Qt never loaded
    called = (bin_dir / "called").read_text().split()
    assert called == [str(qp.qxcb_plugin())]


@pytest.mark.skipif(not LINUX or shutil.which("ldd") is None, reason="needs Linux and ldd")
def test_the_real_ldd_finds_every_library_of_the_xcb_plugin():
    """On this machine .ci/run installed the README's list: the check must find nothing missing."""
    plugin = qp.qxcb_plugin()
    assert plugin is not None and plugin.is_file()
    output = qp.run_ldd(plugin)
    assert output is not None and "libQt6XcbQpa.so.6" in output  # ldd really read the plugin
    missing = qp.parse_missing(output)
    assert missing == [], qp.missing_message(missing)


def _packages_after(text: str, command: str) -> set[str]:
    """The package names of the first `command` in text (a shell command continued with backslashes)."""
    start = text.index(command) + len(command)
    words = []
    for line in text[start:].splitlines():
        words += line.replace("\\", " ").split()
        if not line.rstrip().endswith("\\"):
            break
    return {w for w in words if not w.startswith("-") and not w.startswith(">")}


def test_readme_and_ci_install_the_table():
    readme = (ROOT / "README.md").read_text()
    setup = readme[readme.index("## Set-up") : readme.index("\n## ", readme.index("## Set-up") + 1)]
    assert _packages_after(setup, "apt-get install") == set(qp.packages("debian"))
    assert _packages_after(setup, "dnf install") == set(qp.packages("fedora"))
    assert "macOS and Windows need nothing" in setup
    ci = (ROOT / ".ci" / "run").read_text()
    assert _packages_after(ci, "apt-get install") == set(qp.packages("debian")) | {"xvfb", "xauth"}
    # .ci/run still runs the README's test command verbatim
    test_command = next(line for line in setup.splitlines() if line.endswith(".venv/bin/python -m pytest"))
    assert test_command in ci.splitlines()
