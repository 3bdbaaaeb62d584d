"""The numeric wire format between the student's kernel and the trusted harness.

Only plain numbers cross the boundary: every value is an array of a whitelisted dtype, sent as
``{"dtype": "float64", "shape": [3, 4], "data": "<base64 of the C-ordered bytes>"}``. The trusted
side checks the dtype, the shape and that the byte count matches *before* it builds anything
(``numpy.frombuffer`` on bytes it already holds), so no message can make it unpickle, run code or
allocate more than it received. Objects, strings and custom classes cannot be encoded at all.
"""
from __future__ import annotations

import base64
import binascii

import numpy as np

# What may arrive: booleans, integers and IEEE floats (no objects, strings, complex or void).
DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64"}
MAX_BYTES = 256 * 2**20  # one value; the session also bounds a whole reply


class WireError(ValueError):
    """A value that is not a plain numeric array (the message says what it was)."""


def decode(message, max_bytes: int = MAX_BYTES) -> np.ndarray:
    """The array described by ``message``, checked before it is built; raises WireError otherwise."""
    if not isinstance(message, dict) or set(message) != {"dtype", "shape", "data"}:
        raise WireError("not an encoded array")
    dtype, shape, data = message["dtype"], message["shape"], message["data"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise WireError(f"dtype {dtype!r} is not a plain numeric type")
    if not isinstance(shape, list) or len(shape) > 32 or not all(type(d) is int and 0 <= d for d in shape):
        raise WireError("malformed shape")
    if not isinstance(data, str) or len(data) > (max_bytes * 4) // 3 + 4:
        raise WireError(f"more than {max_bytes / 2**20:.0f} MB")
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):  # (found by the property tests: any text may arrive)
        raise WireError("data is not base64") from None
    itemsize = np.dtype(dtype).itemsize
    count = 1
    for d in shape:
        count *= d
    if count * itemsize != len(raw):
        raise WireError(f"shape {tuple(shape)} does not match {len(raw)} bytes of {dtype}")
    array = np.frombuffer(raw, dtype=dtype).reshape(tuple(shape))
    return array.copy()  # writable, owned
