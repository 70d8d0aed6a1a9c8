import pytest


@pytest.fixture(scope="module", autouse=True)
def _single_thread(one_torch_thread):
    """Every core test runs on one intra-op thread: with another job on the two cores, torch's second thread
    made this folder's slowest tests 3× slower (8 of them: 619 s on the default two threads, 177 s on one)."""


@pytest.fixture
def _collect_qt_garbage():
    """Core tests make no Qt objects: the shared conftest's full collection after each test (0.1 to 0.4 s with
    torch loaded, a minute over this folder) is left out, and automatic collection stays on."""
    yield
