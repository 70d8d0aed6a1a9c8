"""Per-user settings and run storage in platformdirs' folders (never the working directory), written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import platformdirs

from diffvis.core.atomic import atomic_write_bytes

APP = "diffvis"
MAX_RECENT = 8


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP))


def runs_dir() -> Path:
    """Where runs are saved by default."""
    path = Path(platformdirs.user_data_dir(APP)) / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


class Settings:
    """A JSON dictionary in the user's config folder; a missing or unreadable file means defaults."""

    def __init__(self, path: Path | None = None):
        self.path = path or config_dir() / "settings.json"
        try:
            loaded = json.loads(self.path.read_text())
            self.values: dict = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            self.values = {}

    def get(self, key: str, default=None):
        return self.values.get(key, default)

    def set(self, key: str, value) -> None:
        self.values[key] = value

    def add_recent_run(self, path: str | Path) -> None:
        path = str(Path(path).resolve())
        recent = [p for p in self.values.get("recent_runs", []) if p != path]
        self.values["recent_runs"] = [path, *recent][:MAX_RECENT]

    def recent_runs(self) -> list[str]:
        return [p for p in self.values.get("recent_runs", []) if isinstance(p, str)]

    def save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path, json.dumps(self.values, indent=1).encode())
        except OSError:
            pass  # settings are a convenience: never fail the app over them
