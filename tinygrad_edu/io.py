"""Save and load a state dict (name -> array) as an .npz file.

An .npz is a zip archive with one ``name.npy`` member per array; numpy, and any language with a
zip reader, can open it. Unlike a pickle it holds only data, so loading a file from someone else
cannot run their code: ``load`` reads every member with ``allow_pickle=False`` and rejects anything
else.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_edu.errors import InputError

# A fixed member timestamp: the same weights always give the same bytes, so checkpoints can be
# compared by hash.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)

# load's default limit on the array data it allocates: far above any model this library trains,
# far below what a compressed file can claim.
DEFAULT_MAX_BYTES = 2**31


def save(state_dict: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state_dict`` to ``path`` as an uncompressed .npz archive (what ``np.savez`` writes).

    Args:
        state_dict: str keys (e.g. ``model.state_dict()``'s ``"0.weight"``) to numpy arrays,
            Tensors (saved via ``.numpy()``, so device tensors are copied to the host) or numbers.
        path: str or pathlib path; ``.npz`` is appended when missing, as numpy does.

    Returns:
        The path written (with the ``.npz`` suffix).

    Raises:
        TypeError: a key is not a str, or a value is not numeric data (object arrays would need
            pickle, which ``load`` refuses).

    The file is written next to its destination and renamed at the end, so an interrupted save never
    leaves a half-written checkpoint under the final name.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"save: state_dict must be a dict of name -> array, got {type(state_dict).__name__}"
        )
    arrays = {_check_key(key): _to_array(key, value) for key, value in state_dict.items()}

    path = Path(os.fspath(path))
    if not path.name.endswith(".npz"):
        path = path.with_name(path.name + ".npz")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"save: folder {path.parent} does not exist (saving {path.name})")

    # The process id keeps two programs saving to the same path from sharing a temporary file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as archive:
            for key, array in arrays.items():
                # Written by hand rather than np.savez(path, **arrays): np.savez's own parameters
                # ("file", "allow_pickle") would collide with state-dict keys of those names.
                info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
                with archive.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, np.ndarray]:
    """Read an .npz archive written by ``save`` (or ``np.savez``) into a dict name -> numpy array.

    If ``path`` does not exist but ``path + ".npz"`` does, that file is read, mirroring ``save``.
    Pass the result to ``model.load_state_dict``.

    Args:
        path: str or pathlib path of the archive.
        max_bytes: the most array data, summed over all members, that loading may allocate
            (default 2**31, 2 GiB). Every member's .npy header is read, and the declared sizes
            (number of elements times item size) added up, before any array data is read: a small
            compressed file that declares or expands to a huge array (a "zip bomb") is refused
            without reaching memory.

    Raises:
        FileNotFoundError: no such file.
        TypeError: ``max_bytes`` is not an int.
        ValueError: ``max_bytes`` is not positive; the arrays declare more than ``max_bytes`` in
            total (the message names the member, its declared size, the total and ``max_bytes``);
            a member holds more or less data than its header declares; the file is truncated or
            corrupt, is not an .npz archive (a .npy, a pickle, a PyTorch checkpoint, ...), or holds
            an object array. The message names the path. Object arrays are refused from their
            header, before anything is unpickled: loading never executes code.
    """
    _check_max_bytes(max_bytes)
    path = _existing(Path(os.fspath(path)))
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":  # every zip archive, hence every .npz, starts with this
            raise InputError(
                f"load: {path} is not an .npz archive (it does not start with the zip signature); "
                "expected a file written by tg.save or np.savez"
            )
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            keys = [_key(path, name) for name in names]
            # First pass: headers only. The sizes they declare decide whether anything is read.
            headers = [_read_header(archive, name) for name in names]
            total = 0
            for name, (shape, _, dtype, _) in zip(names, headers):
                size = math.prod(shape) * dtype.itemsize
                total += size
                if total > max_bytes:
                    raise InputError(
                        f"load: {path}: member {name!r} declares shape {shape} of {dtype} = "
                        f"{size} bytes, bringing the declared total to {total} bytes, more than "
                        f"max_bytes={max_bytes}; pass a larger max_bytes if you trust the file"
                    )
            return {
                key: _read_data(archive, name, header)
                for key, name, header in zip(keys, names, headers)
            }
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise InputError(f"load: {path} is truncated or corrupt ({err})") from err


# ----- helpers -----


def _check_key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"save: keys must be str, got {key!r} of type {type(key).__name__}")
    return key


def _to_array(key: str, value: Any) -> np.ndarray:
    """A numpy array for one value: Tensors by ``.numpy()``, numbers as 0-d arrays."""
    if not isinstance(value, np.ndarray) and callable(getattr(value, "numpy", None)):
        value = value.numpy()  # a Tensor (a host copy when it lives on a GPU)
    if not isinstance(value, (np.ndarray, np.generic, int, float, bool, complex)):
        raise TypeError(
            f"save: value for {key!r} is a {type(value).__name__}; expected a numpy array, "
            "a Tensor or a number"
        )
    array = np.asarray(value)
    if array.dtype.kind not in "biufc":
        # NOTE: object arrays can only be stored by pickling, which load refuses on purpose.
        raise TypeError(
            f"save: value for {key!r} is an array of dtype {array.dtype}; expected numeric data "
            "(bool, int, float or complex)"
        )
    return array


def _existing(path: Path) -> Path:
    if path.is_file():
        return path
    with_suffix = path.with_name(path.name + ".npz")
    if not path.name.endswith(".npz") and with_suffix.is_file():
        return with_suffix
    raise FileNotFoundError(f"load: no such file: {path}")


def _key(path: Path, member: str) -> str:
    if not member.endswith(".npy"):
        # e.g. a PyTorch checkpoint, also a zip, whose members are pickles
        raise InputError(
            f"load: {path} is not an .npz archive: member {member!r} is not a .npy array"
        )
    return member[: -len(".npy")]


def _check_max_bytes(max_bytes: object) -> None:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)):
        raise TypeError(
            f"load: max_bytes must be an int, got {max_bytes!r} of type {type(max_bytes).__name__}"
        )
    if max_bytes <= 0:
        raise InputError(f"load: max_bytes must be positive, got {max_bytes}")


# shape, fortran_order, dtype, and the offset of the array data in the member
_Header = tuple[tuple[int, ...], bool, np.dtype, int]


def _read_header(archive: zipfile.ZipFile, name: str) -> _Header:
    """The shape, order and dtype a member's .npy header declares; no array data is read."""
    with archive.open(name) as member:
        try:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
            else:  # 3.0 only adds utf-8 field names, which numeric state dicts never have
                raise ValueError(f".npy format version {version} is not supported")
        except ValueError as err:
            raise InputError(
                f"load: {archive.filename}: member {name!r} cannot be read: {err}"
            ) from err
        offset = member.tell()
    if dtype.hasobject:
        # NOTE: object arrays are stored as pickles; refusing from the header means no byte of the
        # pickle is ever interpreted.
        raise InputError(
            f"load: {archive.filename}: member {name!r} holds an object array ({dtype}), which "
            "would need pickle; only numeric arrays are loaded"
        )
    if dtype.subdtype is not None:
        # A subarray dtype such as ('<f4', (2,)) hides extra dimensions inside the element; numpy
        # never writes one as a whole array's dtype.
        raise InputError(
            f"load: {archive.filename}: member {name!r} declares a subarray dtype {dtype}"
        )
    if any(d < 0 for d in shape):
        raise InputError(
            f"load: {archive.filename}: member {name!r} declares a negative shape {shape}"
        )
    return shape, fortran, dtype, offset


