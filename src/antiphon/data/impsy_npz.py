"""IMPSY's dataset files: ``.npz`` archives holding one key, ``perfs``.

``perfs`` is a pickled NumPy object array with one float32 (N_i, D) array per
performance, rows ``[dt, v1, ...]``. When every performance has the same length NumPy
builds an (P, N, D) object array of Python floats instead; both load here, and so does
a plain numeric (P, N, D) array.

Unpickling runs whatever callables a file names, so a dataset someone sent you could
run any code on load. ``read`` unpickles through ``_NumpyOnlyUnpickler``, which can
build arrays, dtypes and scalars and refuses everything else before anything runs.
"""

from __future__ import annotations

import codecs
import io
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from antiphon.errors import AntiphonError

KEY = "perfs"


class UnsafeDatasetError(AntiphonError):
    """A dataset whose pickle names something other than NumPy's array building blocks."""


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """What protocol-2 pickles call to turn a str back into bytes, and nothing more."""
    try:
        latin1 = codecs.lookup(encoding).name == "iso8859-1"
    except LookupError:
        latin1 = False
    if not latin1:
        raise UnsafeDatasetError(f"pickle asks for encoding {encoding!r}; only latin-1 is allowed")
    return text.encode("latin-1", errors)


def _allowed_globals() -> dict[tuple[str, str], Callable[..., Any] | type]:
    reconstruct = np.ndarray.__reduce__(np.empty(0))[0]  # numpy's _reconstruct
    scalar = np.float32(0).__reduce__()[0]  # numpy's scalar
    allowed: dict[tuple[str, str], Callable[..., Any] | type] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for core in ("numpy.core.multiarray", "numpy._core.multiarray"):  # NumPy 1 and 2 names
        allowed[(core, "_reconstruct")] = reconstruct
        allowed[(core, "scalar")] = scalar
    return allowed


class _NumpyOnlyUnpickler(pickle.Unpickler):
    _allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafeDatasetError(
                f"refusing to load {module}.{name}: a dataset may only contain NumPy arrays"
            ) from None


def _read_member(data: bytes) -> np.ndarray:
    """One .npy file; object arrays go through the restricted unpickler."""
    f = io.BytesIO(data)
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        _, _, dtype = np.lib.format.read_array_header_1_0(f)
    else:
        _, _, dtype = np.lib.format.read_array_header_2_0(f)
    if not dtype.hasobject:
        return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    array = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    if not isinstance(array, np.ndarray):
        raise AntiphonError(f"'{KEY}' holds a {type(array).__name__}, not an array")
    return array


def read(path: str | Path) -> list[np.ndarray]:
    """The performances of an IMPSY dataset file, as float32 (N_i, D) arrays."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if f"{KEY}.npy" not in names:
                raise AntiphonError(
                    f"{path} has no '{KEY}' array (it holds {', '.join(names) or 'nothing'}); "
                    "it is not an IMPSY dataset"
                )
            perfs = _read_member(archive.read(f"{KEY}.npy"))
    except UnsafeDatasetError as exc:
        raise UnsafeDatasetError(f"{path}: {exc}; it was not loaded") from None
    except AntiphonError:
        raise
    except Exception as exc:  # a crafted pickle can fail in many ways; none may escape
        raise AntiphonError(f"{path} is not a readable .npz dataset ({exc})") from None
    return _performances(path, perfs)


def _performances(path: Path, perfs: np.ndarray) -> list[np.ndarray]:
    # 1-D: one array per performance; 3-D: equal lengths made numpy build (P, N, D).
    if perfs.ndim in (1, 3):
        items = list(perfs)
    else:
        raise AntiphonError(f"{path}: '{KEY}' has shape {perfs.shape}, expected a list of arrays")
    out = []
    for i, item in enumerate(items):
        try:
            array = np.asarray(item, dtype=np.float32)
        except (TypeError, ValueError):
            raise AntiphonError(f"{path}: performance {i} is not numeric") from None
        if array.size == 0:
            array = array.reshape(0, out[0].shape[1] if out else 2)
        if array.ndim != 2:
            raise AntiphonError(
                f"{path}: performance {i} has shape {array.shape}, expected (events, dimension)"
            )
        out.append(array)
    dimensions = {a.shape[1] for a in out if len(a)}
    if len(dimensions) > 1:
        raise AntiphonError(f"{path}: performances have different dimensions {sorted(dimensions)}")
    if dimensions:
        d = dimensions.pop()
        out = [a if len(a) else np.zeros((0, d), np.float32) for a in out]
    return out


def to_bytes(performances: list[np.ndarray]) -> bytes:
    """Performances as IMPSY writes them: a compressed .npz of a 1-D object array.

    NumPy 2 names its modules ``numpy._core`` in pickles; IMPSY installs with NumPy
    1.26.1 or later read that, older ones do not.
    """
    perfs = np.empty(len(performances), dtype=object)
    for i, performance in enumerate(performances):
        perfs[i] = np.asarray(performance, dtype=np.float32)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{KEY: perfs})
    return buffer.getvalue()
