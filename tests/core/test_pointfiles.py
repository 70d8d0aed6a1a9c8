"""Point files: round trips, the text dialects, every malformed file refused with DataFileError, atomic writes."""

import contextlib
import errno
import io
import os
import pickle
import signal

import numpy as np
import pytest

from diffvis.core import atomic, pointfiles
from diffvis.core.atomic import atomic_write_bytes
from diffvis.core.datasets import MAX_POINTS, PointSet
from diffvis.core.pointfiles import load_points, read_npy, save_points
from diffvis.errors import DataFileError


def _points(n=200, seed=0):
    """Points spanning several orders of magnitude, signs, and an exact zero."""
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(n, 2)) * 10.0 ** rng.uniform(-4, 4, size=(n, 2))
    pts[0] = (0.0, -0.0)
    pts[1] = (1.0 / 3.0, -123456.789)
    return pts


def _refused(path, *fragments):
    """load_points(path) raises DataFileError (and nothing else) whose one-line message holds every fragment."""
    with pytest.raises(DataFileError) as info:
        load_points(path)
    message = str(info.value)
    assert message and "\n" not in message, message
    for fragment in fragments:
        assert fragment.lower() in message.lower(), f"{fragment!r} not in {message!r}"
    return message


# --- round trips ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".txt", ".CSV"])
@pytest.mark.parametrize("with_labels", [False, True])
def test_save_load_round_trip(tmp_path, suffix, with_labels):
    pts = _points()
    labels = np.arange(len(pts), dtype=np.int64) % 7 if with_labels else None
    path = tmp_path / f"cloud{suffix}"
    save_points(PointSet(pts, labels, "cloud"), path)
    back = load_points(path)
    assert back.points.shape == pts.shape and back.points.dtype == np.float64
    if suffix == ".npy":
        np.testing.assert_array_equal(back.points, pts)
    else:
        np.testing.assert_allclose(back.points, pts, rtol=1e-8, atol=0)
    if with_labels:
        assert back.labels.dtype == np.int64
        np.testing.assert_array_equal(back.labels, labels)
    else:
        assert back.labels is None
    assert back.name == "cloud"
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left beside it


def test_text_file_has_a_header_line(tmp_path):
    save_points(PointSet(np.array([[1.5, 2.5]]), np.array([3])), tmp_path / "a.csv")
    save_points(PointSet(np.array([[1.5, 2.5]])), tmp_path / "b.txt")
    assert (tmp_path / "a.csv").read_text().splitlines() == ["x,y,label", "1.5,2.5,3"]
    assert (tmp_path / "b.txt").read_text().splitlines() == ["x,y", "1.5,2.5"]


def test_saving_overwrites_a_previous_file(tmp_path):
    path = tmp_path / "p.npy"
    save_points(PointSet(np.zeros((5, 2))), path)
    save_points(PointSet(np.ones((3, 2))), path)
    np.testing.assert_array_equal(load_points(path).points, np.ones((3, 2)))


def test_save_refuses_unknown_suffix_and_unwritable_place(tmp_path):
    with pytest.raises(DataFileError, match=r"unsupported output type \.json"):
        save_points(PointSet(np.zeros((2, 2))), tmp_path / "p.json")
    with pytest.raises(DataFileError, match="cannot be written"):
        save_points(PointSet(np.zeros((2, 2))), tmp_path / "no" / "such" / "dir" / "p.csv")
    assert os.listdir(tmp_path) == []


def test_load_accepts_str_path_and_integer_npy(tmp_path):
    path = tmp_path / "ints.npy"
    np.save(path, np.array([[1, 2], [3, -4]], dtype=np.int32))
    back = load_points(str(path))
    assert back.points.dtype == np.float64
    np.testing.assert_array_equal(back.points, [[1.0, 2.0], [3.0, -4.0]])
    np.save(path, np.array([[1, 2, 5], [3, -4, 0]], dtype=np.float32))
    np.testing.assert_array_equal(load_points(path).labels, [5, 0])


# --- text parsing ---------------------------------------------------------------------------------------------------

TWO = [[1.0, 2.0], [-3.5, 4e-3]]


