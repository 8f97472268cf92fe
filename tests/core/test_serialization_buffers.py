"""Large buffers are pickled out of band: written raw after the pickle, read back without copies,
in a file whose size and header are checked; plain pickles still load."""

import os
import pickle
import struct
import subprocess
import sys
import threading

import cloudpickle
import pytest

from offload.core import SerializationError, UnsafeFileError, serialization

LARGE = 2 * 1024 * 1024 + 3  # read into a memory map
MEDIUM = 100 * 1024  # out of band, read into a bytearray
SMALL = 1024  # in band
HEADER = struct.Struct("<8sIIQ")


class Blob:
    """Holds a buffer that pickles as a PickleBuffer (as NumPy arrays do)."""

    def __init__(self, data):
        self.data = data

    def __reduce_ex__(self, protocol):
        return type(self), (pickle.PickleBuffer(self.data),)


def header(path):
    magic, version, count, pickle_length = HEADER.unpack(path.read_bytes()[: HEADER.size])
    return magic, version, count, pickle_length


def test_a_large_buffer_is_written_raw_after_a_small_pickle(tmp_path):
    data = bytearray(os.urandom(LARGE))
    target = tmp_path / "value.pkl"
    serialization.dump(Blob(data), target)
    magic, version, count, pickle_length = header(target)
    assert (magic, version, count) == (serialization.MAGIC, serialization.VERSION, 1)
    assert pickle_length < 200
    assert target.stat().st_size == HEADER.size + pickle_length + 8 + LARGE
    content = target.read_bytes()
    assert content[HEADER.size + pickle_length :][:8] == struct.pack("<Q", LARGE)
    assert content[-LARGE:] == data


def test_a_large_buffer_comes_back_equal_and_writable(tmp_path):
    data = bytearray(os.urandom(LARGE))
    target = tmp_path / "value.pkl"
    serialization.dump(Blob(data), target)
    loaded = serialization.load(target)
    assert type(loaded).__name__ == "Blob"
    view = memoryview(loaded.data)
    assert not view.readonly
    assert view.nbytes == LARGE
    assert view == data
    view[0] ^= 0xFF
    assert view[0] != data[0]


def test_small_buffers_stay_in_band(tmp_path):
    target = tmp_path / "value.pkl"
    serialization.dump(Blob(bytearray(b"x" * SMALL)), target)
    _, _, count, pickle_length = header(target)
    assert count == 0
    assert target.stat().st_size == HEADER.size + pickle_length
    assert bytes(serialization.load(target).data) == b"x" * SMALL


def test_mixed_buffers_keep_their_order_sizes_and_read_only_flag(tmp_path):
    large, medium = os.urandom(LARGE), bytearray(os.urandom(MEDIUM))
    small = bytearray(b"s" * SMALL)
    value = {"large": Blob(large), "medium": Blob(medium), "small": Blob(small), "n": 7}
    target = tmp_path / "value.pkl"
    serialization.dump(value, target)
    assert header(target)[2] == 2
    loaded = serialization.load(target)
    assert loaded["n"] == 7
    assert bytes(loaded["large"].data) == large
    assert bytes(loaded["medium"].data) == medium
    assert bytes(loaded["small"].data) == small
    assert memoryview(loaded["large"].data).readonly  # it was a bytes object
    assert not memoryview(loaded["medium"].data).readonly


