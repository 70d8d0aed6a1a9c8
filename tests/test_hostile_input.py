"""Hostile input (issue 14): whatever a user or a tampered run throws at the command line, the answer is exit
status 2 and one line on stderr, with no traceback, no output left behind, nothing outside the run read and
nothing but diffvis's own files deleted. Named pipes and devices are never opened for reading, so nothing hangs:
those cases run in a subprocess with a time limit (and a memory limit, so that an unbounded read fails fast)."""

import contextlib
import hashlib
import json
import math
import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as save_safetensors

from diffvis.cli import main
from diffvis.core import atomic, pipeline, pointfiles
from diffvis.core.checkpoint import load_run
from diffvis.core.datasets import make_dataset
from diffvis.core.pointfiles import save_points

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = ["--steps", "20", "--timesteps", "20", "--width", "16", "--depth", "1", "--batch", "64", "--device", "cpu",
        "--quiet"]  # fmt: skip
SAMPLE = "--n 50 --sampler ddim --steps 5"


# --- what every refusal must look like ------------------------------------------------------------------------------


def assert_one_line_error(rc, err, fragment=""):
    assert rc == 2, err
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("diffvis: error: "), err
    assert fragment.lower() in lines[0].lower(), f"{fragment!r} not in {lines[0]!r}"


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder``: a regular file's content hash, a symlink's target, another entry's kind
    (special files are never opened, symlinks never followed)."""
    state = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root, name)
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode):
                state[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                state[str(path.relative_to(folder))] = os.readlink(path) if stat.S_ISLNK(mode) else stat.S_IFMT(mode)
    return state


_opened: list[str] | None = None


def _audit(event, args):
    if _opened is not None and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        _opened.append(os.path.abspath(os.fsdecode(args[0])))


sys.addaudithook(_audit)  # for the rest of this process; it records only inside ``opened()``


@contextlib.contextmanager
def opened():
    """The paths opened (for reading or writing) inside the block."""
    global _opened
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


def refused(capsys, place: Path, command: str, fragment: str = "") -> list[str]:
    """Run ``diffvis command`` in-process: exit 2, one line naming ``fragment``, and nothing under ``place``
    written, changed or deleted. Returns the paths it opened."""
    before = snapshot(place)
    with opened() as paths:
        rc = main(shlex.split(command))
    _, err = capsys.readouterr()
    assert_one_line_error(rc, err, fragment)
    assert snapshot(place) == before
    return paths


# --- a tiny run trained from a point file, and a fresh copy of it to spoil per test ---------------------------------


def background_jobs(folder):
    """moons.csv (written now) and RUN, a tiny run trained from it through `diffvis train` (so RUN keeps a copy of
    the file), in a process of its own (one torch thread, as here) started at the end of collection (the conftest's
    ``Background``)."""
    save_points(make_dataset("moons", 300, seed=0), folder / "moons.csv")
    argv = ["train", "--data", str(folder / "moons.csv"), *TINY, "--out", str(folder / "RUN")]
    return {"train": {"argv": [sys.executable, "-m", "diffvis", *argv], "env": dict(os.environ, OMP_NUM_THREADS="1")}}


@pytest.fixture(scope="module")
def lab(background) -> Path:
    """The folder of moons.csv and RUN."""
    done = background.result(__name__, "train")
    assert done.returncode == 0, done.stderr
    return background.folder(__name__)


@pytest.fixture
def place(lab, tmp_path) -> Path:
    """A fresh copy of the lab: tmp_path/moons.csv and tmp_path/RUN."""
    shutil.copy(lab / "moons.csv", tmp_path)
    shutil.copytree(lab / "RUN", tmp_path / "RUN")
    return tmp_path


def _meta(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def _edit(run: Path, **changes) -> None:
    """Set run.json's entries (``model__width=64.5`` sets meta['model']['width'])."""
    meta = _meta(run)
    for path, value in changes.items():
        *parents, key = path.split("__")
        target = meta
        for name in parents:
            target = target[name]
        target[key] = value
    (run / "run.json").write_text(json.dumps(meta))


def _own(run: Path, kind: str) -> Path:
    """The run's weights file or its data copy."""
    meta = _meta(run)
    return run / (meta["weights"] if kind == "weights" else meta["data"]["copy"])


