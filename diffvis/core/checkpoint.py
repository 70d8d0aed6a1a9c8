"""Run directories: weights as safetensors plus ``run.json`` with everything else. Nothing is unpickled.

Layout: ``run.json`` names its weights file ``weights-<sha256[:16]>.safetensors`` and records the full hash; a
run trained on a point file keeps a copy of it, ``data-<sha256[:16]>.<suffix>``, so that a run folder holds
everything it needs and nothing outside it is ever read. Saving writes those files first and ``run.json`` last,
each atomically, then removes the files the previous run recorded as its own, so a crash at any moment leaves
either the old run or the new one, never a mix. Loading reads regular files inside the folder only (never a
symlink), each within a cap, and refuses weights that are not finite float32 (or float16: the example runs)
tensors of the model's shapes. The weights file also holds the EMA snapshots ``run.json`` lists
(``snapshot.<step>.<name>``, the same shapes), which an older diffvis ignores.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from contextlib import suppress
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from diffvis.core.atomic import atomic_write_bytes, remove_temporaries
from diffvis.core.classes import Classes
from diffvis.core.datasets import DATASETS, MAX_POINTS, Normaliser, canonical_name, check_draw
from diffvis.core.flow import SOURCES
from diffvis.core.models import ModelConfig, build_model
from diffvis.core.pointfiles import point_file_bytes
from diffvis.core.run import Run
from diffvis.core.safe_files import read_regular
from diffvis.core.schedules import Schedule, SigmaLadder
from diffvis.core.training import TrainConfig
from diffvis.core.validation import is_whole
from diffvis.errors import CheckpointError, DiffvisError

FORMAT, VERSION = "diffvis-run", 2  # version 2 added class-conditional runs ("classes"); version 1 still loads
READABLE_VERSIONS = (1, 2)
RUN_FILE = "run.json"
MAX_JSON_BYTES = 64 * 10**6
HEADER_BYTES = 10**6  # a safetensors file's header: tensor names, shapes and offsets, and our metadata
WEIGHTS_NAME = r"weights-[0-9a-f]{16}\.safetensors"
DATA_NAME = r"data-[0-9a-f]{16}\.(?:csv|txt|npy)"  # the copy of a point file a run was trained on
SOURCE_TENSOR = "flow.source_points"  # a flow's source points from a point file, beside the weights
SNAPSHOT_PREFIX = "snapshot."  # the EMA weights at an earlier step: 'snapshot.<step>.<name>', beside the weights
MAX_SNAPSHOTS = 16


def check_run_folder(directory: str | Path) -> None:
    """Refuse, before any work, a place a run cannot be saved to: a path that is not a folder, a folder that
    cannot be written, or one holding a run.json that is not a diffvis run (it is not ours to replace)."""
    _run_already_there(Path(directory))


def save_run(run: Run, directory: str | Path, *, half: bool = False) -> Path:
    """Save ``run`` into ``directory`` (created if needed); returns the path of run.json. With ``half`` the
    weights are stored as float16 (half the bytes; the shipped example runs), read back as float32.

    All or nothing: a failure removes the files (and the folder) this save created and leaves the run that was
    there. After run.json is written, the files the previous run recorded as its own (its weights and data copy)
    go, and nothing else."""
    directory = Path(directory)
    previous = _own_files(_run_already_there(directory))
    tensors = {k: v.detach().cpu().contiguous() for k, v in run.ema.state_dict().items()}
    if run.source_points is not None:
        tensors[SOURCE_TENSOR] = torch.as_tensor(run.source_points, dtype=torch.float32).contiguous()
    for step, state in run.snapshots.items():
        tensors.update({f"{SNAPSHOT_PREFIX}{step}.{k}": v.detach().cpu().contiguous() for k, v in state.items()})
    if half:
        tensors = {k: v.half() for k, v in tensors.items()}
    weights = save_safetensors(tensors, metadata={"format": FORMAT})
    digest = hashlib.sha256(weights).hexdigest()
    weights_name = f"weights-{digest[:16]}.safetensors"
    files = {weights_name: weights}
    data = _stored_data(run.data_info, files)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "weights": weights_name,
        "weights_sha256": digest,
        "model": run.model_config.to_dict(),
        "train": run.train_config.to_dict(),
        "schedule": run.schedule.to_dict(),
        "ladder": run.ladder.to_dict(),
        "normaliser": run.normaliser.to_dict(),
        "data": data,
        "state": {"step": run.step, "loss_history": run.loss_history},
        "quality": run.quality,
        "classes": None if run.classes is None else run.classes.to_dict(),
        "source_points": None if run.source_points is None else len(run.source_points),
        "snapshots": sorted(run.snapshots),
    }
    text = json.dumps(_finite(meta), indent=1).encode()
    new_folder, created = not directory.exists(), []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        remove_temporaries(directory, f"{WEIGHTS_NAME}|{DATA_NAME}")
        for name, blob in files.items():
            if not (directory / name).exists():
                created.append(directory / name)
            atomic_write_bytes(directory / name, blob)
        atomic_write_bytes(directory / RUN_FILE, text)
    except OSError as e:
        with suppress(OSError):
            for path in created:
                path.unlink(missing_ok=True)
            if new_folder:
                directory.rmdir()
        raise CheckpointError(f"cannot save the run to {directory}: {e.strerror or e}") from None
    for name in previous - files.keys():
        with suppress(OSError):
            (directory / name).unlink()
    return directory / RUN_FILE


def _run_already_there(directory: Path) -> dict | None:
    """The description of the run saved in ``directory`` (None if there is none); refuses a place a run cannot
    be saved to (see ``check_run_folder``)."""
    place = directory
    while not place.exists() and place != place.parent:
        place = place.parent
    if not place.is_dir():
        raise CheckpointError(f"cannot save the run to {directory}: {place} is not a folder")
    if not os.access(place, os.W_OK | os.X_OK):
        raise CheckpointError(f"cannot save the run to {directory}: {place} is read-only")
    if not (directory / RUN_FILE).exists() and not (directory / RUN_FILE).is_symlink():
        return None
    try:
        return _read_meta(directory / RUN_FILE)
    except CheckpointError as e:
        raise CheckpointError(f"cannot save the run to {directory}, which holds another file: {e}") from None


def _own_files(meta: dict | None) -> set[str]:
    """The files a run description names as its own: its weights and its data copy, when named as diffvis
    names them."""
    if meta is None:
        return set()
    data = meta.get("data")
    names = [meta.get("weights"), data.get("copy") if isinstance(data, dict) else None]
    own = re.compile(f"{WEIGHTS_NAME}|{DATA_NAME}")
    return {name for name in names if isinstance(name, str) and own.fullmatch(name)}


def _stored_data(info: dict, files: dict[str, bytes]) -> dict:
    """What run.json records of the training data. A point file (an absolute path) is copied into the run,
    named by its hash (added to ``files``), so that a run is read only from inside its folder."""
    source = info.get("source")
    if not (isinstance(source, str) and Path(source).is_absolute()):
        return info
    blob = point_file_bytes(source, follow_symlinks=False)
    name = f"data-{hashlib.sha256(blob).hexdigest()[:16]}{Path(source).suffix.lower()}"
    files[name] = blob
    return {**info, "copy": name}


def _loaded_data(data, folder: Path) -> dict:
    """A recorded data description as ``run_points`` reads it: a built-in set's draw (checked), the run's own copy
    of its point file (as a path inside ``folder``), or, for a file a run recorded outside its folder (runs saved
    before copies were kept) or drawn points, no source: such data is not read."""
    if not isinstance(data, dict):
        raise ValueError("'data' must be an object")
    source = canonical_name(data.get("source", ""))
    data = {**data, "source": source}
    if isinstance(source, str) and source in DATASETS:
        check_draw(source, data.get("n"), data.get("noise"), data.get("seed", 0))
        return data
    copy = data.get("copy")
    if copy is not None:
        if not (isinstance(copy, str) and re.fullmatch(DATA_NAME, copy)):
            raise ValueError(f"the data copy must be named like data-<hash>.csv, got {copy!r}")
        return {"source": str(folder / copy)}
    return {"source": "", "file": str(source)}


def load_run(path: str | Path) -> Run:
    """Load a run directory (or its run.json); any problem raises ``CheckpointError`` with one sentence.

    Only regular files inside the run's folder are read (a symlink there is refused), within their caps, and
    the weights must be finite float32 (or float16, widened) tensors of the model's shapes."""
    path = Path(path)
    meta_path = path / RUN_FILE if path.is_dir() else path
    folder = meta_path.parent.resolve()
    meta_path = folder / meta_path.name
    meta = _read_meta(meta_path)
    try:
        model_config = ModelConfig.from_dict(meta["model"])
        train_config = TrainConfig.from_dict(meta["train"])
        schedule = Schedule.from_dict(meta["schedule"])
        ladder = SigmaLadder.from_dict(meta["ladder"])
        if not np.isfinite(ladder.sigmas).all():
            raise ValueError("the noise levels must be finite")
        normaliser = Normaliser.from_dict(meta["normaliser"])
        state = meta["state"]
        step = state["step"]
        if not is_whole(step) or step < 0:
            raise ValueError(f"the step must be a whole number ≥ 0, got {step!r}")
        history = [math.nan if v is None else float(v) for v in state["loss_history"]]
        data, quality = _loaded_data(meta.get("data", {}), folder), meta.get("quality", {})
        if not isinstance(quality, dict):
            raise ValueError("'quality' must be an object")
        weights_name, digest = meta["weights"], meta["weights_sha256"]
        if not (isinstance(weights_name, str) and re.fullmatch(WEIGHTS_NAME, weights_name)):
            raise ValueError(f"'weights' must name the run's weights-<hash>.safetensors file, got {weights_name!r}")
        if not (isinstance(digest, str) and re.fullmatch("[0-9a-f]{64}", digest)):
            raise ValueError("'weights_sha256' must be a SHA-256 in hex")
        classes = None if meta.get("classes") is None else Classes.from_dict(meta["classes"])
        if model_config.num_classes != (len(classes) if classes else 0):
            raise ValueError("the model's number of classes does not match the classes listed")
        sources = _source_count(meta.get("source_points"), train_config.source)
        snapshots = _snapshot_steps(meta.get("snapshots", []), step)
    except (KeyError, TypeError, ValueError, OverflowError, DiffvisError) as e:
        raise CheckpointError(f"{meta_path}: the run description is incomplete or invalid ({e})") from None
    model = build_model(model_config)
    expected = model.state_dict()
    if sources:
        expected[SOURCE_TENSOR] = torch.zeros(sources, 2)
    for snapshot in snapshots:
        expected.update({f"{SNAPSHOT_PREFIX}{snapshot}.{k}": v for k, v in model.state_dict().items()})
    tensors = _read_weights(folder / weights_name, digest, expected)
    source = tensors.pop(SOURCE_TENSOR).double().numpy() if sources else None
    kept = {snapshot: {k.removeprefix(f"{SNAPSHOT_PREFIX}{snapshot}."): tensors.pop(k) for k in list(tensors)
                       if k.startswith(f"{SNAPSHOT_PREFIX}{snapshot}.")} for snapshot in snapshots}  # fmt: skip
    model.load_state_dict(tensors)
    model.eval().requires_grad_(False)
    return Run(model_config, train_config, normaliser, schedule, ladder, model, data, step, history, quality, classes,
               source, kept)  # fmt: skip


