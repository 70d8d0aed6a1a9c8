"""Views never import each other. A *view* is a module of diffvis/app/views that the main window imports: each
makes one of its tabs (data, training, forward, reverse, score, Langevin, compare). Every other module there (style,
axes, titles, probes, scene_view, exporting, class_controls, class_table, sampling_widgets, sweep_view …) is a part
that views share. What two views share lives in a shared part, or in a model (diffvis/app/models), never in one of
them. Read from the source (ast), so an import inside a function counts."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).parents[2] / "diffvis" / "app"
VIEWS_PACKAGE = "diffvis.app.views"


def imported_modules(path: Path) -> set[str]:
    """The modules a file imports from (``from a.b import c`` counts a.b and a.b.c), at its top or in a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return names


def view_modules() -> set[str]:
    """The views: the modules of diffvis.app.views the main window imports."""
    main_window = imported_modules(APP / "main_window.py")
    return {name for name in main_window if name.startswith(VIEWS_PACKAGE + ".") and name.count(".") == 3
            and (APP / "views" / f"{name.rsplit('.', 1)[1]}.py").exists()}  # fmt: skip


def test_the_main_window_makes_its_tabs_from_seven_views():
    assert {name.rsplit(".", 1)[1] for name in view_modules()} == {
        "data_view", "training_view", "forward_view", "reverse_view", "score_view", "langevin_view",
        "compare_view"}  # fmt: skip


def test_no_view_imports_another_view():
    views = view_modules()
    found = {}
    for view in sorted(views):
        path = APP / "views" / f"{view.rsplit('.', 1)[1]}.py"
        others = sorted(imported_modules(path) & (views - {view}))
        if others:
            found[view] = others
    assert found == {}


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from diffvis.app.views.reverse_view import something\n")
    assert "diffvis.app.views.reverse_view" in imported_modules(module)