def _tamper_weights(run: Path, change) -> None:
    """Store the run's tensors changed by ``change(state)``, with run.json's checksum updated to match (and no
    training snapshots: they are left out of the file)."""
    state = {k: v.clone().contiguous() for k, v in load_run(run).ema.state_dict().items()}
    change(state)
    blob = save_safetensors(state)
    _own(run, "weights").write_bytes(blob)
    _edit(run, weights_sha256=hashlib.sha256(blob).hexdigest(), snapshots=[])


# --- 1 and 2: special files never hang and are never read; reads are capped ----------------------------------------

DRIVER = """
import contextlib, io, json, resource, sys, traceback
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # an unbounded read fails fast
from diffvis.cli import main
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    print(json.dumps({"started": argv}), flush=True)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except BaseException:
            rc, err = -1, io.StringIO(traceback.format_exc())
    print(json.dumps({"argv": argv, "rc": rc, "err": err.getvalue()}), flush=True)
"""

SPECIAL = [  # (id, command with {d} for the folder, fragment)
    ("train-data-fifo", "train --data {d}/fifo.csv --out {d}/new", "named pipe"),
    ("train-data-link-to-fifo", "train --data {d}/link-to-fifo.csv --out {d}/new", "named pipe"),
    ("sample-exact-fifo", "sample --exact {d}/fifo.csv --out {d}/s.csv", "named pipe"),
    ("sample-ideal-fifo", "sample --ideal {d}/fifo.npy --out {d}/s.csv", "named pipe"),
    ("sample-init-fifo", "sample --exact {d}/moons.csv --init {d}/fifo.npy --out {d}/s.csv", "named pipe"),
    ("run-weights-fifo", "sample --run {d}/weights-fifo --out {d}/s.csv", "named pipe"),
    ("run-json-fifo", "sample --run {d}/json-fifo --out {d}/s.csv", "named pipe"),
    ("run-json-fifo-named", "sample --run {d}/json-fifo/run.json --out {d}/s.csv", "named pipe"),
    ("run-data-fifo", "sweep --run {d}/data-fifo --samplers ddim --steps 2 --n 20 --out {d}/s.csv", "named pipe"),
    ("run-source-fifo", "sweep --run {d}/source-fifo --samplers ddim --steps 2 --n 20 --out {d}/s.csv",
     "read only from inside its folder"),
    ("train-data-dev-zero", "train --data {d}/zero.csv --out {d}/new", "device"),
    ("sample-exact-dev-zero", "sample --exact {d}/zero.npy --out {d}/s.csv", "device"),
    ("sample-init-dev-zero", "sample --exact {d}/moons.csv --init {d}/zero.npy --out {d}/s.csv", "device"),
    ("run-weights-dev-zero", "sample --run {d}/weights-zero --out {d}/s.csv", "symbolic link"),
    ("run-json-dev-zero", "sample --run {d}/json-zero --out {d}/s.csv", "symbolic link"),
    ("run-data-dev-zero", "sweep --run {d}/data-zero --samplers ddim --steps 2 --n 20 --out {d}/s.csv",
     "symbolic link"),
    ("train-data-folder", "train --data {d}/folder.csv --out {d}/new", "folder"),
    ("guide-json-fifo", "sample --run {d}/good --guidance 2 --guide-with {d}/json-fifo --out {d}/s.csv", "named pipe"),
    ("guide-weights-fifo", "sample --run {d}/good --guidance 2 --guide-with {d}/weights-fifo --out {d}/s.csv",
     "named pipe"),
    ("guide-dev-zero", "sample --run {d}/good --guidance 2 --guide-with {d}/zero.csv --out {d}/s.csv",
     "symbolic link"),
]  # fmt: skip


