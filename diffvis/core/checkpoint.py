"""Run directories: weights as safetensors plus ``run.json`` with everything else. Nothing is unpickled.

Layout: ``run.json`` names its weights file ``weights-<sha256[:16]>.safetensors`` and records the full hash.
Saving writes the weights file first and ``run.json`` last, each atomically, then removes stale weights files,
so a crash at any moment leaves either the old run or the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from diffvis.core.atomic import atomic_write_bytes
from diffvis.core.classes import Classes
from diffvis.core.datasets import Normaliser
from diffvis.core.models import ModelConfig, build_model
from diffvis.core.run import Run
from diffvis.core.schedules import Schedule, SigmaLadder
from diffvis.core.training import TrainConfig
from diffvis.errors import CheckpointError, DiffvisError

FORMAT, VERSION = "diffvis-run", 2  # version 2 added class-conditional runs ("classes"); version 1 still loads
READABLE_VERSIONS = (1, 2)
RUN_FILE = "run.json"
MAX_JSON_BYTES = 64 * 2**20


def save_run(run: Run, directory: str | Path) -> Path:
    """Save ``run`` into ``directory`` (created if needed); returns the path of run.json."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        weights = save_safetensors(
            {k: v.detach().cpu().contiguous() for k, v in run.ema.state_dict().items()}, metadata={"format": FORMAT}
        )
        digest = hashlib.sha256(weights).hexdigest()
        weights_name = f"weights-{digest[:16]}.safetensors"
        atomic_write_bytes(directory / weights_name, weights)
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
            "data": run.data,
            "state": {"step": run.step, "loss_history": run.loss_history},
            "quality": run.quality,
            "classes": None if run.classes is None else run.classes.to_dict(),
        }
        atomic_write_bytes(directory / RUN_FILE, json.dumps(_finite(meta), indent=1).encode())
        for stale in directory.glob("weights-*.safetensors"):
            if stale.name != weights_name:
                stale.unlink(missing_ok=True)
    except OSError as e:
        raise CheckpointError(f"cannot save the run to {directory}: {e.strerror or e}") from None
    return directory / RUN_FILE


def load_run(path: str | Path) -> Run:
    """Load a run directory (or its run.json); any problem raises ``CheckpointError`` with one sentence."""
    path = Path(path)
    meta_path = path / RUN_FILE if path.is_dir() else path
    meta = _read_meta(meta_path)
    try:
        model_config = ModelConfig.from_dict(meta["model"])
        train_config = TrainConfig.from_dict(meta["train"])
        schedule = Schedule.from_dict(meta["schedule"])
        ladder = SigmaLadder.from_dict(meta["ladder"])
        normaliser = Normaliser.from_dict(meta["normaliser"])
        state = meta["state"]
        step = int(state["step"])
        history = [math.nan if v is None else float(v) for v in state["loss_history"]]
        data, quality = meta.get("data", {}), meta.get("quality", {})
        if not isinstance(data, dict) or not isinstance(quality, dict):
            raise ValueError("'data' and 'quality' must be objects")
        weights_name = str(meta["weights"])
        digest = str(meta["weights_sha256"])
        classes = None if meta.get("classes") is None else Classes.from_dict(meta["classes"])
        if model_config.num_classes != (len(classes) if classes else 0):
            raise ValueError("the model's number of classes does not match the classes listed")
    except (KeyError, TypeError, ValueError, DiffvisError) as e:
        raise CheckpointError(f"{meta_path}: the run description is incomplete or invalid ({e})") from None
    model = build_model(model_config)
    model.load_state_dict(_read_weights(meta_path.parent / Path(weights_name).name, digest, model.state_dict()))
    model.eval().requires_grad_(False)
    return Run(model_config, train_config, normaliser, schedule, ladder, model, data, step, history, quality, classes)


def _read_meta(meta_path: Path) -> dict:
    try:
        raw = meta_path.read_bytes() if meta_path.stat().st_size <= MAX_JSON_BYTES else b""
    except OSError as e:
        raise CheckpointError(f"{meta_path}: cannot be read ({e.strerror or e})") from None
    try:
        meta = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{meta_path}: not a diffvis run (the file is not valid JSON)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path}: not a diffvis run (no '{FORMAT}' format tag)")
    if meta.get("version") not in READABLE_VERSIONS:
        raise CheckpointError(f"{meta_path}: run format version {meta.get('version')} is not supported")
    return meta


def _read_weights(path: Path, digest: str, expected: dict) -> dict:
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: the weights file cannot be read ({e.strerror or e})") from None
    if hashlib.sha256(blob).hexdigest() != digest:
        raise CheckpointError(f"{path.name}: the weights file is corrupt or truncated (checksum mismatch)")
    try:
        tensors = load_safetensors(blob)
    except (SafetensorError, ValueError) as e:
        raise CheckpointError(f"{path.name}: not a valid safetensors file ({e})") from None
    for name, ref in expected.items():
        if name not in tensors or tensors[name].shape != ref.shape:
            raise CheckpointError(f"{path.name}: tensor {name!r} is missing or has the wrong shape for this model")
    return {name: tensors[name] for name in expected}


def _finite(value):
    """JSON has no NaN: replace non-finite floats (e.g. an empty loss bucket) by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
