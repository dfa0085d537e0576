"""IMPSY's dataset files: ``.npz`` archives holding one key, ``perfs``.

``perfs`` is a pickled NumPy object array with one float32 (N_i, D) array per
performance, rows ``[dt, v1, ...]``. When every performance has the same length NumPy
builds an (P, N, D) object array of Python floats instead; both load here, and so does
a plain numeric (P, N, D) array.

Unpickling runs whatever callables a file names, so a dataset someone sent you could
run any code on load. ``read`` unpickles through ``_NumpyOnlyUnpickler``, which can
build arrays, dtypes and scalars and refuses everything else before anything runs.
Pickles of every protocol name those few callables differently: Python 2 and
protocols 0-2 say ``__builtin__`` and ``_codecs.encode`` for bytes (IMPSY's 2019
datasets are protocol 2), NumPy 1 says ``numpy.core`` and NumPy 2 ``numpy._core``,
protocol 5 rebuilds contiguous arrays with ``_frombuffer``; each spelling maps to
the same checked callable.

Even NumPy's own building blocks are not safe with crafted arguments: restoring an
object array from a list shorter than its shape crashes the interpreter (NumPy 2.4,
found while writing this), a dtype's pickled state can set its internal flags, and
``bytes(n)`` allocates n bytes. So every array state is checked against its shape
before NumPy sees it, dtypes must equal a plain number or object dtype, and the
callables accept only the arguments NumPy's pickles pass.
"""

from __future__ import annotations

import codecs
import io
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from antiphon.data import npz
from antiphon.errors import AntiphonError

KEY = "perfs"
DTYPES = frozenset(
    np.dtype(f"{kind}{size}").str
    for kind in "fiu"
    for size in (1, 2, 4, 8)
    if f"{kind}{size}" != "f1"
)
"""The element types a dataset array may have (any byte order), besides objects."""


class UnsafeDatasetError(AntiphonError):
    """A dataset whose pickle names something other than NumPy's array building blocks."""


def _refuse(what: str) -> UnsafeDatasetError:
    return UnsafeDatasetError(f"refusing to load {what}: a dataset may only contain NumPy arrays")


def _checked_dtype(dtype: Any) -> np.dtype:
    """A dtype exactly as NumPy makes it for a number or an object type, nothing altered."""
    if not isinstance(dtype, np.dtype):
        raise _refuse(f"an array whose dtype is a {type(dtype).__name__}")
    plain = dtype.newbyteorder("<") if dtype.byteorder == ">" else dtype
    if not (plain.str in DTYPES or plain.str == "|O"):
        raise _refuse(f"an array of {dtype}")
    canonical = np.dtype(dtype.str)
    if (
        dtype.flags != canonical.flags
        or dtype.itemsize != canonical.itemsize
        or dtype.alignment != canonical.alignment
        or dtype.fields is not None
        or dtype.subdtype is not None
    ):
        raise _refuse(f"a {dtype} dtype with altered internals")
    return dtype


class _CheckedArray(np.ndarray):
    """What unpickled arrays are built as: the state is checked before NumPy uses it."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise _refuse("an array with a malformed state")
        shape, dtype, _, data = state[-4:]
        if not isinstance(shape, tuple) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
        ):
            raise _refuse(f"an array of shape {shape!r}")
        dtype = _checked_dtype(dtype)
        count = int(np.prod(shape, dtype=object))
        if dtype.hasobject:
            ok = isinstance(data, list) and len(data) == count
        else:
            ok = isinstance(data, bytes | str) and len(data) == count * dtype.itemsize
        if not ok:
            raise _refuse(f"an array whose data does not match its shape {shape}")
        super().__setstate__(state)


def _ndarray(*args: Any) -> None:
    """What a pickle gets for ``numpy.ndarray``: a name to pass to ``_reconstruct``; calling
    it could allocate any size."""
    raise _refuse("a direct call of numpy.ndarray")


def _reconstruct(subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
    """numpy's ``_reconstruct``: an empty array that the pickle's state then fills."""
    if subtype is not _ndarray or shape != (0,):
        raise _refuse("an array built other than NumPy pickles build them")
    return _CheckedArray((0,), np.uint8)


def _dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    """numpy's ``dtype``, always a fresh copy: the pickle's state is applied to it next,
    and must not alter NumPy's shared float32 dtype."""
    if not isinstance(spec, str) or len(spec) > 4:
        raise _refuse(f"a dtype made from {spec!r}")
    try:
        return np.dtype(spec, bool(align), True)
    except TypeError:
        raise _refuse(f"the dtype {spec!r}") from None