@pytest.mark.parametrize(
    "text, expected, labels",
    [
        ("x,y\n1,2\n-3.5,4e-3\n", TWO, None),
        ("1,2\n-3.5,4e-3", TWO, None),  # no header, no final newline
        ("x;y\n1;2\n-3.5;0.004\n", TWO, None),
        ("1\t2\n-3.5\t0.004\n", TWO, None),
        ("   1    2   \n-3.5 4E-3\n", TWO, None),
        ("1, 2\n-3.5 ,\t4e-3\n", TWO, None),  # mixed separators and padding
        ("x,y\r\n1,2\r\n-3.5,4e-3\r\n", TWO, None),  # Windows line ends
        ("# exported by hand\n\n# columns follow\nx y\n\n1 2  # first\n\n   \n# middle\n-3.5 4e-3\n#end\n", TWO, None),
        ("x,y,label\n1,2,0\n-3.5,4e-3,1.0\n", TWO, [0, 1]),  # integral floats as labels
        ("1;2;7.000\n-3.5;4e-3;1000\n", TWO, [7, 1000]),
    ],
)
def test_text_dialects(tmp_path, text, expected, labels):
    path = tmp_path / "pts.txt"
    path.write_bytes(text.encode())
    back = load_points(path)
    np.testing.assert_array_equal(back.points, expected)
    if labels is None:
        assert back.labels is None
    else:
        assert back.labels.dtype == np.int64
        np.testing.assert_array_equal(back.labels, labels)


def test_utf8_bom_before_a_headerless_first_row_keeps_that_row(tmp_path):
    """Excel's 'CSV UTF-8' starts the file with a byte-order mark; the first point must not vanish silently."""
    path = tmp_path / "excel.csv"
    path.write_text("1,2\n3,4\n", encoding="utf-8-sig")
    back = load_points(path)
    np.testing.assert_array_equal(back.points, [[1.0, 2.0], [3.0, 4.0]])


def test_exactly_max_points_is_accepted_and_one_more_refused(tmp_path):
    ok, big = tmp_path / "ok.npy", tmp_path / "big.npy"
    np.lib.format.open_memmap(ok, mode="w+", dtype=np.float32, shape=(MAX_POINTS, 2)).flush()
    np.lib.format.open_memmap(big, mode="w+", dtype=np.float32, shape=(MAX_POINTS + 1, 2)).flush()
    assert len(load_points(ok)) == MAX_POINTS
    _refused(big, f"{MAX_POINTS:,}")


# --- malformed files ------------------------------------------------------------------------------------------------

BAD_TEXT = [
    ("prose", "Dear reader,\nthis is a letter and not a table.\n", ["line 2", "not numeric"]),
    ("prose after rows", "1,2\n3,4\nsee you later\n", ["line 3", "not numeric"]),
    ("nan", "x,y\n1,2\nnan,3\n", ["point 2", "NaN"]),
    ("inf", "1,2\n3,4\n5,-inf\n", ["point 3", "infinite"]),
    ("one column", "1\n2\n3\n", ["line 1", "got 1"]),
    ("four columns", "x,y,a,b\n1,2,3,4\n", ["line 2", "got 4"]),
    ("ragged", "1,2\n3,4\n5,6,1\n", ["line 3", "expected 2 columns, got 3"]),
    ("ragged labels", "1,2,0\n3,4\n", ["line 2", "expected 3 columns, got 2"]),
    ("empty", "", ["no points"]),
    ("blank lines", "\n\n   \n", ["no points"]),
    ("header only", "x,y\n", ["no points"]),
    ("comments only", "# nothing\n# here\n", ["no points"]),
    ("fractional labels", "1,2,0\n3,4,0.5\n", ["integer class labels"]),
    ("negative labels", "1,2,-1\n3,4,0\n", ["integer class labels"]),
    ("huge labels", "1,2,1001\n", ["integer class labels"]),
]


@pytest.mark.parametrize("name, text, fragments", BAD_TEXT, ids=[b[0] for b in BAD_TEXT])
@pytest.mark.parametrize("suffix", [".csv", ".txt"])
def test_malformed_text_is_refused(tmp_path, name, text, fragments, suffix):
    path = tmp_path / f"bad{suffix}"
    path.write_text(text, encoding="utf-8")
    _refused(path, path.name, *fragments)


def test_binary_garbage_is_not_text(tmp_path):
    path = tmp_path / "image.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(128, 256)) * 50)
    _refused(path, "image.csv", "UTF-8")


def test_npy_of_strings_is_refused(tmp_path):
    path = tmp_path / "words.npy"
    np.save(path, np.array([["a", "b"], ["c", "d"]]))
    _refused(path, "words.npy", "numeric")


def test_npy_of_complex_and_bool_is_refused(tmp_path):
    for dtype in (complex, bool):
        path = tmp_path / f"{dtype.__name__}.npy"
        np.save(path, np.zeros((3, 2), dtype=dtype))
        _refused(path, "numeric")


