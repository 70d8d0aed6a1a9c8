"""Run directories: exact round trips, atomic saves, and every corrupt run refused with one-line CheckpointError."""

import copy
import dataclasses
import errno
import hashlib
import json
import math
import os
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save as save_safetensors

from diffvis.core import checkpoint
from diffvis.core.checkpoint import load_run, save_run
from diffvis.core.datasets import make_dataset
from diffvis.core.models import ModelConfig, build_model
from diffvis.core.pipeline import train_run
from diffvis.core.run import sample_run
from diffvis.core.sources import run_points
from diffvis.core.training import TrainConfig
from diffvis.errors import CheckpointError, DataFileError

DATA_INFO = {"source": "moons", "n": 500, "noise": 0.05, "seed": 0}


@pytest.fixture(scope="module")
def run():
    points = make_dataset("moons", 500, seed=0).points
    cfg = TrainConfig(steps=20, batch=64, report_every=10, device="cpu")
    return train_run(points, ModelConfig(width=16, depth=1), cfg, dict(DATA_INFO))


@pytest.fixture
def saved(tmp_path, run):
    """A freshly saved copy of the run: its directory."""
    save_run(run, tmp_path / "run")
    return tmp_path / "run"


def _perturbed(run):
    """A copy of the run with different EMA weights (so a save of it has a different weights file)."""
    other = copy.deepcopy(run)
    with torch.no_grad():
        other.ema.out.bias.add_(1.0)
    return other


def _weights_files(directory):
    return sorted(p.name for p in directory.glob("weights-*.safetensors"))


def _meta(directory):
    return json.loads((directory / "run.json").read_text())


def _write_meta(directory, meta):
    (directory / "run.json").write_text(json.dumps(meta))


def _weights_path(directory):
    return directory / _meta(directory)["weights"]


def _assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and len(sa) > 0
    for name in sa:
        assert sa[name].shape == sb[name].shape and sa[name].dtype == sb[name].dtype, name
        assert torch.equal(sa[name], sb[name]), name


# --- round trip -----------------------------------------------------------------------------------------------------


def test_round_trip_restores_everything(tmp_path, run):
    assert run.step == 20 and len(run.loss_history) == 2  # a report every 10 steps
    meta_path = save_run(run, tmp_path / "nested" / "run")
    assert meta_path == tmp_path / "nested" / "run" / "run.json"
    for source in (meta_path.parent, meta_path, str(meta_path.parent)):
        back = load_run(source)
        _assert_same_weights(back.ema, run.ema)
        assert back.model_config == run.model_config == ModelConfig(width=16, depth=1)
        assert back.train_config == run.train_config
        assert (back.schedule.kind, back.schedule.T) == (run.schedule.kind, run.schedule.T) == ("linear", 1000)
        np.testing.assert_array_equal(back.schedule.betas, run.schedule.betas)
        np.testing.assert_array_equal(back.ladder.sigmas, run.ladder.sigmas)
        assert back.normaliser == run.normaliser
        assert back.data_info == DATA_INFO
        assert back.step == 20
        assert back.loss_history == run.loss_history
        assert back.objective == "ddpm"
        assert type(back.ema) is type(run.ema)
        assert not back.ema.training
        assert not any(p.requires_grad for p in back.ema.parameters())


def test_loaded_run_samples_identically(saved, run):
    back = load_run(saved)
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(7))
    a = sample_run(run, "ddim", x_T.clone(), steps=10)
    b = sample_run(back, "ddim", x_T.clone(), steps=10)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.x0_hat, b.x0_hat)
    assert a.frames.shape == (11, 64, 2)
    # a stochastic sampler with the same generator seed gives the same samples too
    a = sample_run(run, "ddpm", x_T.clone(), generator=torch.Generator().manual_seed(3)).samples
    b = sample_run(back, "ddpm", x_T.clone(), generator=torch.Generator().manual_seed(3)).samples
    np.testing.assert_array_equal(a, b)