def _special_files(lab: Path, d: Path) -> None:
    """Named pipes, links to /dev/zero, runs whose weights, run.json or data copy are such files, and a sound run
    that --guide-with points at them."""
    shutil.copy(lab / "moons.csv", d)
    (d / "folder.csv").mkdir()
    for name in ("fifo.csv", "fifo.npy"):
        os.mkfifo(d / name)
    (d / "link-to-fifo.csv").symlink_to(d / "fifo.csv")
    for name in ("zero.csv", "zero.npy"):
        (d / name).symlink_to("/dev/zero")
    for name, kind in [("weights", "weights"), ("json", "run.json"), ("data", "data")]:
        for special in ("fifo", "zero"):
            run = d / f"{name}-{special}"
            shutil.copytree(lab / "RUN", run)
            path = run / "run.json" if kind == "run.json" else _own(run, kind)
            path.unlink()
            if special == "fifo":
                os.mkfifo(path)
            else:
                path.symlink_to("/dev/zero")
    shutil.copytree(lab / "RUN", d / "source-fifo")
    _edit(d / "source-fifo", data={"source": str(d / "fifo.csv"), "n": 300})
    shutil.copytree(lab / "RUN", d / "good")  # a sound run, autoguided by the special ones


@pytest.fixture(scope="module")
def special_results(lab, tmp_path_factory) -> tuple[Path, dict, str | None]:
    """Every SPECIAL command, run once in one subprocess under a time limit: the folder, {id: (exit status,
    stderr)}, and the id of the case that hung (None if none did)."""
    d = tmp_path_factory.mktemp("special")
    _special_files(lab, d)
    commands = [shlex.split(command.format(d=d)) for _, command, _ in SPECIAL]
    try:
        proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(commands)], capture_output=True,
                              text=True, timeout=180)  # fmt: skip
        output = proc.stdout
    except subprocess.TimeoutExpired as e:
        output = e.stdout.decode() if isinstance(e.stdout, bytes) else e.stdout or ""
    results, last = {}, None
    for line in output.splitlines():
        record = json.loads(line)
        case = SPECIAL[commands.index(record.get("argv") or record["started"])][0]
        if "rc" in record:
            results[case] = (record["rc"], record["err"])
        else:
            last = case
    return d, results, None if last in results else last


def test_special_files_are_refused_without_hanging_or_reading(special_results):
    """Each case: exit 2 and one line naming the kind of file; all are checked, and every failure is listed."""
    d, results, hung = special_results
    failures = []
    for case, _, fragment in SPECIAL:
        try:
            assert case != hung, "it hung"
            assert case in results, f"it did not run (an earlier case hung: {hung})"
            assert_one_line_error(*results[case], fragment)
        except AssertionError as e:
            failures.append(f"{case}: {e}")
    assert not failures, "\n".join(failures)
    assert not (d / "s.csv").exists() and not (d / "new").exists()


