"""A sampler added to the registry alone reaches the reverse view: offered by name, its settings built from its
parameter specs, sampled with them. (The comparison and the sweep: tests/app/test_compare_view.py; the CLI:
tests/core/test_registry.py.)"""

from __future__ import annotations


def test_a_registered_sampler_is_offered_and_sampled_by_the_reverse_view(dummy_sampler, make_window, qtbot):
    window = make_window()
    window.data_panel.source.setCurrentText("moons")
    window.data_panel.n.setValue(60)
    view = window.reverse_view
    combo = view.controls.combo
    assert combo.itemText(combo.findData("dummy")) == "Dummy"
    combo.setCurrentIndex(combo.findData("dummy"))  # chosen as a user would
    editors = view.controls.settings["dummy"].editors
    assert set(editors) == {"steps", "nudge"} and view.controls.pages.currentWidget() is view.controls.settings["dummy"]
    assert "a setting only this sampler has" in editors["nudge"].toolTip()
    editors["steps"].setValue(4)
    editors["nudge"].setValue(1.5)
    view.points.setValue(50)
    assert view.model.request.sampler == "dummy" and view.model.request.params == {"steps": 4, "nudge": 1.5}
    with qtbot.waitSignal(view.computed, timeout=60_000):
        window.tabs.setCurrentWidget(view)  # a first show computes
    assert view.model.trajectory.nfe == 4 and view.model.trajectory.frames.shape == (5, 50, 2)
    assert dummy_sampler[-1] == 1.5