def test_a_half_precision_run_loads_as_float32_and_samples_as_its_rounded_weights(tmp_path, run):
    """``save_run(half=True)`` (the shipped example runs) stores float16: half the bytes; it loads as float32
    equal to the weights rounded to float16, and samples as they do."""
    save_run(run, tmp_path / "full")
    save_run(run, tmp_path / "half", half=True)
    full, half = (_weights_path(tmp_path / name).stat().st_size for name in ("full", "half"))
    assert half < 0.55 * full
    back = load_run(tmp_path / "half")
    rounded = copy.deepcopy(run)
    rounded.ema.load_state_dict({k: v.half().float() for k, v in run.ema.state_dict().items()})
    _assert_same_weights(back.ema, rounded.ema)
    x_T = torch.randn(32, 2, generator=torch.Generator().manual_seed(2))
    np.testing.assert_array_equal(sample_run(back, "ddim", x_T, steps=5).samples,
                                  sample_run(rounded, "ddim", x_T, steps=5).samples)  # fmt: skip


def test_weights_file_is_named_and_checked_by_its_hash(saved):
    meta = _meta(saved)
    assert meta["format"] == "diffvis-run" and meta["version"] == 2
    blob = (saved / meta["weights"]).read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    assert meta["weights_sha256"] == digest
    assert meta["weights"] == f"weights-{digest[:16]}.safetensors"
    assert sorted(os.listdir(saved)) == sorted(["run.json", meta["weights"]])


# --- saving twice, failed saves -------------------------------------------------------------------------------------


def test_saving_twice_leaves_one_weights_file(tmp_path, run):
    directory = tmp_path / "run"
    save_run(run, directory)
    save_run(run, directory)
    assert _weights_files(directory) == [_meta(directory)["weights"]]
    other = _perturbed(run)
    save_run(other, directory)
    assert _weights_files(directory) == [_meta(directory)["weights"]]
    assert sorted(os.listdir(directory)) == sorted(["run.json", _meta(directory)["weights"]])
    _assert_same_weights(load_run(directory).ema, other.ema)


def test_failed_save_keeps_the_previous_run(tmp_path, run, monkeypatch):
    directory = tmp_path / "run"
    save_run(run, directory)
    old_meta = (directory / "run.json").read_bytes()
    real_write = checkpoint.atomic_write_bytes
    calls = []

    def write_then_fail(path, data):
        calls.append(path.name)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(checkpoint, "atomic_write_bytes", write_then_fail)
    with pytest.raises(CheckpointError) as info:
        save_run(_perturbed(run), directory)
    assert calls[1] == "run.json"
    assert "No space left on device" in str(info.value) and "\n" not in str(info.value)
    assert (directory / "run.json").read_bytes() == old_meta
    assert sorted(os.listdir(directory)) == sorted(["run.json", _meta(directory)["weights"]])  # no orphan left
    _assert_same_weights(load_run(directory).ema, run.ema)


def test_failed_save_into_a_new_folder_removes_it(tmp_path, run, monkeypatch):
    real_write = checkpoint.atomic_write_bytes

    def fail_at_run_json(path, data):
        if path.name == "run.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(checkpoint, "atomic_write_bytes", fail_at_run_json)
    with pytest.raises(CheckpointError, match="No space left"):
        save_run(run, tmp_path / "new" / "run")
    assert os.listdir(tmp_path / "new") == []  # the run folder this save created is gone, with its weights


def test_saving_again_deletes_only_what_the_previous_run_recorded(tmp_path, run):
    directory = tmp_path / "run"
    save_run(run, directory)
    old = _meta(directory)["weights"]
    mine = ["weights-mine.safetensors", "weights-0123456789abcdef.safetensors", "data-0123456789abcdef.csv", "a.txt"]
    for name in mine:
        (directory / name).write_text("the user's")
    save_run(_perturbed(run), directory)
    assert not (directory / old).exists()
    assert sorted(os.listdir(directory)) == sorted(["run.json", _meta(directory)["weights"], *mine])
    assert all((directory / name).read_text() == "the user's" for name in mine)