class _Boom:
    """Unpickling this object would create a directory: proof that a load unpickled something."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_pickled_object_npy_is_refused_without_unpickling(tmp_path, monkeypatch):
    path = tmp_path / "evil.npy"
    marker = tmp_path / "unpickled"
    array = np.empty((2, 2), dtype=object)
    array[:] = [[_Boom(str(marker)), 1.0], [2.0, 3.0]]
    np.save(path, array, allow_pickle=True)

    def forbidden(*args, **kwargs):
        raise AssertionError("load_points unpickled data")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    _refused(path, "evil.npy")
    assert not marker.exists()


def test_npy_that_is_not_npy_is_refused_without_advice_to_unpickle(tmp_path):
    path = tmp_path / "fake.npy"
    path.write_bytes(b"this is a text file with a .npy name\n")
    message = _refused(path, "fake.npy")
    assert "allow_pickle" not in message and "pickle.load" not in message


@pytest.mark.parametrize("cut", [0, 5, 60, 200])
def test_truncated_or_empty_npy_is_refused(tmp_path, cut):
    full = tmp_path / "full.npy"
    np.save(full, np.arange(200.0).reshape(100, 2))
    path = tmp_path / "cut.npy"
    path.write_bytes(full.read_bytes()[:cut])
    _refused(path, "cut.npy")


@pytest.mark.parametrize(
    "shape, fragment",
    [((4, 2, 2), "(4, 2, 2)"), ((6,), "(6,)"), ((5, 1), "(5, 1)"), ((5, 4), "(5, 4)"), ((0, 2), "no points")],
)
def test_npy_of_wrong_shape_is_refused(tmp_path, shape, fragment):
    path = tmp_path / "shape.npy"
    np.save(path, np.zeros(shape))
    _refused(path, "shape.npy", fragment)


def test_npy_with_nan_is_refused(tmp_path):
    path = tmp_path / "nan.npy"
    np.save(path, np.array([[0.0, 1.0], [np.nan, 2.0]]))
    _refused(path, "point 2", "NaN")


@pytest.mark.parametrize("name, fragment", [("points.json", ".json"), ("points", "(none)"), ("points.npz", ".npz")])
def test_wrong_suffix_is_refused(tmp_path, name, fragment):
    path = tmp_path / name
    path.write_text("1,2\n3,4\n")
    _refused(path, "unsupported file type", fragment)


@pytest.mark.parametrize("suffix", [".csv", ".npy"])
def test_missing_path_is_refused(tmp_path, suffix):
    _refused(tmp_path / f"absent{suffix}", "cannot be read", "No such file")


@pytest.mark.parametrize("suffix", [".csv", ".npy"])
def test_directory_path_is_refused(tmp_path, suffix):
    folder = tmp_path / f"folder{suffix}"
    folder.mkdir()
    _refused(folder, "cannot be read")


def test_more_than_max_points_csv_is_refused(tmp_path):
    path = tmp_path / "many.csv"
    path.write_text("x,y\n" + "0,0\n" * (MAX_POINTS + 5))
    _refused(path, "many.csv", f"more than {MAX_POINTS:,} points")


@contextlib.contextmanager
def _no_hang(seconds=10):
    """A blocking open inside the block fails the test instead of hanging it."""

    def hung(*args):
        raise TimeoutError("blocked on a special file")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _special(tmp_path, kind, suffix):
    """A named pipe, a device or a folder under a point file's name (or a symlink to one)."""
    path = tmp_path / f"special{suffix}"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "link to a fifo":
        os.mkfifo(tmp_path / "pipe")
        path.symlink_to(tmp_path / "pipe")
    elif kind == "device":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    return path


@pytest.mark.parametrize("suffix", [".csv", ".npy"])
@pytest.mark.parametrize("kind, fragment", [("fifo", "named pipe"), ("link to a fifo", "named pipe"),
                                            ("device", "device"), ("folder", "folder")])  # fmt: skip
def test_only_regular_files_are_opened(tmp_path, kind, fragment, suffix):
    path = _special(tmp_path, kind, suffix)
    with _no_hang():
        _refused(path, "cannot be read", fragment, "reads only regular files")
        with pytest.raises(DataFileError, match=fragment):
            read_npy(path, "initial noise")


