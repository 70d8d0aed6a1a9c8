"""What makes a view ``Exportable`` (diffvis.app.export): frame bookkeeping from its timeline, and the export
button's dialog. A view using it has ``state``, ``timeline``, ``figure`` and ``svg_item``, puts an
``export_button()`` wired to ``choose_export`` on its timeline, and implements ``has_content``, ``show_frame``,
``frame_points`` and ``all_points``."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QProgressDialog, QPushButton

from diffvis.app.export import EXPORT_FILTER, export_view
from diffvis.errors import DiffvisError


def export_button() -> QPushButton:
    button = QPushButton("Export…")
    button.setToolTip("Save this frame (PNG, SVG), its points (CSV), all frames (NPY) or the animation (GIF, MP4)")
    return button


class ExportActions:
    def has_content(self) -> bool:
        raise NotImplementedError

    def frame_count(self) -> int:
        return self.timeline.slider.maximum() + 1 if self.has_content() else 0

    def current_frame(self) -> int:
        return self.timeline.frame

    def choose_export(self) -> None:
        if not self.has_content():
            self.state.say("Nothing to export yet.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export view", str(Path.home()), EXPORT_FILTER)
        if path:
            self.export(path)

    def export(self, path: str | Path) -> bool:
        """Write the view to ``path`` (the suffix picks what), with a progress dialog for animations."""
        dialog = QProgressDialog("Exporting…", None, 0, self.frame_count(), self)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(300)
        try:
            frames = export_view(self, path, progress=lambda i, n: (dialog.setMaximum(n), dialog.setValue(i)))
        except DiffvisError as e:
            self.state.say(str(e))
            return False
        finally:
            dialog.close()
        self.state.say(f"exported {frames} frame{'s' * (frames != 1)} to {path}")
        return True