def test_saving_removes_its_own_stale_temporaries_only(tmp_path, run):
    """A save killed mid-write leaves '.<name>.XXXXXXXX.tmp'; the next save removes those, and no other file."""
    directory = tmp_path / "run"
    save_run(run, directory)
    stale = [".run.json.ab_cd123.tmp", ".weights-0123456789abcdef.safetensors.zz9y8x7w.tmp",
             ".data-0123456789abcdef.npy.k2j3h4g5.tmp"]  # fmt: skip
    foreign = [
        ".notes.txt.abcdefgh.tmp",
        ".run.json.tmp",
        "run.json.abcdefgh.tmp",
        ".weights-mine.safetensors.abcdefgh.tmp",
    ]
    for name in stale + foreign:
        (directory / name).write_bytes(b"partial")
    save_run(_perturbed(run), directory)
    assert sorted(os.listdir(directory)) == sorted(["run.json", _meta(directory)["weights"], *foreign])


def test_a_run_keeps_a_copy_of_its_point_file_and_reads_only_that(tmp_path, run):
    source = tmp_path / "mine.csv"
    source.write_text("x,y\n0,0\n1,0\n0,1\n1,1\n")
    save_run(dataclasses.replace(run, data_info={"source": str(source), "n": 4}), tmp_path / "run")
    copy = _meta(tmp_path / "run")["data"]["copy"]
    assert (tmp_path / "run" / copy).read_bytes() == source.read_bytes()
    source.unlink()  # the run no longer needs it
    back = load_run(tmp_path / "run")
    assert back.data_info == {"source": str((tmp_path / "run" / copy).resolve())}
    points, info = run_points(back.data_info)
    np.testing.assert_array_equal(points.points, [[0, 0], [1, 0], [0, 1], [1, 1]])
    save_run(back, tmp_path / "moved")  # a loaded run saved elsewhere takes its copy along
    assert (tmp_path / "moved" / copy).read_bytes() == (tmp_path / "run" / copy).read_bytes()


def test_a_file_recorded_outside_the_run_is_never_read(tmp_path, run):
    """Runs saved before copies were kept name a path anywhere: they still load, but that path is not read."""
    outside = tmp_path / "outside.csv"
    outside.write_text("x,y\n0,0\n1,1\n")
    save_run(run, tmp_path / "run")
    _write_meta(tmp_path / "run", {**_meta(tmp_path / "run"), "data": {"source": str(outside), "n": 2}})
    back = load_run(tmp_path / "run")
    with pytest.raises(DataFileError, match="outside.csv.*read only from inside its folder"):
        run_points(back.data_info)


def test_save_into_a_file_path_fails_cleanly(tmp_path, run):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(CheckpointError, match="cannot save the run"):
        save_run(run, blocker)
    assert blocker.read_text() == "x"


def test_nan_and_inf_are_saved_as_valid_json(tmp_path, run):
    odd = dataclasses.replace(
        run, loss_history=[1.5, math.nan, 0.25, math.inf], quality={"energy": {"value": 0.1, "ratio": math.inf}}
    )
    save_run(odd, tmp_path / "run")
    text = (tmp_path / "run" / "run.json").read_text()
    assert "NaN" not in text and "Infinity" not in text

    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    meta = json.loads(text, parse_constant=refuse)
    assert meta["state"]["loss_history"][0] == 1.5 and meta["state"]["loss_history"][2] == 0.25
    assert meta["state"]["loss_history"][1] is None
    assert meta["quality"]["energy"]["value"] == 0.1


def test_run_with_nan_in_loss_history_loads_back(tmp_path, run):
    """save_run writes NaN as null; load_run must accept what save_run wrote."""
    save_run(dataclasses.replace(run, loss_history=[1.5, math.nan, 0.25]), tmp_path / "run")
    history = load_run(tmp_path / "run").loss_history
    assert len(history) == 3 and history[0] == 1.5 and history[2] == 0.25
    assert math.isnan(history[1])


# --- corrupt runs ---------------------------------------------------------------------------------------------------


