import gc
import os
import sys

import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path, monkeypatch):
    """Settings and runs go to per-test folders, never the user's own (platformdirs reads XDG_* on Linux)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Two CPU cores shared with the GUI thread (and other jobs): torch's spinning OpenMP pool can slow tiny
    tensors tenfold, so tests that train and sample tiny models in the app use one intra-op thread (as the app's
    training worker does)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", autouse=True)
def _freeze_long_lived_objects():
    """Before each module, what is alive (torch, Qt, pyqtgraph and the modules imported so far; the fixtures of
    earlier modules are torn down by then) is collected once and frozen, as the app does at start-up
    (``freeze_startup_objects``): each later collection walks only what was made since, a few milliseconds
    instead of 0.1 to 0.4 s over the 200,000 objects torch alone brings. Objects made during the module's tests
    and fixtures stay collectable, and are collected (or frozen, when still alive) at the next module's start."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _collect_qt_garbage():
    """Every test's widgets are torn down the same way: pytest-qt closes and deletes the ones registered with
    ``qtbot.addWidget``, then this collects their Python wrappers at once. During the test, automatic collection
    is off, as in the app (``collect_garbage_in_the_gui_thread``): left to strike anywhere, a test's garbage was
    collected in the middle of another's repaint, and pyqtgraph's GraphicsView crashed (random test order)."""
    gc.disable()
    try:
        yield
    finally:
        _delete_closed_widgets()
        gc.collect()
        gc.enable()


def _delete_closed_widgets() -> None:
    """Delete now what the test's teardown scheduled with ``deleteLater`` (pytest-qt does so for every widget of
    ``qtbot.addWidget``), rather than in the next event loop to run, which is the next test's: 100 closed main
    windows, deleted there, made the next test 20 times slower (40 to 60 s more)."""
    qt_core = sys.modules.get("PySide6.QtCore")
    if qt_core is not None and qt_core.QCoreApplication.instance() is not None:
        qt_core.QCoreApplication.sendPostedEvents(None, qt_core.QEvent.Type.DeferredDelete)


@pytest.fixture
def dummy_sampler():
    """A sampler registered in the registry only (DDIM under another name, with a 'nudge' setting ν of its own),
    for the tests that find it in every front end with no other file changed; yields the nudge of every call."""
    from diffvis.core import registry
    from diffvis.core.samplers import sample_ddim

    calls = []

    def sample_dummy(model, x_T, schedule, *, steps=7, nudge=0.0, **common):
        calls.append(nudge)
        return sample_ddim(model, x_T, schedule, steps=steps, **common)

    nudge = registry.Param("nudge", float, 0.0, "a setting only this sampler has", "ν", minimum=0.0, maximum=2.0)
    registry.register_sampler(registry.SamplerInfo("dummy", "Dummy", "this test", sample_dummy, ("ddpm",),
                                                   (registry.STEPS, nudge), 1.0, "x ← x", "steps"))  # fmt: skip
    yield calls
    del registry.SAMPLERS["dummy"]
