"""The example runs that ship in resources/runs: each is there, small, of the current format, loads, and samples to
the quality recorded when it was made (``resources/runs/regenerate.py``)."""

import json

import pytest

from diffvis.core.checkpoint import VERSION, load_run
from diffvis.core.examples import EXAMPLES, RUNS_DIR, example, example_quality, recorded_quality, shipped
from diffvis.errors import ConfigError


def test_every_example_ships_small_and_in_the_current_format():
    assert [e.name for e in shipped()] == [e.name for e in EXAMPLES]
    for e in EXAMPLES:
        meta = json.loads((e.path / "run.json").read_text())
        assert meta["version"] == VERSION and meta["model"]["objective"] == e.objective
        assert meta["data"]["source"] == e.data
        weights = e.path / meta["weights"]
        assert weights.stat().st_size < 60_000 * (2 if e.snapshot else 1), e.name  # float16: ~50 KB a network
        assert sorted(p.name for p in e.path.iterdir()) == ["run.json", meta["weights"]]
        assert len(meta["snapshots"]) == (1 if e.snapshot else 0)


@pytest.mark.parametrize("name", [e.name for e in EXAMPLES])
def test_an_example_samples_to_its_recorded_quality(name):
    run = load_run(example(name).path)
    assert run.step == 10_000
    measured, recorded = example_quality(run), recorded_quality()[name]
    assert set(measured) == set(recorded)
    for metric, value in measured.items():
        # the same seeds and code: equal here; another CPU's float rounding may move it by a hair
        assert value <= recorded[metric] * 1.05 + 0.02, (metric, value, recorded[metric])
    assert recorded["nn_precision"] < 1.5 and recorded["nn_recall"] < 1.5  # every example is a good model


def test_an_unknown_example_names_the_examples():
    with pytest.raises(ConfigError, match="moons-ddpm"):
        example("nosuch")


def test_the_manifest_lists_every_example():
    assert set(recorded_quality()) == {e.name for e in EXAMPLES}
    assert (RUNS_DIR / "regenerate.py").is_file()
