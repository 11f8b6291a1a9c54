"""Read a CTranslate2 ``model.bin`` (binary version >= 5) into named numpy arrays.

Layout (little-endian): u32 version; string spec name; u32 revision; u32 n_variables; per variable:
string name, u8 rank, u32 dims[rank], u8 dtype id, u32 n_bytes, raw bytes; then u32 n_aliases and
(alias, target) string pairs. A string is u16 length (incl. NUL) + bytes + NUL.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mmser.errors import MmserError

DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, None)  # id 5 = bfloat16 (not read here)


def _read(handle: BinaryIO, fmt: str):
    size = struct.calcsize(fmt)
    data = handle.read(size)
    if len(data) != size:
        raise EOFError
    return struct.unpack("<" + fmt, data)[0]


def _string(handle: BinaryIO) -> str:
    n = _read(handle, "H")
    return handle.read(n)[:-1].decode("utf-8")


def read_ct2_model(path: str | Path, prefix: str = "") -> tuple[str, dict[str, np.ndarray]]:
    """(spec name, {variable name: array}) of the variables whose names start with ``prefix``."""
    path = Path(path)
    out: dict[str, np.ndarray] = {}
    try:
        with open(path, "rb") as handle:
            version = _read(handle, "I")
            if version < 5:
                raise MmserError(f"{path}: CTranslate2 binary version {version} is too old to read (need >= 5)")
            spec = _string(handle)
            _read(handle, "I")  # revision
            for _ in range(_read(handle, "I")):
                name = _string(handle)
                shape = [_read(handle, "I") for _ in range(_read(handle, "B"))]
                dtype_id, n_bytes = _read(handle, "B"), _read(handle, "I")
                if not name.startswith(prefix):
                    handle.seek(n_bytes, 1)
                    continue
                dtype = DTYPES[dtype_id] if dtype_id < len(DTYPES) else None
                if dtype is None:
                    raise MmserError(f"{path}: variable {name} has dtype id {dtype_id}, which mmser cannot read")
                out[name] = np.frombuffer(handle.read(n_bytes), dtype=dtype).reshape(shape)
    except (EOFError, struct.error, UnicodeDecodeError):
        raise MmserError(f"{path}: truncated or not a CTranslate2 model.bin") from None
    return spec, out
