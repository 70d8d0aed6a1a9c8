"""Guards against a Qt binding that corrupts reference counts (PySide6 6.12.0: every Signal.emit() dropped a
reference to True, and the process died with "Fatal Python error: bool_dealloc" after some thousand emits)."""

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    changed = Signal(object)


def test_emitting_signals_keeps_reference_counts_intact():
    emitter = _Emitter()
    emitter.changed.connect(lambda value: None)
    before = sys.getrefcount(True), sys.getrefcount(False), sys.getrefcount(None)
    for _ in range(200):
        emitter.changed.emit(None)
    assert (sys.getrefcount(True), sys.getrefcount(False), sys.getrefcount(None)) == before
