"""The views' state without Qt: plain models that emit on change, which the widgets draw and write back through
(as napari's ``Dims`` is drawn by ``QtDims``). ``render`` and ``bench`` drive these, never widgets."""
