"""Widgets every sampling view offers: the choice between the trained network and the exact models."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox

from diffvis.core.request import EXACT_DENSITY

DENSITY_TITLE = "exact density"
DENSITY_TIP = ("exact density: the exact model of the distribution the data were drawn from (gmm8, grid25, tree),\n"
               "what a perfect network trained on unlimited fresh data would learn")  # fmt: skip


def model_choice(density: bool = False) -> QComboBox:
    """Trained network (data False) or exact model of the points (data True); with ``density``, also the exact
    model of the data's known distribution (data ``EXACT_DENSITY``), offered only for such data
    (``offer_density``)."""
    box = QComboBox()
    box.addItem("trained", False)
    box.addItem("exact", True)
    tip = "exact: the exact denoiser of the data, a perfect model that memorises it\n"
    tip += "(used while no model has been trained)"
    if density:
        box.addItem(DENSITY_TITLE, EXACT_DENSITY)
        tip += "\n" + DENSITY_TIP
    box.setToolTip(tip)
    return box


def offer_density(box: QComboBox, data) -> None:
    """Enable the exact-density item of ``box`` (if it has one) only for points drawn from a known density."""
    index = box.findData(EXACT_DENSITY)
    if index >= 0:
        box.model().item(index).setEnabled(getattr(data, "density", None) is not None)