def test_a_named_pipe_as_training_data_is_refused_by_the_real_command(tmp_path):
    os.mkfifo(tmp_path / "f.csv")
    proc = subprocess.run([sys.executable, "-m", "diffvis", "train", "--data", "f.csv", "--out", "X"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert_one_line_error(proc.returncode, proc.stderr, "f.csv: cannot be read: it is a named pipe")
    assert sorted(os.listdir(tmp_path)) == ["f.csv"]


def test_reads_are_capped_by_what_is_read_not_by_the_size_a_file_claims(place, capsys, monkeypatch):
    """A /proc file claims 0 bytes; read through a .csv link it is still refused once past the cap."""
    assert os.stat("/proc/self/status").st_size == 0
    (place / "proc.csv").symlink_to("/proc/self/status")
    monkeypatch.setattr(pointfiles, "MAX_TEXT_BYTES", 100)
    refused(capsys, place, f"train --data {place}/proc.csv --out {place}/new", "larger than 0 MB")


def test_an_oversized_run_json_or_weights_file_is_refused(place, capsys):
    run = place / "RUN"
    with open(_own(run, "weights"), "ab") as f:  # more than the model's tensors and a header can take
        f.truncate(f.tell() + 2 * 10**6)
    refused(capsys, place, f"sample --run {run} --out {place}/s.csv", "larger than")
    with open(run / "run.json", "ab") as f:
        f.truncate(64 * 10**6 + 1)
    refused(capsys, place, f"sample --run {run} --out {place}/s.csv", "larger than 64 MB")


# --- 3: every number is checked where it enters --------------------------------------------------------------------


def _huge_points(place: Path, value: str) -> None:
    (place / "huge.csv").write_text(f"x,y\n{value},1\n-{value},2\n0,0\n")


NUMBERS = [  # (id, spoil(place) or None, command with {p} for the place, fragment)
    ("data-seed-negative", None, "data moons --seed -1 --out {p}/d.csv", "--seed: -1 must be at least 0"),
    ("data-seed-2**64", None, f"data moons --seed {2**64} --out {{p}}/d.csv", "at most 4,294,967,295"),
    ("data-n-huge", None, "data moons --n 10000000000 --out {p}/d.csv", "at most 1,000,000"),
    ("data-noise-nan", None, "data moons --noise nan --out {p}/d.csv", "noise"),
    ("data-noise-inf", None, "data moons --noise 1e400 --out {p}/d.csv", "noise"),
    ("train-data-seed-negative", None, "train --data moons --data-seed -1 --out {p}/new", "--data-seed"),
    ("train-data-seed-2**64", None, f"train --data moons --data-seed {2**64} --out {{p}}/new", "--data-seed"),
    ("train-seed-2**64", None, f"train --data moons --seed {2**64} --out {{p}}/new", "--seed"),
    ("train-lr-nan", None, "train --data moons --lr nan --out {p}/new", "lr must be a finite number"),
    ("train-width-huge", None, "train --data moons --width 100000 --out {p}/new", "width"),
    ("sample-seed-negative", None, "sample --run {p}/RUN --seed -1 --out {p}/s.csv", "--seed"),
    ("sample-seed-2**64", None, f"sample --run {{p}}/RUN --seed {2**64} --out {{p}}/s.csv", "--seed"),
    ("sample-n-1e10", None, "sample --run {p}/RUN --n 10000000000 --out {p}/s.csv", "at most 1,000,000"),
    ("sample-digits", None, "sample --run {p}/RUN --n " + "9" * 5000 + " --out {p}/s.csv", "not an integer"),
    ("sweep-seed-negative", None, "sweep --run {p}/RUN --seed -1 --out {p}/s.csv", "--seed"),
    ("sweep-samplers-empty", None, 'sweep --run {p}/RUN --samplers "" --out {p}/s.csv', "at least one sampler"),
    ("sweep-samplers-commas", None, "sweep --run {p}/RUN --samplers , --out {p}/s.csv", "at least one sampler"),
    ("sweep-steps-above-T", None, "sweep --run {p}/RUN --samplers ddim --steps 5000 --out {p}/s.csv",
     "above the model's 20 timesteps"),
    ("train-points-1e308", lambda p: _huge_points(p, "1e308"), "train --data {p}/huge.csv --out {p}/new",
     "point 1 has a NaN or infinite value, or one beyond ±1e+12"),
    ("train-points-1e13", lambda p: _huge_points(p, "1e13"), "train --data {p}/huge.csv --out {p}/new", "±1e+12"),
    ("exact-points-1e308", lambda p: _huge_points(p, "1.7e308"), "sample --exact {p}/huge.csv --out {p}/s.csv",
     "±1e+12"),
    ("run-width-64.5", lambda p: _edit(p / "RUN", model__width=64.5), "sample --run {p}/RUN --out {p}/s.csv",
     "width must be a whole number, got 64.5"),
    ("run-depth-3.0", lambda p: _edit(p / "RUN", model__depth=3.0), "sample --run {p}/RUN --out {p}/s.csv",
     "depth must be a whole number, got 3.0"),
    ("run-embed-dim-1e9", lambda p: _edit(p / "RUN", model__embed_dim=10**9), "sample --run {p}/RUN --out {p}/s.csv",
     "embed_dim must be an even number from 2 to 1024"),
    ("run-nested-json", lambda p: (p / "RUN" / "run.json").write_text("[" * 100_000 + "]" * 100_000),
     "sample --run {p}/RUN --out {p}/s.csv", "not valid JSON"),
    ("run-data-noise-NaN", lambda p: _edit(p / "RUN", data={"source": "moons", "n": 300, "noise": "NaN"}),
     "sweep --run {p}/RUN --out {p}/s.csv", "noise must be a number"),
    ("run-step-1e400", lambda p: _edit(p / "RUN", state__step=1e400), "sample --run {p}/RUN --out {p}/s.csv", "step"),
    ("run-train-seed-2**64", lambda p: _edit(p / "RUN", train__seed=2**64), "sample --run {p}/RUN --out {p}/s.csv",
     "seed"),
    ("run-huge-integer", lambda p: (p / "RUN" / "run.json").write_text('{"format": "diffvis-run", "n": ' +
     "9" * 5000 + "}"), "sample --run {p}/RUN --out {p}/s.csv", "not valid JSON"),
    # render refuses what sample refuses: one validation, from the registry's parameter specs (class 5)
    ("render-eta-5", None, "render --run {p}/RUN --view reverse --eta 5 --out {p}/r.png", "--eta must be between 0"),
    ("render-eta-nan", None, "render --run {p}/RUN --view reverse --eta nan --out {p}/r.png", "--eta must be"),
    ("render-steps-1e5", None, "render --run {p}/RUN --view reverse --steps 100000 --out {p}/r.png",
     "--steps must be between 1 and 10000"),
    ("render-points-1e8", None, "render --run {p}/RUN --view reverse --points 100000000 --out {p}/r.png",
     "at most 1,000,000"),
    ("render-n-1e8", None, "render --run {p}/RUN --view reverse --n 100000000 --out {p}/r.png", "at most 1,000,000"),
    ("render-trails-minus-1", None, "render --run {p}/RUN --view reverse --trails -1 --out {p}/r.png",
     "must be at least 0"),
    ("render-size-huge", None, "render --run {p}/RUN --view reverse --size 100000x100000 --out {p}/r.png",
     "must be from 200x150 to 4096x4096"),
    ("render-probe-inf", None, "render --run {p}/RUN --view reverse --probe inf 0 --out {p}/r.png", "finite"),
    ("render-probe-wrong-view", None, "render --run {p}/RUN --view forward --probe 0 0 --out {p}/r.png",
     "--probe needs the reverse, score or transport view"),
    ("render-setting-of-another-sampler", None,
     "render --run {p}/RUN --view reverse --sampler ddpm --eta 0.5 --out {p}/r.png", "not a setting of the ddpm"),
]  # fmt: skip


@pytest.mark.parametrize("spoil, command, fragment", [c[1:] for c in NUMBERS], ids=[c[0] for c in NUMBERS])
def test_numbers_are_checked_where_they_enter(place, capsys, spoil, command, fragment):
    if spoil is not None:
        spoil(place)
    refused(capsys, place, command.format(p=place), fragment)


def test_limits_are_said_in_help(capsys):
    for command, expected in [("data", ["1 to 1,000,000", "0 to 4,294,967,295", "0 to 100"]),
                              ("sample", ["1 to 1,000,000", "0 to 4,294,967,295"]),
                              ("train", ["0 to 4,294,967,295"])]:  # fmt: skip
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert all(e in text for e in expected), (command, text)


# --- 4: poisoned runs are refused, and no non-finite sample file is written ------------------------------------------


POISON = [
    ("weights-nan", lambda s: s["out.bias"].fill_(math.nan), "holds NaN or infinite values"),
    ("weights-inf", lambda s: s["in_x.weight"].__setitem__((0, 0), -math.inf), "holds NaN or infinite values"),
    ("weights-int64", lambda s: s.update({k: (v * 1e9).to(torch.int64) for k, v in s.items()}), "stored as int64"),
    ("weights-bool", lambda s: s.update({k: v > 0 for k, v in s.items()}), "stored as bool"),
]


@pytest.mark.parametrize("change, fragment", [c[1:] for c in POISON], ids=[c[0] for c in POISON])
def test_tampered_weights_with_a_matching_hash_are_refused(place, capsys, change, fragment):
    _tamper_weights(place / "RUN", change)
    refused(capsys, place, f"sample --run {place}/RUN {SAMPLE} --out {place}/s.csv", fragment)


@pytest.mark.parametrize("normaliser, fragment", [
    ({"mean": [0.0, 0.0], "scale": 1e308}, "scale"),
    ({"mean": [math.nan, 0.0], "scale": 1.0}, "mean"),
    ({"mean": [0.0, 0.0], "scale": -1.0}, "scale"),
    ({"mean": [0.0], "scale": 1.0}, "mean"),
    ({"mean": [0.0, 0.0], "scale": "1"}, "scale"),
])  # fmt: skip
def test_a_poisoned_normaliser_is_refused(place, capsys, normaliser, fragment):
    _edit(place / "RUN", normaliser=normaliser)
    refused(capsys, place, f"sample --run {place}/RUN {SAMPLE} --out {place}/s.csv", fragment)


def test_samples_that_overflow_are_never_written(place, capsys):
    """Finite weights so large that the network's output overflows: sample refuses to write NaN or inf."""
    _tamper_weights(place / "RUN", lambda s: (s["out.weight"].fill_(3e38), s["out.bias"].fill_(3e38)))
    refused(capsys, place, f"sample --run {place}/RUN {SAMPLE} --out {place}/s.csv --trajectory {place}/t.npz",
            "s.csv: not written: 50 of the 50 points are NaN or infinite")  # fmt: skip


# --- 6: outputs are checked first and written all or none ---------------------------------------------------------


@pytest.mark.parametrize("command, fragment", [
    ("sample --run {p}/RUN --out {p}/s.csv --trajectory {p}/nodir/t.npz", "there is no folder"),
    ("sample --run {p}/RUN --out {p}/nodir/s.csv --trajectory {p}/t.npz", "there is no folder"),
    ("sample --run {p}/RUN --out {p}/s.csv --trajectory {p}/t.txt", "a trajectory is saved as"),
    ("sample --run {p}/RUN --out {p}/s.npy --trajectory {p}/s.npy", "name the same file"),
    ("sample --run {p}/RUN --out {p}/RUN --trajectory {p}/t.npz", "unsupported output type"),
    ("sample --run {p}/RUN --out {p}/moons.csv/s.csv", "there is no folder"),
    ("sweep --run {p}/RUN --out {p}/nodir/s.csv", "there is no folder"),
    ("sweep --run {p}/RUN --out {p}/s.txt", "written as .csv"),
    ("data moons --out {p}/nodir/d.csv", "there is no folder"),
    ("data moons --out {p}/d.json", "unsupported output type"),
])  # fmt: skip
def test_outputs_are_checked_before_any_work(place, capsys, monkeypatch, command, fragment):
    def no_work(*args, **kwargs):
        raise AssertionError("sampled before checking the outputs")

    monkeypatch.setattr(pipeline, "sample_request", no_work)
    refused(capsys, place, command.format(p=place), fragment)


def test_sample_writes_both_outputs_or_neither(place, capsys, monkeypatch):
    real_stage = atomic._stage

    def full_disk_for_the_trajectory(path, data):
        if path.suffix == ".npz":
            raise OSError(28, "No space left on device")
        return real_stage(path, data)

    monkeypatch.setattr(atomic, "_stage", full_disk_for_the_trajectory)
    refused(capsys, place, f"sample --run {place}/RUN {SAMPLE} --out {place}/s.csv --trajectory {place}/t.npz",
            "t.npz: cannot be written (No space left on device)")  # fmt: skip


def test_a_failed_save_leaves_no_orphan_weights(place, capsys, monkeypatch):
    from diffvis.core import checkpoint

    real_write = checkpoint.atomic_write_bytes

    def full_disk_at_run_json(path, data):
        if path.name == "run.json":
            raise OSError(28, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(checkpoint, "atomic_write_bytes", full_disk_at_run_json)
    train = f"train --data {place}/moons.csv {' '.join(TINY)} --seed 1"  # other weights than RUN's
    refused(capsys, place, f"{train} --out {place}/RUN", "No space left")
    load_run(place / "RUN")  # the run that was there is whole


# --- 7: a run is read only from inside its folder ------------------------------------------------------------------


def _outside_copy(place: Path, kind: str) -> Path:
    """Move the run's weights file or data copy to ``place`` and leave a symlink to it in the run."""
    inside = _own(place / "RUN", kind)
    outside = place / f"outside-{inside.name}"
    inside.rename(outside)
    inside.symlink_to(outside)
    return outside


@pytest.mark.parametrize("kind, command", [
    ("weights", f"sample --run {{p}}/RUN {SAMPLE} --out {{p}}/s.csv"),
    ("data", "sweep --run {p}/RUN --samplers ddim --steps 2 --n 20 --out {p}/s.csv"),
])  # fmt: skip
def test_a_symlink_in_a_run_is_refused_and_its_target_never_read(place, capsys, kind, command):
    outside = _outside_copy(place, kind)
    paths = refused(capsys, place, command.format(p=place), "symbolic link")
    assert str(outside) not in paths


def test_a_symlinked_run_json_is_refused(place, capsys):
    (place / "RUN" / "run.json").rename(place / "elsewhere.json")
    (place / "RUN" / "run.json").symlink_to(place / "elsewhere.json")
    paths = refused(capsys, place, f"sample --run {place}/RUN --out {place}/s.csv", "symbolic link")
    assert str(place / "elsewhere.json") not in paths


def test_a_data_source_outside_the_run_is_never_read(place, capsys):
    secret = place / "secret.csv"
    secret.write_text("x,y\n1,2\n3,4\n")
    _edit(place / "RUN", data={"source": str(secret), "n": 2})
    command = f"sweep --run {place}/RUN --samplers ddim --steps 2 --n 20 --out {place}/s.csv"
    paths = refused(capsys, place, command, "the run does not hold its training data")
    assert str(secret) not in paths
    for name in ("../secret.csv", str(secret), "data-0123456789abcdef.csv/../../secret.csv"):
        _edit(place / "RUN", data={"source": "x.csv", "n": 2, "copy": name})
        assert str(secret) not in refused(capsys, place, command, "data copy must be named")


def test_weights_named_outside_the_run_are_refused(place, capsys):
    weights = _own(place / "RUN", "weights")
    shutil.copy(weights, place / weights.name)
    for name in (f"../{weights.name}", str(place / weights.name)):
        _edit(place / "RUN", weights=name)
        paths = refused(capsys, place, f"sample --run {place}/RUN --out {place}/s.csv", "weights-<hash>")
        assert str(place / weights.name) not in paths


# --- 8 and 9: a run folder is checked before training, and only diffvis's own files are deleted --------------------


def test_training_keeps_the_users_files_and_replaces_only_the_previous_runs_own(place, capsys):
    run = place / "RUN"
    old = {_own(run, "weights").name, _own(run, "data").name}
    mine = ["weights-mine.safetensors", "weights-0123456789abcdef.safetensors", "data-0123456789abcdef.csv",
            "notes.txt", ".notes.txt.abcdefgh.tmp"]  # fmt: skip
    for name in mine:
        (run / name).write_text("the user's")
    (run / ".run.json.abcd1234.tmp").write_text("left by a killed save")
    assert main(["train", "--data", "moons", "--n", "300", *TINY, "--out", str(run)]) == 0
    assert _meta(run)["data"]["source"] == "moons"
    assert sorted(os.listdir(run)) == sorted(["run.json", _meta(run)["weights"], *mine])
    assert all((run / name).read_text() == "the user's" for name in mine)
    assert not old & set(os.listdir(run))


@pytest.mark.parametrize("setup, out, fragment", [
    (lambda p: (p / "file").write_text("mine"), "file", "is not a folder"),
    (lambda p: (p / "file").write_text("mine"), "file/run", "is not a folder"),
    (lambda p: ((p / "d").mkdir(), (p / "d" / "run.json").write_text('{"mine": 1}')), "d", "format tag"),
    (lambda p: ((p / "d").mkdir(), (p / "d" / "run.json").write_text("not json")), "d", "not valid JSON"),
    (lambda p: ((p / "d").mkdir(), (p / "d" / "run.json").symlink_to(p / "moons.csv")), "d", "symbolic link"),
])  # fmt: skip
def test_a_place_a_run_cannot_be_saved_to_is_refused_before_training(place, capsys, monkeypatch, setup, out,
                                                                      fragment):  # fmt: skip
    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking --out")

    monkeypatch.setattr(pipeline, "train_run", no_training)
    setup(place)
    refused(capsys, place, f"train --data moons --out {place}/{out}", fragment)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_folder_is_refused_before_training(place, capsys, monkeypatch):
    monkeypatch.setattr(pipeline, "train_run", None)
    (place / "ro").mkdir(mode=0o555)
    refused(capsys, place, f"train --data moons --out {place}/ro/run", "read-only")


def test_a_line_break_in_a_file_name_stays_on_one_line(place, capsys):
    refused(capsys, place, f"train --data '{place}/two\nlines.csv' --out {place}/new", "two\\nlines.csv")
