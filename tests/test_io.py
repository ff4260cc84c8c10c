"""tg.save / tg.load: .npz round trips, numpy interop, and refusal of unsafe or broken files."""

import io
import pickle
import tracemalloc
import zipfile

import numpy as np
import pytest

from tinygrad_edu.io import load, save

# ----- a pickle trap: unpickling a _Trap calls _spring, which records that code ran -----

SPRUNG: list[str] = []


def _spring() -> str:
    SPRUNG.append("code ran during load")
    return "sprung"


class _Trap:
    def __reduce__(self):
        return (_spring, ())


@pytest.fixture(autouse=True)
def _reset_trap():
    SPRUNG.clear()
    yield
    SPRUNG.clear()


def _state() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "0.weight": rng.standard_normal((3, 4)).astype(np.float32),
        "0.bias": rng.standard_normal(3),  # float64
        "labels": rng.integers(-5, 5, size=7, dtype=np.int64),
        "mask": np.array([True, False, True]),
        "scalar": np.float64(2.5),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "fortran": np.asfortranarray(rng.standard_normal((2, 3))),
    }


# ----- round trips -----


def test_round_trip_keeps_names_dtypes_shapes_values_and_order(tmp_path):
    state = _state()
    written = save(state, tmp_path / "model.npz")
    loaded = load(written)
    assert list(loaded) == list(state)
    for key, expected in state.items():
        got = loaded[key]
        assert isinstance(got, np.ndarray)
        assert got.dtype == np.asarray(expected).dtype, key
        assert got.shape == np.shape(expected), key
        np.testing.assert_array_equal(got, expected)


def test_suffix_is_appended_as_numpy_does_and_load_finds_it(tmp_path):
    path = save({"w": np.ones(2)}, tmp_path / "checkpoint")
    assert path == tmp_path / "checkpoint.npz"
    assert path.is_file() and not (tmp_path / "checkpoint").exists()
    np.testing.assert_array_equal(load(tmp_path / "checkpoint")["w"], np.ones(2))
    np.testing.assert_array_equal(load(str(path))["w"], np.ones(2))


def test_str_path(tmp_path):
    save({"w": np.arange(3)}, str(tmp_path / "a.npz"))
    np.testing.assert_array_equal(load(str(tmp_path / "a.npz"))["w"], np.arange(3))


def test_numpy_reads_our_files_and_we_read_numpys(tmp_path):
    state = _state()
    save(state, tmp_path / "ours.npz")
    with np.load(tmp_path / "ours.npz", allow_pickle=False) as theirs:
        for key, value in state.items():
            np.testing.assert_array_equal(theirs[key], value)

    np.savez(tmp_path / "plain.npz", a=np.arange(4), b=np.eye(2, dtype=np.float32))
    np.savez_compressed(tmp_path / "packed.npz", a=np.arange(4))
    plain, packed = load(tmp_path / "plain.npz"), load(tmp_path / "packed.npz")
    np.testing.assert_array_equal(plain["b"], np.eye(2, dtype=np.float32))
    assert plain["b"].dtype == np.float32
    np.testing.assert_array_equal(packed["a"], np.arange(4))


def test_keys_that_are_numpy_savez_parameter_names(tmp_path):
    # np.savez(path, **d) would fail or misbehave on these names; save must not.
    state = {"file": np.ones(1), "allow_pickle": np.zeros(2), "args": np.arange(3)}
    loaded = load(save(state, tmp_path / "names"))
    for key, value in state.items():
        np.testing.assert_array_equal(loaded[key], value)


def test_tensor_values_are_saved_through_numpy(tmp_path):
    from tinygrad_edu.tensor import Tensor

    w = Tensor(np.arange(6, dtype=np.float64).reshape(2, 3), requires_grad=True)
    labels = Tensor([1, 0, 2], dtype="int64")
    loaded = load(save({"w": w, "labels": labels}, tmp_path / "t"))
    np.testing.assert_array_equal(loaded["w"], np.arange(6, dtype=np.float64).reshape(2, 3))
    assert loaded["w"].dtype == np.float64
    assert loaded["labels"].dtype == np.int64
    np.testing.assert_array_equal(loaded["labels"], [1, 0, 2])