def _scalar(dtype: Any, data: Any) -> Any:
    """numpy's ``scalar``: one number from its bytes."""
    dtype = _checked_dtype(dtype)
    if dtype.hasobject or not isinstance(data, bytes | str) or len(data) != dtype.itemsize:
        raise _refuse("a scalar whose data does not match its dtype")
    if isinstance(data, str):
        data = data.encode("latin-1")
    return np.frombuffer(data, dtype, 1)[0]


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any, axis_order: Any = None) -> Any:
    """numpy's ``_frombuffer`` (protocol 5): an array over bytes the pickle holds."""
    dtype = _checked_dtype(dtype)
    if dtype.hasobject or not isinstance(buffer, bytes | bytearray) or order not in ("C", "F"):
        raise _refuse("an array buffer NumPy would not write")
    if axis_order is not None:
        raise _refuse("a strided array buffer")
    array = np.frombuffer(buffer, dtype)
    return array.reshape(shape, order=order)


def _bytes(*args: Any) -> bytes:
    """Protocols 0-2 write an empty ``bytes`` as a call with no arguments, nothing else."""
    if args:
        raise _refuse("a call of bytes() with arguments")
    return b""


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """What protocol 0-2 pickles call to turn a str back into bytes, and nothing more."""
    try:
        latin1 = codecs.lookup(encoding).name == "iso8859-1"
    except LookupError:
        latin1 = False
    if not latin1 or not isinstance(text, str):
        raise UnsafeDatasetError(f"pickle asks for encoding {encoding!r}; only latin-1 is allowed")
    return text.encode("latin-1", errors)


def _allowed_globals() -> dict[tuple[str, str], Callable[..., Any]]:
    allowed: dict[tuple[str, str], Callable[..., Any]] = {
        ("numpy", "ndarray"): _ndarray,
        ("numpy", "dtype"): _dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for builtins in ("__builtin__", "builtins"):  # Python 2 / protocol < 3, and 3
        allowed[(builtins, "bytes")] = _bytes
    for core in ("numpy.core", "numpy._core"):  # NumPy 1 and 2
        allowed[(f"{core}.multiarray", "_reconstruct")] = _reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = _scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = _frombuffer
    return allowed


class _NumpyOnlyUnpickler(pickle.Unpickler):
    _allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise _refuse(f"{module}.{name}") from None


def read(path: str | Path) -> list[np.ndarray]:
    """The performances of an IMPSY dataset file, as float32 (N_i, D) arrays."""
    path = Path(path)
    try:
        with npz.open_archive(path) as archive:
            if f"{KEY}.npy" not in archive.members:
                raise AntiphonError(
                    f"{path} has no '{KEY}' array (it holds "
                    f"{', '.join(archive.members) or 'nothing'}); it is not an IMPSY dataset"
                )
            member = npz.member(archive, KEY)
        if len(member.shape) not in (1, 3) or member.shape[0] > npz.MAX_PERFORMANCES:
            raise AntiphonError(
                f"{path}: '{KEY}' has shape {member.shape}, expected a list of at most "
                f"{npz.MAX_PERFORMANCES:,} performances"
            )
        if member.dtype.hasobject:
            perfs = _NumpyOnlyUnpickler(member.pickled, encoding="latin1").load()
            if not isinstance(perfs, np.ndarray):
                raise AntiphonError(f"'{KEY}' holds a {type(perfs).__name__}, not an array")
            if perfs.shape != member.shape:
                raise AntiphonError(f"'{KEY}' says shape {member.shape} but holds {perfs.shape}")
        else:
            perfs = member.numeric(path)
    except UnsafeDatasetError as exc:
        raise UnsafeDatasetError(f"{path}: {exc}; it was not loaded") from None
    except AntiphonError:
        raise
    except Exception as exc:  # a crafted pickle can fail in many ways; none may escape
        raise AntiphonError(f"{path} is not a readable .npz dataset ({exc})") from None
    return _performances(path, perfs)


def _performances(path: Path, perfs: np.ndarray) -> list[np.ndarray]:
    # 1-D: one array per performance; 3-D: equal lengths made numpy build (P, N, D).
    items = list(perfs)
    if not all(isinstance(item, np.ndarray) for item in items):
        raise AntiphonError(f"{path}: '{KEY}' holds something other than arrays")
    # A pickle can name one array a million times for a few bytes each: count first.
    events = sum(item.size for item in items)
    if events > npz.MAX_DATASET_BYTES // 4:
        raise AntiphonError(
            f"{path}: its performances hold {events:,} values; antiphon reads at most "
            f"{npz.MAX_DATASET_BYTES // 4:,}"
        )
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
