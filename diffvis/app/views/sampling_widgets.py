"""Widgets every sampling view offers: the choice between the trained network and the exact model."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox


def model_choice() -> QComboBox:
    """Trained network (data False) or exact model (data True)."""
    box = QComboBox()
    box.addItem("trained", False)
    box.addItem("exact", True)
    box.setToolTip("exact: the exact denoiser of the data, a perfect model that memorises it\n"
                   "(used while no model has been trained)")  # fmt: skip
    return box