def _replace_weights(directory, blob):
    """Put ``blob`` in place of the weights file and make run.json's checksum match it."""
    meta = _meta(directory)
    (directory / meta["weights"]).write_bytes(blob)
    meta["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    _write_meta(directory, meta)


def _remove_run_json(d):
    (d / "run.json").unlink()


def _not_json(d):
    (d / "run.json").write_text('{"format": "diffvis-run", "version": 1, ')


def _empty_json(d):
    (d / "run.json").write_bytes(b"")


def _binary_json(d):
    (d / "run.json").write_bytes(b"\xff\xfe\x00\x81garbage")


def _foreign_json(d):
    (d / "run.json").write_text('{"a": 1}')


def _json_list(d):
    (d / "run.json").write_text("[1, 2, 3]")


def _wrong_version(d):
    _write_meta(d, {**_meta(d), "version": 3})


def _missing_model(d):
    meta = _meta(d)
    del meta["model"]
    _write_meta(d, meta)


def _missing_state(d):
    meta = _meta(d)
    del meta["state"]
    _write_meta(d, meta)


def _invalid_model(d):
    _write_meta(d, {**_meta(d), "model": {**_meta(d)["model"], "width": 0}})


def _model_is_a_list(d):
    _write_meta(d, {**_meta(d), "model": [1, 2]})


def _data_is_a_list(d):
    _write_meta(d, {**_meta(d), "data": [1, 2]})


def _quality_is_a_number(d):
    _write_meta(d, {**_meta(d), "quality": 5})


def _remove_weights(d):
    _weights_path(d).unlink()


def _truncate_weights(d):
    path = _weights_path(d)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])


def _flip_a_byte(d):
    path = _weights_path(d)
    blob = bytearray(path.read_bytes())
    blob[len(blob) - 10] ^= 0x01
    path.write_bytes(bytes(blob))


def _other_shape_model(d):
    other = build_model(ModelConfig(width=32, depth=1))
    _replace_weights(d, save_safetensors({k: v.contiguous() for k, v in other.state_dict().items()}))


def _fewer_tensors(d):
    state = build_model(ModelConfig(width=16, depth=1)).state_dict()
    state.pop("out.bias")
    _replace_weights(d, save_safetensors({k: v.contiguous() for k, v in state.items()}))


def _garbage_weights(d):
    _replace_weights(d, b"\x00" * 64)


def _tensors(d, change):
    """The run's own tensors, changed by ``change(state)``, stored with a matching checksum."""
    state = {k: v.clone().contiguous() for k, v in load_run(d).ema.state_dict().items()}
    change(state)
    _replace_weights(d, save_safetensors(state))


def _nan_weights(d):
    _tensors(d, lambda s: s["out.bias"].fill_(math.nan))


def _infinite_weights(d):
    _tensors(d, lambda s: s["in_x.weight"].__setitem__((0, 0), math.inf))


def _int64_weights(d):
    _tensors(d, lambda s: s.update({k: (v * 1e9).to(torch.int64) for k, v in s.items()}))


def _bool_weights(d):
    def to_bool(state):
        state["out.weight"] = state["out.weight"] > 0

    _tensors(d, to_bool)


def _edit(**changes):
    """A corruption that sets run.json's key path (e.g. model__width) to a value."""

    def edit(d):
        meta = _meta(d)
        for path, value in changes.items():
            *parents, key = path.split("__")
            target = meta
            for p in parents:
                target = target[p]
            target[key] = value
        _write_meta(d, meta)

    edit.__name__ = "_".join(f"{k}={v!r}"[:30] for k, v in changes.items())
    return edit


def _deeply_nested(d):
    (d / "run.json").write_text(
        '{"format": "diffvis-run", "version": 2, "quality": ' + "[" * 100_000 + "]" * 100_000 + "}"
    )


def _symlinked(name):
    def corrupt(d):
        target = d.parent / f"elsewhere-{name}"
        path = d / (_meta(d)["weights"] if name == "weights" else "run.json")
        target.write_bytes(path.read_bytes())
        path.unlink()
        path.symlink_to(target)

    corrupt.__name__ = f"symlinked_{name}"
    return corrupt


def _weights_outside_the_run(d):
    """run.json names a file outside the run directory (with a matching checksum): it must not be followed."""
    meta = _meta(d)
    outside = d.parent / "outside.safetensors"
    outside.write_bytes(_weights_path(d).read_bytes())
    _weights_path(d).unlink()
    _write_meta(d, {**meta, "weights": "../outside.safetensors"})


