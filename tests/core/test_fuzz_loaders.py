"""Fuzzing the loaders (issue 14): generated point files and run.json documents either load as a valid object or
raise ``DiffvisError`` (the one-line error family), never anything else."""

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from diffvis.core.checkpoint import load_run, save_run
from diffvis.core.datasets import MAX_COORDINATE, make_dataset
from diffvis.core.models import ModelConfig
from diffvis.core.pipeline import train_run
from diffvis.core.pointfiles import load_points, save_points
from diffvis.core.run import Run
from diffvis.core.sources import run_points
from diffvis.core.training import TrainConfig
from diffvis.errors import DiffvisError

FUZZ = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)  # no .hypothesis/ in the repo


def _assert_valid_points(points) -> None:
    assert points.points.dtype == np.float64 and points.points.ndim == 2 and points.points.shape[1] == 2
    assert len(points) >= 1 and (np.abs(points.points) <= MAX_COORDINATE).all()
    if points.labels is not None:
        assert points.labels.dtype == np.int64 and points.labels.shape == (len(points),)
        assert points.labels.min() >= 0 and points.labels.max() <= 1000


def _loads_or_refuses(load, *args):
    """``load(*args)``, or None when it refuses with a DiffvisError; any other exception fails the test."""
    try:
        return load(*args)
    except DiffvisError as e:
        assert str(e) and "\n" not in str(e)
        return None


# --- point files ----------------------------------------------------------------------------------------------------

_NUMBER = st.one_of(
    st.floats().map(repr),
    st.integers(-(10**40), 10**40).map(str),
    st.sampled_from(["nan", "-inf", "1e308", "-1.7e309", "1e12", "1e13", "0x10", "1_000", "١٢", "+.5", "5e-324"]),
)
_FIELD = st.one_of(_NUMBER, _NUMBER, st.text(max_size=6))
_SEPARATOR = st.sampled_from([",", ";", "\t", " ", ", ", ",,"])
_LINE = st.builds(lambda fields, sep, tail: sep.join(fields) + tail, st.lists(_FIELD, max_size=4), _SEPARATOR,
                  st.sampled_from(["", " # note", "#", "\r"]))  # fmt: skip
_TEXT = st.one_of(
    st.lists(_LINE, max_size=12).map("\n".join).map(str.encode),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=300),
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(raw=_TEXT, suffix=st.sampled_from([".csv", ".txt"]))
def test_generated_text_loads_as_valid_points_or_is_refused(folder, raw, suffix):
    path = folder / f"points{suffix}"
    path.write_bytes(raw)
    points = _loads_or_refuses(load_points, path)
    if points is not None:
        _assert_valid_points(points)


_ARRAYS = hnp.arrays(
    dtype=st.one_of(
        hnp.integer_dtypes(),
        hnp.unsigned_integer_dtypes(),
        hnp.floating_dtypes(),
        hnp.boolean_dtypes(),
        hnp.complex_number_dtypes(),
        hnp.byte_string_dtypes(max_len=3),
    ),  # fmt: skip
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
)


@FUZZ
@given(array=_ARRAYS, cut=st.one_of(st.none(), st.integers(0, 400)), flip=st.one_of(st.none(), st.integers(0, 400)))
def test_generated_npy_loads_as_valid_points_or_is_refused(folder, array, cut, flip):
    """Any array .npy, truncated at ``cut`` or with the byte at ``flip`` changed (often in the header)."""
    path = folder / "points.npy"
    np.save(path, array, allow_pickle=False)
    raw = bytearray(path.read_bytes())
    if flip is not None and flip < len(raw):
        raw[flip] ^= 0x5A
    path.write_bytes(bytes(raw[:cut]))
    points = _loads_or_refuses(load_points, path)
    if points is not None:
        _assert_valid_points(points)


# --- run.json -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(folder):
    """A tiny run trained on a labelled point file (so it keeps a data copy), and its run.json."""
    data = make_dataset("moons", 200, seed=0)
    save_points(data, folder / "moons.csv")
    cfg = TrainConfig(steps=5, batch=32, timesteps=20, device="cpu")
    run = train_run(data, ModelConfig(width=8, depth=1, embed_dim=8), cfg, {"source": str(folder / "moons.csv")})
    save_run(run, folder / "run")
    return folder / "run", json.loads((folder / "run" / "run.json").read_text())


def _paths(value, prefix=()):
    """Every key path into a JSON document."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list) and value:
        yield (*prefix, 0)


_JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers(-(2**70), 2**70) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _mutated(meta: dict, edits) -> object:
    """``meta`` with each (path, value) edit applied: value None-marker ``...`` deletes the entry."""
    meta = json.loads(json.dumps(meta))
    for path, value in edits:
        target = meta
        for key in path[:-1]:
            target = target[key]
        if value is ...:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return meta


@st.composite
def _documents(draw, meta):
    if draw(st.integers(0, 9)) == 0:
        return draw(_JSON)  # a whole document of anything
    paths = sorted(set(_paths(meta)), key=str)
    edits = []
    for path in draw(st.lists(st.sampled_from(paths), min_size=1, max_size=3, unique=True)):
        if any(path[: len(p)] == p for p, _ in edits):
            continue  # inside an entry already replaced
        edits.append((path, draw(st.one_of(st.just(...), _JSON))))
    return _mutated(meta, edits)


@FUZZ
@given(data=st.data())
def test_generated_run_json_loads_as_a_valid_run_or_is_refused(run_dir, data):
    directory, meta = run_dir
    original = (directory / "run.json").read_bytes()
    try:
        (directory / "run.json").write_text(json.dumps(data.draw(_documents(meta))))
        run = _loads_or_refuses(load_run, directory)
        if run is None:
            return
        assert isinstance(run, Run)
        assert all(math.isfinite(v) for v in (*run.normaliser.mean, run.normaliser.scale))
        assert all(torch.isfinite(p).all() and p.dtype == torch.float32 for p in run.ema.parameters())
        points = _loads_or_refuses(run_points, run.data_info)
        if points is not None:
            _assert_valid_points(points[0])
    finally:
        (directory / "run.json").write_bytes(original)
