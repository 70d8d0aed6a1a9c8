"""Train the example runs that ship with diffvis again (``diffvis.core.examples``) and record their quality.

    python resources/runs/regenerate.py            # every example (about five minutes on two CPU cores)
    python resources/runs/regenerate.py moons-edm  # one

Each is trained by the real ``diffvis train`` with the default settings, then saved here with float16 weights,
keeping only the half-way EMA snapshot where the example asks for it; ``examples.json`` records the quality that
``example_quality`` measures of the saved file.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from diffvis.cli import main as diffvis
from diffvis.core.checkpoint import load_run, save_run
from diffvis.core.examples import EXAMPLES, MANIFEST, RUNS_DIR, example, example_quality
from diffvis.core.training import WEAK_SHARE


def regenerate(name: str) -> dict[str, float]:
    spec = example(name)
    with tempfile.TemporaryDirectory() as scratch:
        trained = Path(scratch) / name
        argv = ["train", "--data", spec.data, "--objective", spec.objective, *spec.train, "--quiet", "--out", trained]
        if diffvis([str(a) for a in argv]) != 0:
            raise SystemExit(f"training {name} failed")
        run = load_run(trained)
    half_way = run.step // WEAK_SHARE
    kept = {half_way: run.snapshots[half_way]} if spec.snapshot else {}
    save_run(replace(run, snapshots=kept), spec.path, half=True)
    quality = example_quality(load_run(spec.path))
    print(f"{name}: {quality}")
    return quality


if __name__ == "__main__":
    names = sys.argv[1:] or [e.name for e in EXAMPLES]
    manifest_path = RUNS_DIR / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"quality": {}}
    for name in names:
        manifest["quality"][name] = regenerate(name)
        manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