def _source_count(count, source: str) -> int:
    """How many source points the weights file holds: a flow from a point file keeps them all (2 or more), any
    other run none."""
    if source in SOURCES:
        if count is not None:
            raise ValueError("only a flow from a point file keeps source points")
        return 0
    if not (is_whole(count) and 2 <= count <= MAX_POINTS):
        raise ValueError(f"a flow from a point file keeps its 2 to {MAX_POINTS:,} source points, got {count!r}")
    return int(count)


def _snapshot_steps(steps, step: int) -> list[int]:
    """The steps of the EMA snapshots a run keeps: at most ``MAX_SNAPSHOTS`` distinct whole numbers from 1 to the
    run's step."""
    if not (isinstance(steps, list) and len(steps) <= MAX_SNAPSHOTS and len(set(steps)) == len(steps)
            and all(is_whole(s) and 1 <= s <= step for s in steps)):  # fmt: skip
        raise ValueError(f"'snapshots' must list up to {MAX_SNAPSHOTS} distinct steps from 1 to {step}")
    return steps


def _read_meta(meta_path: Path) -> dict:
    raw = read_regular(meta_path, MAX_JSON_BYTES, error=CheckpointError, follow_symlinks=False)
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError):  # ValueError: bad JSON or UTF-8, or an integer of over 4,300 digits
        raise CheckpointError(f"{meta_path}: not a diffvis run (the file is not valid JSON)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path}: not a diffvis run (no '{FORMAT}' format tag)")
    if meta.get("version") not in READABLE_VERSIONS:
        raise CheckpointError(f"{meta_path}: run format version {meta.get('version')} is not supported")
    return meta


