import gc
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path, monkeypatch):
    """Settings and runs go to per-test folders, never the user's own (platformdirs reads XDG_* on Linux)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Two CPU cores shared with the GUI thread (and other jobs): torch's spinning OpenMP pool can slow tiny
    tensors tenfold, so tests that train and sample tiny models in the app use one intra-op thread (as the app's
    training worker does)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", autouse=True)
def _freeze_long_lived_objects():
    """Before each module, what is alive (torch, Qt, pyqtgraph and the modules imported so far; the fixtures of
    earlier modules are torn down by then) is collected once and frozen, as the app does at start-up
    (``freeze_startup_objects``): each later collection walks only what was made since, a few milliseconds
    instead of 0.1 to 0.4 s over the 200,000 objects torch alone brings. Objects made during the module's tests
    and fixtures stay collectable, and are collected (or frozen, when still alive) at the next module's start."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _collect_qt_garbage():
    """Every test's widgets are torn down the same way: pytest-qt closes and deletes the ones registered with
    ``qtbot.addWidget``, then this collects their Python wrappers at once. During the test, automatic collection
    is off, as in the app (``collect_garbage_in_the_gui_thread``): left to strike anywhere, a test's garbage was
    collected in the middle of another's repaint, and pyqtgraph's GraphicsView crashed (random test order)."""
    gc.disable()
    try:
        yield
    finally:
        _delete_closed_widgets()
        gc.collect()
        gc.enable()


def _delete_closed_widgets() -> None:
    """Delete now what the test's teardown scheduled with ``deleteLater`` (pytest-qt does so for every widget of
    ``qtbot.addWidget``), rather than in the next event loop to run, which is the next test's: 100 closed main
    windows, deleted there, made the next test 20 times slower (40 to 60 s more)."""
    qt_core = sys.modules.get("PySide6.QtCore")
    if qt_core is not None and qt_core.QCoreApplication.instance() is not None:
        qt_core.QCoreApplication.sendPostedEvents(None, qt_core.QEvent.Type.DeferredDelete)


@pytest.fixture
def dummy_sampler():
    """A sampler registered in the registry only (DDIM under another name, with a 'nudge' setting ν of its own),
    for the tests that find it in every front end with no other file changed; yields the nudge of every call."""
    from diffvis.core import registry
    from diffvis.core.samplers import sample_ddim
    from diffvis.core.step_terms import explain_ddim

    calls = []

    def sample_dummy(model, x_T, schedule, *, steps=7, nudge=0.0, **common):
        calls.append(nudge)
        return sample_ddim(model, x_T, schedule, steps=steps, **common)

    def explain_dummy(model, path, k, z, schedule, params):
        return explain_ddim(model, path, k, z, schedule, {"steps": params["steps"], "eta": 0.0, "spacing": "leading"})

    nudge = registry.Param("nudge", float, 0.0, "a setting only this sampler has", "ν", minimum=0.0, maximum=2.0)
    registry.register_sampler(registry.SamplerInfo("dummy", "Dummy", "this test", sample_dummy, ("ddpm",),
                                                   (registry.STEPS, nudge), 1.0, "x ← x", "steps", latex="x' = x",
                                                   explain=explain_dummy))  # fmt: skip
    yield calls
    del registry.SAMPLERS["dummy"]


# --- processes started at the end of collection, on the core the tests leave idle ----------------------------------


@dataclass
class _Job:
    argv: list
    folder: Path
    name: str
    after: str | None = None
    env: dict | None = None
    cwd: str | None = None
    state: str = "queued"  # then "running", then "done"
    process: subprocess.Popen | None = None
    outcome: subprocess.CompletedProcess | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


