"""The desktop app (PySide6 + pyqtgraph): presents and orchestrates; every number comes from diffvis.core."""