CORRUPTIONS = [
    (_remove_run_json, "cannot be read"),
    (_not_json, "not valid JSON"),
    (_empty_json, "not valid JSON"),
    (_binary_json, "not valid JSON"),
    (_foreign_json, "format tag"),
    (_json_list, "format tag"),
    (_wrong_version, "version 3"),
    (_missing_model, "'model'"),
    (_missing_state, "'state'"),
    (_invalid_model, "width"),
    (_model_is_a_list, "invalid"),
    (_data_is_a_list, "invalid"),
    (_quality_is_a_number, "invalid"),
    (_remove_weights, "cannot be read"),
    (_truncate_weights, "checksum"),
    (_flip_a_byte, "checksum"),
    (_other_shape_model, "wrong shape"),
    (_fewer_tensors, "missing"),
    (_garbage_weights, "safetensors"),
    (_weights_outside_the_run, "must name the run's weights-<hash>.safetensors"),
    (_nan_weights, "'out.bias' holds NaN or infinite"),
    (_infinite_weights, "'in_x.weight' holds NaN or infinite"),
    (_int64_weights, "stored as int64, not float32"),
    (_bool_weights, "stored as bool, not float32"),
    (_edit(normaliser__scale=1e308), "scale"),
    (_edit(normaliser__scale=0.0), "scale"),
    (_edit(normaliser__mean=[math.nan, 0.0]), "mean"),
    (_edit(normaliser__mean=["0", 0.0]), "mean"),
    (_edit(model__width=64.5), "width must be a whole number"),
    (_edit(model__depth=3.0), "depth must be a whole number"),
    (_edit(model__depth=True), "depth must be a whole number"),
    (_edit(model__embed_dim=10**9), "embed_dim"),
    (_edit(model__input_scale="25"), "input_scale must be a finite number"),
    (_edit(train__lr="NaN"), "lr must be a finite number"),
    (_edit(train__seed=-1), "seed"),
    (_edit(train__seed=2**64), "seed"),
    (_edit(data__noise="NaN"), "noise"),
    (_edit(data__n=10**12), "n must be"),
    (_edit(data__seed=-1), "seed"),
    (_edit(data={"source": "/elsewhere/p.csv", "n": 2, "copy": "../../etc/passwd.csv"}), "data copy"),
    (_edit(state__step=1e400), "step"),
    (_edit(schedule__T=1e400), "invalid"),
    (_edit(ladder__sigmas=[math.inf, 1.0]), "finite"),
    (_edit(classes={"values": [1e400, 2], "names": ["a", "b"], "fractions": [0.5, 0.5]}), "invalid"),
    (_edit(weights="weights\nname.safetensors"), "must name the run's weights"),
    (_edit(weights_sha256=5), "sha-256"),
    (_deeply_nested, "not valid JSON"),
    (_symlinked("weights"), "symbolic link"),
    (_symlinked("run.json"), "symbolic link"),
]


@pytest.mark.parametrize("corrupt, fragment", CORRUPTIONS, ids=[c[0].__name__.strip("_") for c in CORRUPTIONS])
def test_corrupt_run_is_refused_with_one_line(saved, corrupt, fragment):
    corrupt(saved)
    with pytest.raises(CheckpointError) as info:
        load_run(saved)
    message = str(info.value)
    assert message and "\n" not in message, message
    assert fragment.lower() in message.lower(), message


def test_missing_run_directory_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="cannot be read") as info:
        load_run(tmp_path / "never-saved")
    assert "\n" not in str(info.value)


class _Boom:
    """Unpickling this object would create a directory: proof that a load unpickled something."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_pickle_in_place_of_weights_is_refused_and_never_unpickled(saved, run, monkeypatch):
    marker = saved.parent / "unpickled"
    payload = {k: v.clone() for k, v in run.ema.state_dict().items()}
    payload["boom"] = _Boom(str(marker))
    _replace_weights(saved, pickle.dumps(payload))

    def forbidden(*args, **kwargs):
        raise AssertionError("load_run unpickled the weights")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    with pytest.raises(CheckpointError) as info:
        load_run(saved)
    message = str(info.value)
    assert "not a valid safetensors file" in message and "\n" not in message
    assert not marker.exists()


def test_a_run_recorded_under_an_old_data_set_name_loads_under_the_new_one(saved):
    meta = _meta(saved)
    meta["data"] = {"source": "gaussians8", "n": 300, "noise": 0.1, "seed": 3}
    meta["train"]["source"] = "gaussians8"
    _write_meta(saved, meta)
    loaded = load_run(saved)
    assert loaded.data_info["source"] == "gmm8" and loaded.train_config.source == "gmm8"
