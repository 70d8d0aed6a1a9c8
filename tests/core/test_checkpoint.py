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
from diffvis.core.training import TrainConfig
from diffvis.errors import CheckpointError

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
        assert back.data == DATA_INFO
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
    _assert_same_weights(load_run(directory).ema, run.ema)
    monkeypatch.undo()
    save_run(run, directory)  # the next good save clears the orphaned weights file
    assert _weights_files(directory) == [_meta(directory)["weights"]]


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
    (_remove_weights, "weights file cannot be read"),
    (_truncate_weights, "checksum"),
    (_flip_a_byte, "checksum"),
    (_other_shape_model, "wrong shape"),
    (_fewer_tensors, "missing"),
    (_garbage_weights, "safetensors"),
    (_weights_outside_the_run, "cannot be read"),
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