def _read_weights(path: Path, digest: str, expected: dict) -> dict:
    """The tensors of the weights file, checked against its hash and the model's state (names, shapes, dtype),
    and finite; the file is read up to the size such tensors take."""
    cap = sum(t.numel() * t.element_size() for t in expected.values()) + HEADER_BYTES
    blob = read_regular(path, cap, error=CheckpointError, follow_symlinks=False)
    if hashlib.sha256(blob).hexdigest() != digest:
        raise CheckpointError(f"{path.name}: the weights file is corrupt or truncated (checksum mismatch)")
    try:
        tensors = load_safetensors(blob)
    except (SafetensorError, ValueError) as e:
        raise CheckpointError(f"{path.name}: not a valid safetensors file ({e})") from None
    for name, ref in expected.items():
        tensor = tensors.get(name)
        if tensor is None or tensor.shape != ref.shape:
            raise CheckpointError(f"{path.name}: tensor {name!r} is missing or has the wrong shape for this model")
        if tensor.dtype not in (ref.dtype, torch.float16):
            raise CheckpointError(f"{path.name}: tensor {name!r} is stored as {_dtype(tensor)}, not {_dtype(ref)}")
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path.name}: tensor {name!r} holds NaN or infinite values")
    return {name: tensors[name].to(expected[name].dtype) for name in expected}


def _dtype(tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def _finite(value):
    """JSON has no NaN: replace non-finite floats (e.g. an empty loss bucket) by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