def test_a_symlink_is_followed_only_when_allowed(tmp_path):
    save_points(PointSet(np.array([[0.0, 1.0], [2.0, 3.0]])), tmp_path / "real.csv")
    (tmp_path / "link.csv").symlink_to(tmp_path / "real.csv")
    assert len(load_points(tmp_path / "link.csv")) == 2
    with pytest.raises(DataFileError, match="symbolic link"):
        load_points(tmp_path / "link.csv", follow_symlinks=False)


def test_what_is_read_is_capped_whatever_size_the_file_claims(tmp_path, monkeypatch):
    """/proc files claim 0 bytes; the cap counts the bytes actually read (at most cap + 1)."""
    assert os.stat("/proc/self/status").st_size == 0
    (tmp_path / "proc.csv").symlink_to("/proc/self/status")
    monkeypatch.setattr(pointfiles, "MAX_TEXT_BYTES", 200)
    _refused(tmp_path / "proc.csv", "larger than 0 MB")
    (tmp_path / "big.csv").write_text("0,0\n" * 1000)
    _refused(tmp_path / "big.csv", "larger than")


@pytest.mark.parametrize("value", ["1e308", "-1.7e308", "1e13", "-1e12000"])
def test_coordinates_beyond_1e12_are_refused(tmp_path, value):
    path = tmp_path / "far.csv"
    path.write_text(f"x,y\n0,0\n1,{value}\n")
    _refused(path, "point 2", "±1e+12")


def test_npy_header_of_a_huge_array_is_refused_before_reading(tmp_path):
    """A header may claim any shape: the claim is checked before a byte of data is read or allocated."""
    path = tmp_path / "claims.npy"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (500_000, 3)})
    path.write_bytes(header.getvalue() + b"\0" * 64)
    _refused(path, "truncated")
    for shape in [(10**15, 2), (2, 10**15)]:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": shape})
        path.write_bytes(header.getvalue())
        _refused(path, "claims.npy")


def test_fortran_order_and_big_endian_npy_load(tmp_path):
    table = np.asfortranarray(np.arange(12.0).reshape(6, 2)).astype(">f4")
    np.save(tmp_path / "f.npy", table)
    np.testing.assert_array_equal(load_points(tmp_path / "f.npy").points, np.arange(12.0).reshape(6, 2))


def test_points_that_are_not_finite_are_never_written(tmp_path):
    for suffix in (".csv", ".npy"):
        with pytest.raises(DataFileError, match="not written: 1 of the 2 points are NaN or infinite"):
            save_points(PointSet(np.array([[0.0, 1.0], [np.inf, 0.0]])), tmp_path / f"s{suffix}")
    assert os.listdir(tmp_path) == []


def test_huge_npy_fails_fast_without_reading_the_data(tmp_path):
    path = tmp_path / "huge.npy"
    np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(10_000_000, 2)).flush()
    _refused(path, "huge.npy", f"more than {MAX_POINTS:,} points")


# --- atomic writes --------------------------------------------------------------------------------------------------


def test_atomic_write_creates_and_replaces(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"first")
    assert path.read_bytes() == b"first"
    atomic_write_bytes(path, b"second, longer content")
    assert path.read_bytes() == b"second, longer content"
    atomic_write_bytes(str(path), b"")
    assert path.read_bytes() == b""
    assert os.listdir(tmp_path) == ["f.bin"]


def test_atomic_write_keeps_permissions(tmp_path):
    new, private = tmp_path / "new.bin", tmp_path / "private.bin"
    atomic_write_bytes(new, b"a")
    assert new.stat().st_mode & 0o777 == 0o644
    private.write_bytes(b"secret")
    private.chmod(0o600)
    atomic_write_bytes(private, b"still secret")
    assert private.stat().st_mode & 0o777 == 0o600
    private.chmod(0o664)
    atomic_write_bytes(private, b"shared")
    assert private.stat().st_mode & 0o777 == 0o664


def _fail(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_failed_atomic_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch, step):
    path = tmp_path / "f.bin"
    path.write_bytes(b"precious")
    monkeypatch.setattr(atomic.os, step, _fail)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_bytes(path, b"x" * 100_000)
    assert path.read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_interrupted_atomic_write_leaves_no_temp(tmp_path, monkeypatch):
    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(tmp_path / "new.bin", b"data")
    assert os.listdir(tmp_path) == []


def test_failed_save_points_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "p.csv"
    save_points(PointSet(np.array([[1.0, 2.0]])), path)
    before = path.read_bytes()
    monkeypatch.setattr(atomic.os, "replace", _fail)
    with pytest.raises(DataFileError, match="cannot be written .*No space left"):
        save_points(PointSet(np.zeros((10, 2))), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["p.csv"]