def test_same_state_gives_same_bytes_and_no_temporary_file_is_left(tmp_path):
    save(_state(), tmp_path / "a.npz")
    save(_state(), tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.npz"]


def test_overwrite_replaces_the_old_file(tmp_path):
    save({"old": np.ones(3)}, tmp_path / "m.npz")
    save({"new": np.zeros(2)}, tmp_path / "m.npz")
    assert list(load(tmp_path / "m.npz")) == ["new"]


# ----- save: bad input -----


@pytest.mark.parametrize(
    "state, fragment",
    [
        ({1: np.ones(2)}, "keys must be str"),
        ({"w": np.array([_Trap()], dtype=object)}, "object"),
        ({"w": np.array(["a", "b"])}, "<U1"),
        ({"w": "text"}, "str"),
        ({"w": [1.0, 2.0]}, "list"),
        ([("w", np.ones(2))], "dict"),
    ],
)
def test_save_rejects_what_load_could_not_read_back(tmp_path, state, fragment):
    with pytest.raises(TypeError, match="save") as info:
        save(state, tmp_path / "bad.npz")
    assert fragment in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary


def test_save_into_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="save") as info:
        save({"w": np.ones(1)}, tmp_path / "no_such_dir" / "m")
    assert "no_such_dir" in str(info.value)


# ----- load: broken, foreign and unsafe files -----


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="load") as info:
        load(tmp_path / "nope.npz")
    assert "nope.npz" in str(info.value)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_load_truncated_file_raises_value_error_naming_the_path(tmp_path, keep):
    path = save(_state(), tmp_path / "full.npz")
    data = path.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match="load") as info:
        load(cut)
    assert str(cut) in str(info.value)


def test_load_corrupt_member_data_raises_value_error(tmp_path):
    path = save({"w": np.zeros(1000)}, tmp_path / "m.npz")
    data = bytearray(path.read_bytes())
    data[400:410] = b"\xff" * 10  # inside the array's bytes: the zip CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="load") as info:
        load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, this is a text file\n", b"\x00" * 64, b"PK\x03"],
    ids=["empty", "text", "zeros", "short"],
)
def test_load_foreign_file(tmp_path, content):
    path = tmp_path / "foreign.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="load") as info:
        load(path)
    assert str(path) in str(info.value)


def test_load_npy_file_is_not_a_state_dict(tmp_path):
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(ValueError, match="load") as info:
        load(tmp_path / "single.npy")
    assert "single.npy" in str(info.value)


def test_load_plain_pickle_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "weights.npz"
    path.write_bytes(pickle.dumps({"w": _Trap()}))
    with pytest.raises(ValueError, match="load"):
        load(path)
    assert SPRUNG == []


def test_load_zip_with_a_pickle_member_is_refused(tmp_path):
    # What a PyTorch checkpoint looks like: a zip whose members are not .npy arrays.
    path = tmp_path / "torch_like.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(_Trap()))
    with pytest.raises(ValueError, match="load") as info:
        load(path)
    assert "data.pkl" in str(info.value) and str(path) in str(info.value)
    assert SPRUNG == []


def test_load_object_array_is_refused_before_anything_is_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, w=np.ones(2), evil=np.array([_Trap()], dtype=object))

    # The trap is armed: numpy with allow_pickle=True does run the code.
    with np.load(path, allow_pickle=True) as unsafe:
        assert unsafe["evil"][0] == "sprung"
    assert SPRUNG == ["code ran during load"]
    SPRUNG.clear()

    with pytest.raises(ValueError, match="load") as info:
        load(path)
    assert str(path) in str(info.value) and "evil" in str(info.value)
    assert SPRUNG == []


# ----- load: max_bytes, zip bombs and headers that lie -----