def test_numpy_arrays_round_trip_out_of_band(tmp_path, numpy):
    big = numpy.arange(LARGE // 8, dtype=numpy.float64).reshape(-1, 8)
    value = {
        "c": big,
        "fortran": numpy.asfortranarray(big),
        "strided": big[::2, ::3],  # not contiguous: pickled in band
        "small": numpy.arange(10),
    }
    target = tmp_path / "value.pkl"
    serialization.dump(value, target)
    assert header(target)[2] == 2
    loaded = serialization.load(target)
    for key, array in value.items():
        assert loaded[key].dtype == array.dtype
        numpy.testing.assert_array_equal(loaded[key], array)
        assert loaded[key].flags.writeable
    assert loaded["fortran"].flags.f_contiguous
    loaded["c"][0, 0] = -1.0
    assert loaded["c"][0, 0] == -1.0


def test_plain_pickles_still_load(tmp_path):
    old = tmp_path / "old.pkl"
    with open(old, "wb") as stream:
        cloudpickle.dump({"value": Blob(bytearray(b"o" * LARGE))}, stream, protocol=5)
    assert bytes(serialization.load(old)["value"].data) == b"o" * LARGE
    from_dumps = tmp_path / "dumps.pkl"
    from_dumps.write_bytes(serialization.dumps([1, "two", Blob(bytearray(b"d" * LARGE))]))
    loaded = serialization.load(from_dumps)
    assert loaded[:2] == [1, "two"]
    assert bytes(loaded[2].data) == b"d" * LARGE
    protocol_zero = tmp_path / "zero.pkl"
    protocol_zero.write_bytes(pickle.dumps({"a": 1}, protocol=0))
    assert serialization.load(protocol_zero) == {"a": 1}


@pytest.mark.parametrize("keep", ["4", "header", "pickle", "table", "buffer", "all-1"])
def test_a_truncated_file_is_refused_clearly(tmp_path, keep):
    target = tmp_path / "value.pkl"
    serialization.dump({"blob": Blob(bytearray(os.urandom(LARGE)))}, target)
    pickle_length = header(target)[3]
    size = target.stat().st_size
    ends = {
        "4": 4,
        "header": HEADER.size - 1,
        "pickle": HEADER.size + pickle_length // 2,
        "table": HEADER.size + pickle_length + 4,
        "buffer": size - LARGE // 2,
        "all-1": size - 1,
    }
    with open(target, "r+b") as stream:
        stream.truncate(ends[keep])
    with pytest.raises(SerializationError, match=r"truncated or damaged"):
        serialization.load(target)


def test_trailing_bytes_are_refused(tmp_path):
    target = tmp_path / "value.pkl"
    serialization.dump(Blob(bytearray(LARGE)), target)
    size = target.stat().st_size
    with open(target, "ab") as stream:
        stream.write(b"extra")
    with pytest.raises(SerializationError, match=rf"\({size + 5} bytes instead of {size}\)"):
        serialization.load(target)


def test_an_unknown_format_version_is_refused(tmp_path):
    target = tmp_path / "value.pkl"
    serialization.dump(Blob(bytearray(LARGE)), target)
    with open(target, "r+b") as stream:
        stream.seek(len(serialization.MAGIC))
        stream.write(struct.pack("<I", serialization.VERSION + 1))
    with pytest.raises(SerializationError, match=r"format version 2"):
        serialization.load(target)


def test_a_group_writable_file_is_refused_before_reading(tmp_path):
    target = tmp_path / "value.pkl"
    serialization.dump(Blob(bytearray(LARGE)), target)
    assert os.stat(target).st_mode & 0o777 == 0o600
    target.chmod(0o620)
    with pytest.raises(UnsafeFileError, match=r"writable by others"):
        serialization.load(target)


def test_a_failed_dump_leaves_no_file(tmp_path):
    target = tmp_path / "value.pkl"
    with pytest.raises(TypeError):
        serialization.dump([Blob(bytearray(LARGE)), threading.Lock()], target)
    assert list(tmp_path.iterdir()) == []


def test_loading_a_plain_value_does_not_import_cloudpickle(tmp_path):
    target = tmp_path / "value.pkl"
    serialization.dump({"numbers": list(range(5))}, target)
    code = (
        "import sys; from pathlib import Path; from offload.core import serialization; "
        f"assert serialization.load(Path({str(target)!r})) == {{'numbers': [0, 1, 2, 3, 4]}}; "
        "print('cloudpickle' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_plain_data_is_pickled_without_cloudpickle_and_the_rest_with_it(tmp_path):
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from offload.core import serialization\n"
        "folder = Path(sys.argv[1])\n"
        "serialization.dump({'plain': [1, 2.5, 'x']}, folder / 'plain.pkl', plain_first=True)\n"
        "print('cloudpickle' in sys.modules)\n"
        "serialization.dump(lambda x: x + 1, folder / 'lambda.pkl', plain_first=True)\n"
        "print('cloudpickle' in sys.modules)\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert shown == ["False", "True"], "cloudpickle only for what pickle cannot do"
    assert serialization.load(tmp_path / "plain.pkl") == {"plain": [1, 2.5, "x"]}
    assert serialization.load(tmp_path / "lambda.pkl")(1) == 2
