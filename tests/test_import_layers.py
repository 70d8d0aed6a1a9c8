"""The import picture is one-way: core → app → entry points. The core imports neither Qt nor the app nor an entry
point; the app imports no entry point; the views' models import no Qt; and views never import each other.

A *view* is a module of diffvis/app/views that the main window imports: each makes one of its tabs. Every other
module there (style, axes, titles, probes, scene_view, exporting, class_controls, class_table, sampling_widgets,
sweep_view …) is a part that views share. What two views share lives in a shared part, or in a model
(diffvis/app/models), never in one of them. Read from the source (ast), so a lazy import inside a function counts."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "diffvis"
ENTRY_POINTS = ("diffvis.cli", "diffvis.commands", "diffvis.arguments", "diffvis.render", "diffvis.bench",
                "diffvis.terminal", "diffvis.__main__")  # fmt: skip
QT = ("PySide6", "pyqtgraph", "shiboken6")


def imported(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def offending(folder: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        bad = sorted(m for m in imported(path) if any(m == f or m.startswith(f + ".") for f in forbidden))
        if bad:
            found[str(path.relative_to(PACKAGE))] = bad
    return found


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [("core", (*QT, "diffvis.app", *ENTRY_POINTS)), ("app", ENTRY_POINTS), ("app/models", QT)],
)
def test_imports_only_go_down(folder, forbidden):
    assert offending(folder, forbidden) == {}


def test_the_check_sees_a_forbidden_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from PySide6.QtWidgets import QWidget\n")
    assert "PySide6.QtWidgets" in imported(module)


def view_modules() -> set[str]:
    """The views: the modules of diffvis.app.views the main window imports."""
    views = PACKAGE / "app" / "views"
    return {name for name in imported(PACKAGE / "app" / "main_window.py") if name.startswith("diffvis.app.views.")
            and name.count(".") == 3 and (views / f"{name.rsplit('.', 1)[1]}.py").exists()}  # fmt: skip


def test_the_main_window_makes_its_tabs_from_ten_views():
    assert {name.rsplit(".", 1)[1] for name in view_modules()} == {
        "data_view", "training_view", "forward_view", "reverse_view", "score_view", "langevin_view",
        "transport_view", "compare_view", "coupling_view", "density_view"}  # fmt: skip


def test_no_view_imports_another_view():
    views, found = view_modules(), {}
    for view in sorted(views):
        others = sorted(imported(PACKAGE / "app" / "views" / f"{view.rsplit('.', 1)[1]}.py") & (views - {view}))
        if others:
            found[view] = others
    assert found == {}
