"""Can Qt open a window here? Checked before any Qt import, so a missing system library is one clear line.

On Linux, PySide6's xcb platform plugin (``libqxcb.so``) loads system libraries that a minimal Debian, Ubuntu or
Fedora lacks. When one is missing Qt prints "From 6.5.0, xcb-cursor0 or libxcb-cursor0 is needed to load the Qt
xcb platform plugin" whatever the library really is, and aborts. So before the QApplication is made we run
``ldd`` on the plugin, read its "=> not found" lines and name the packages that install them. No Qt module is
imported here; where ``ldd`` is absent or fails, the check is skipped (it never blocks a working set-up).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from diffvis.errors import ConfigError, DiffvisError

# soname -> (Debian/Ubuntu package, Fedora package): the system libraries that libqxcb.so and Qt6Gui load
# (`ldd` on the plugin, outside PySide6's own lib folder), plus libxcb-glx for the GLX integration plugin.
# The C/C++ runtime, zlib, libpng and the like are in every base system and are not listed.
PACKAGES: dict[str, tuple[str, str]] = {
    "libEGL.so.1": ("libegl1", "mesa-libEGL"),
    "libGL.so.1": ("libgl1", "mesa-libGL"),
    "libGLX.so.0": ("libglx0", "mesa-libGL"),
    "libGLdispatch.so.0": ("libglvnd0", "libglvnd"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libXau.so.6": ("libxau6", "libXau"),
    "libXdmcp.so.6": ("libxdmcp6", "libXdmcp"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libxcb-glx.so.0": ("libxcb-glx0", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
}

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$", re.MULTILINE)
_NEEDS_DISPLAY = {"", "xcb", "wayland", "wayland-egl"}


class QtLibrariesMissing(DiffvisError):
    """System libraries that Qt's xcb platform plugin needs are not installed."""


def packages(distro: str) -> list[str]:
    """Every package of the table for ``distro`` ("debian" or "fedora"), sorted, each once."""
    column = {"debian": 0, "fedora": 1}[distro]
    return sorted({row[column] for row in PACKAGES.values()})


def platform_name(environ: Mapping[str, str]) -> str:
    """The Qt platform plugin asked for by QT_QPA_PLATFORM ("" when unset): its first choice, without options."""
    value = environ.get("QT_QPA_PLATFORM", "")
    return value.split(";")[0].split(":")[0].strip().lower()


def display_missing(environ: Mapping[str, str], system: str = sys.platform) -> bool:
    """Linux, neither DISPLAY nor WAYLAND_DISPLAY set, and a platform plugin that needs one (not offscreen)."""
    return (
        system.startswith("linux")
        and not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))
        and platform_name(environ) in _NEEDS_DISPLAY
    )


def xcb_wanted(environ: Mapping[str, str], system: str = sys.platform) -> bool:
    """Whether Qt will load the xcb plugin: Linux, platform unset or xcb, and X (DISPLAY) or no Wayland."""
    return (
        system.startswith("linux")
        and platform_name(environ) in ("", "xcb")
        and bool(environ.get("DISPLAY") or not environ.get("WAYLAND_DISPLAY"))
    )


def qxcb_plugin() -> Path | None:
    """PySide6's libqxcb.so, found without importing PySide6 (find_spec of a top-level package loads nothing)."""
    spec = importlib.util.find_spec("PySide6")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder, "Qt", "plugins", "platforms", "libqxcb.so")
        if path.is_file():
            return path
    return None


def run_ldd(path: Path) -> str | None:
    """``ldd path``'s output, or None where ldd is absent, fails or hangs."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return None
    try:
        done = subprocess.run([ldd, str(path)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def parse_missing(ldd_output: str) -> list[str]:
    """The sonames on "NAME => not found" lines of ldd's output, in order, each once."""
    return list(dict.fromkeys(_NOT_FOUND.findall(ldd_output)))


def missing_message(missing: list[str], *, root: bool | None = None) -> str:
    """One line: what is missing and the apt-get and dnf commands that install it."""
    if root is None:
        root = hasattr(os, "geteuid") and os.geteuid() == 0
    sudo = "" if root else "sudo "
    known = [name for name in missing if name in PACKAGES]
    unknown = [name for name in missing if name not in PACKAGES]
    several = len(missing) > 1
    text = f"Qt's xcb platform plugin cannot load: missing system {'libraries' if several else 'library'} "
    text += ", ".join(missing)
    if known:
        apt = " ".join(dict.fromkeys(PACKAGES[name][0] for name in known))
        dnf = " ".join(dict.fromkeys(PACKAGES[name][1] for name in known))
        text += f"; install {'them' if several else 'it'} with `{sudo}apt-get install {apt}` (Debian, Ubuntu)"
        text += f" or `{sudo}dnf install {dnf}` (Fedora)"
    if unknown:
        text += f"; find the package of {', '.join(unknown)} with `apt-file search NAME` or `dnf provides '*/NAME'`"
    return text


def missing_xcb_libraries() -> list[str]:
    """The system libraries libqxcb.so cannot find; [] when all are there or it cannot be told."""
    plugin = qxcb_plugin()
    output = run_ldd(plugin) if plugin is not None else None
    return parse_missing(output) if output is not None else []


def headless_commands() -> list[str]:
    """The subcommands of ``diffvis`` (``cli.build_parser``), in order: every one of them runs without a display."""
    from diffvis.cli import build_parser  # imported here: cli imports this module when it opens the app

    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


def check_can_open_window(*, screenshot: bool, environ: dict[str, str] | None = None) -> None:
    """Before the QApplication: raise one clear DiffvisError if Qt cannot open a window here.

    Without a display a screenshot renders offscreen (QT_QPA_PLATFORM is set to offscreen in ``environ``); anything
    else is an error. Where Qt will load the xcb plugin, its missing system libraries are named with their packages.
    """
    environ = os.environ if environ is None else environ
    if display_missing(environ):
        if screenshot and not platform_name(environ):
            environ["QT_QPA_PLATFORM"] = "offscreen"
            return
        *others, last = headless_commands()
        raise ConfigError("no display to open the app on (set DISPLAY, run it under xvfb-run, or set "
                          "QT_QPA_PLATFORM=offscreen to run it without a window); the headless commands are "
                          f"{', '.join(others)} and {last}")  # fmt: skip
    if xcb_wanted(environ):
        missing = missing_xcb_libraries()
        if missing:
            raise QtLibrariesMissing(missing_message(missing))