class Background:
    """Processes that a test module's fixtures wait for (trainings, renders), run one at a time in a thread of
    their own from the end of collection, in the order their modules will run: most tests keep one core busy and
    leave the other idle.

    A module lists them in ``background_jobs(folder)`` as {name: {"argv": [...], "after": another job's name or
    None, "env": {...} or None, "cwd": ... or None}} (``folder`` is the module's own, for their files; the XDG
    settings and data folders point into it unless the job sets them, never to the user's own). Its fixtures call
    ``background.result(__name__, name)``: a job not yet started runs there and then (after the job it comes after,
    beside the one the thread runs); one already started is waited for. The thread only starts processes and waits
    for them (no Python work of its own: the garbage collector never runs there); each process's stdout and stderr
    go to files, read back by ``result``. Use it for processes of one core each (one torch thread), not for the
    app's demo: on two cores it would only slow the tests beside it."""

    def __init__(self, root: Path):
        self.root = root
        self.jobs: dict[tuple[str, str], _Job] = {}
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._work, name="background processes", daemon=True)

    def folder(self, module: str) -> Path:
        return self.root / module

    def register(self, module) -> None:
        """Queue the jobs ``module`` lists (once)."""
        listing = getattr(module, "background_jobs", None)
        if listing is None or any(name == module.__name__ for name, _ in self.jobs):
            return
        folder = self.folder(module.__name__)
        folder.mkdir(parents=True, exist_ok=True)
        for name, spec in listing(folder).items():
            env = dict(spec.pop("env", None) or os.environ)
            for key in ("XDG_CONFIG_HOME", "XDG_DATA_HOME"):  # as _user_dirs does for every test
                if env.get(key) == os.environ.get(key):
                    env[key] = str(folder / key.lower())
            self.jobs[module.__name__, name] = _Job(folder=folder, name=name, env=env, **spec)

    def start(self) -> None:
        self.thread.start()

    def result(self, module: str, name: str, timeout: float = 900) -> subprocess.CompletedProcess:
        """The finished process of job ``name`` of ``module``: stdout and stderr as text."""
        if (module, name) not in self.jobs:
            self.register(sys.modules[module])
        job = self.jobs[module, name]
        self._run(job, timeout)
        if not job.done.wait(timeout) and job.process is not None:  # a hang guard, not a timing
            job.process.kill()
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.outcome

    def stop(self) -> None:
        """Start nothing more; end what runs."""
        with self.lock:
            self.stopping = True
            running = [job.process for job in self.jobs.values() if job.process is not None]
        for process in running:
            if process.poll() is None:
                process.kill()
        if self.thread.is_alive():
            self.thread.join()

    def _work(self) -> None:
        for job in list(self.jobs.values()):
            self._run(job)

    def _run(self, job: _Job, timeout: float | None = None) -> None:
        """Run ``job`` here if nobody has started it (killed after ``timeout`` seconds)."""
        with self.lock:
            if job.state != "queued":
                return
            job.state = "running"
        try:
            if job.after is not None:
                self.result(job.folder.name, job.after)
            out, err = (job.folder / f"{job.name}.{stream}" for stream in ("stdout", "stderr"))
            with open(out, "w") as stdout, open(err, "w") as stderr, self.lock:  # stop() ends what has started
                if self.stopping:
                    raise RuntimeError("the test session ended before this job started")
                job.process = subprocess.Popen(job.argv, stdout=stdout, stderr=stderr, env=job.env, cwd=job.cwd)
            try:
                job.process.wait(timeout)
            except subprocess.TimeoutExpired:
                job.process.kill()
                job.process.wait()
            text = [path.read_text(errors="replace") for path in (out, err)]
            job.outcome = subprocess.CompletedProcess(job.argv, job.process.returncode, *text)
        except BaseException as e:  # noqa: BLE001 (given to whoever waits for the job)
            job.error = e
            if job.process is not None and job.process.poll() is None:
                job.process.kill()
                job.process.wait()
        finally:
            job.state = "done"
            job.done.set()


_BACKGROUND = pytest.StashKey[Background]()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """The modules that wait on many seconds of Background processes (``BACKGROUND_HEAVY = True``) run after all
    the others, each part in its shuffled (pytest-randomly) order: by then the other core has done their
    processes. Drawn among the first modules, they kept the tests waiting (quiet runs: 434 s in an order that ran
    them late, 538 s in one that ran test_render_process and test_conditioning early, 113 s spent waiting)."""
    later = [item for item in items if getattr(getattr(item, "module", None), "BACKGROUND_HEAVY", False)]
    if later:
        moved = set(map(id, later))
        items[:] = [item for item in items if id(item) not in moved] + later


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    background = _background_of(session.config)
    for module in dict.fromkeys(getattr(item, "module", None) for item in session.items):  # in the order they run
        if module is not None:
            background.register(module)
    background.start()


def pytest_sessionfinish(session):
    background = session.config.stash.get(_BACKGROUND, None)
    if background is not None:
        background.stop()
        shutil.rmtree(background.root, ignore_errors=True)


def _background_of(config) -> Background:
    if _BACKGROUND not in config.stash:
        config.stash[_BACKGROUND] = Background(Path(tempfile.mkdtemp(prefix="diffvis-tests-")))
    return config.stash[_BACKGROUND]


@pytest.fixture(scope="session")
def background(pytestconfig) -> Background:
    """The session's ``Background`` processes."""
    return _background_of(pytestconfig)
