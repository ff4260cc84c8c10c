"""Save and load a state dict (name -> array) as an .npz file.

An .npz is a zip archive with one ``name.npy`` member per array; numpy, and any language with a
zip reader, can open it. Unlike a pickle it holds only data, so loading a file from someone else
cannot run their code: ``load`` reads every member with ``allow_pickle=False`` and rejects anything
else.
"""

from __future__ import annotations

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


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read an .npz archive written by ``save`` (or ``np.savez``) into a dict name -> numpy array.

    If ``path`` does not exist but ``path + ".npz"`` does, that file is read, mirroring ``save``.
    Pass the result to ``model.load_state_dict``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is truncated or corrupt, is not an .npz archive (a .npy, a pickle, a
            PyTorch checkpoint, ...), or holds an object array; the message names the path. Object
            arrays are refused before anything is unpickled: loading never executes code.
    """
    path = _existing(Path(os.fspath(path)))
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":  # every zip archive, hence every .npz, starts with this
            raise InputError(
                f"load: {path} is not an .npz archive (it does not start with the zip signature); "
                "expected a file written by tg.save or np.savez"
            )
    try:
        with zipfile.ZipFile(path) as archive:
            return {_key(path, name): _read_member(archive, name) for name in archive.namelist()}
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


def _read_member(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    with archive.open(name) as member:
        try:
            # read_array checks the header's dtype first: an object array raises here, before any
            # byte of the pickle is interpreted.
            return np.lib.format.read_array(member, allow_pickle=False)
        except ValueError as err:
            raise InputError(
                f"load: {archive.filename}: member {name!r} cannot be read: {err}"
            ) from err
