"""`diffvis bench` builds the app's views and core objects directly: a tiny run of its GUI figures catches a
constructor or signature it has fallen behind on (the figures themselves are measured by `diffvis bench`)."""

import re

from diffvis import bench


def _rates(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"([\d.]+) fps", text)]


def test_scrubbing_figures_run_on_tiny_views(capsys, qapp):
    bench.bench_scrubbing(1, n=200, frames=5)
    bench.bench_compare_scrubbing(1, n=200, frames=5)
    out = capsys.readouterr().out
    assert out.count("scrubbing") == 3, out
    rates = _rates(out)
    assert len(rates) == 6 and all(r > 0 for r in rates), out


def test_transport_scrubbing_figure_runs_on_a_tiny_grid(capsys, qapp):
    bench.bench_transport_scrubbing(1, n=200, lines=4, frames=5)
    out = capsys.readouterr().out
    assert out.count("scrubbing the transport of a 4×4 grid and 200 points") == 1, out
    rates = _rates(out)
    assert len(rates) == 2 and all(r > 0 for r in rates), out