_CHUNK = 1 << 20  # read 1 MiB at a time into the array, so no second full-size copy is made


def _read_data(archive: zipfile.ZipFile, name: str, header: _Header) -> np.ndarray:
    """A member's array, allocated from its header and filled with at most that many bytes."""
    shape, fortran, dtype, offset = header
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    try:
        # zeros, not empty: a short member can never expose uninitialized memory (and calloc'd
        # pages cost nothing until written).
        flat = np.zeros(count, dtype=dtype)
    except MemoryError as err:
        raise InputError(
            f"load: {archive.filename}: member {name!r} declares {nbytes} bytes, more than this "
            "machine can allocate; lower max_bytes to refuse such files up front"
        ) from err
    with archive.open(name) as member:
        member.seek(offset)  # skip the header, checked by _read_header
        raw = memoryview(flat.view(np.uint8)) if nbytes else memoryview(b"")
        got = 0
        while got < nbytes:
            n = member.readinto(raw[got : got + _CHUNK])
            if n == 0:
                break
            got += n
        # One byte more tells a member longer than its header apart; reading to the end also makes
        # zipfile check the CRC.
        extra = member.read(1)
    if got < nbytes or extra:
        state = f"only {got}" if got < nbytes else "more than that"
        raise InputError(
            f"load: {archive.filename}: member {name!r} declares shape {shape} of {dtype} = "
            f"{nbytes} bytes, but holds {state}; the file is corrupt or lies about its size"
        )
    if fortran:
        return flat.reshape(shape[::-1]).transpose()
    return flat.reshape(shape)