def _npy_header(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    """A .npy header (magic included) declaring ``shape`` and ``dtype``, without array data."""
    out = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue()


def _write_member(path, name: str, header: bytes, n_zero_mib: int = 0, data: bytes = b""):
    """A deflated zip with one member: ``header``, then ``data``, then ``n_zero_mib`` MiB of zeros.

    The zeros are written a MiB at a time, so a bomb is built without holding it in memory.
    """
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open(name, "w", force_zip64=True) as member:
            member.write(header + data)
            zeros = bytes(2**20)
            for _ in range(n_zero_mib):
                member.write(zeros)
    return path


def _peak_bytes_while(fn) -> int:
    """The most memory Python and numpy held at once while ``fn`` ran (tracemalloc sees both)."""
    tracemalloc.start()
    try:
        fn()
    except ValueError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_zip_bomb_is_refused_from_its_header(tmp_path):
    # 32 MiB of zeros compress to a few tens of KiB; the header claims 2**28 float32 = 1 GiB.
    path = _write_member(tmp_path / "bomb.npz", "w.npy", _npy_header((2**28,)), n_zero_mib=32)
    assert path.stat().st_size < 2**20
    with pytest.raises(ValueError, match="load") as info:
        load(path, max_bytes=2**20)
    message = str(info.value)
    assert str(path) in message and "'w.npy'" in message
    assert "(268435456,)" in message and f"{2**30} bytes" in message
    assert "max_bytes=1048576" in message
    # Refused before anything large was allocated or decompressed.
    assert _peak_bytes_while(lambda: load(path, max_bytes=2**20)) < 2**20


def test_declared_sizes_are_summed_over_members(tmp_path):
    state = {"a": np.ones(100, dtype=np.float64), "b": np.arange(50, dtype=np.int32)}
    path = save(state, tmp_path / "two.npz")
    total = 100 * 8 + 50 * 4
    with pytest.raises(ValueError, match="load") as info:
        load(path, max_bytes=total - 1)
    message = str(info.value)
    # "a" alone fits; "b" brings the total over the limit and is the member named.
    assert "'b.npy'" in message and "200 bytes" in message
    assert f"total to {total} bytes" in message and f"max_bytes={total - 1}" in message

    loaded = load(path, max_bytes=total)  # exactly at the limit is allowed
    np.testing.assert_array_equal(loaded["a"], state["a"])
    np.testing.assert_array_equal(loaded["b"], state["b"])


def test_load_under_the_default_limit_round_trips(tmp_path):
    state = _state()
    loaded = load(save(state, tmp_path / "m.npz"))
    for key, array in state.items():
        assert loaded[key].dtype == np.asarray(array).dtype
        np.testing.assert_array_equal(loaded[key], array)


def test_member_longer_than_its_header_is_refused_after_a_bounded_read(tmp_path):
    # The header declares 4 float32 (16 bytes); the member expands to 32 MiB.
    path = _write_member(tmp_path / "liar.npz", "w.npy", _npy_header((4,)), n_zero_mib=32)
    with pytest.raises(ValueError, match="load") as info:
        load(path)
    message = str(info.value)
    assert "'w.npy'" in message and "16 bytes" in message and "more than that" in message
    assert _peak_bytes_while(lambda: load(path)) < 2**20


def test_member_shorter_than_its_header_is_refused(tmp_path):
    data = np.arange(10, dtype="<f4").tobytes()
    path = _write_member(tmp_path / "short.npz", "w.npy", _npy_header((1000,)), data=data)
    with pytest.raises(ValueError, match="load") as info:
        load(path)
    message = str(info.value)
    assert "'w.npy'" in message and "4000 bytes" in message and "only 40" in message


def test_fortran_order_members_keep_their_values(tmp_path):
    array = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    path = tmp_path / "f.npz"
    np.savez(path, f=array)
    np.testing.assert_array_equal(load(path)["f"], array)


@pytest.mark.parametrize("bad", [0, -1])
def test_max_bytes_must_be_positive(tmp_path, bad):
    path = save({"w": np.ones(2)}, tmp_path / "m.npz")
    with pytest.raises(ValueError, match="load: max_bytes") as info:
        load(path, max_bytes=bad)
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("bad", [1.5, "1000", True, None])
def test_max_bytes_must_be_an_int(tmp_path, bad):
    path = save({"w": np.ones(2)}, tmp_path / "m.npz")
    with pytest.raises(TypeError, match="load: max_bytes"):
        load(path, max_bytes=bad)


@pytest.mark.parametrize(
    "header, fragment",
    [
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", "negative shape"),
        ("{'descr': ('<f4', (2,)), 'fortran_order': False, 'shape': (3,), }", "subarray"),
        ("{'descr': '<f4', 'shape': (3,), }", "cannot be read"),
    ],
    ids=["negative", "subarray", "missing_key"],
)
def test_malformed_headers_are_refused_naming_the_member(tmp_path, header, fragment):
    # Written by hand: numpy's own header writer would not produce these.
    text = header + " " * (63 - (10 + len(header)) % 64) + "\n"  # pad to 64 bytes, as numpy does
    raw = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1")
    path = _write_member(tmp_path / "bad.npz", "w.npy", raw, data=bytes(24))
    with pytest.raises(ValueError, match="load") as info:
        load(path)
    message = str(info.value)
    assert str(path) in message and "'w.npy'" in message and fragment in message
