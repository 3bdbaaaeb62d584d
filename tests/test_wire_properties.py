"""Property tests of ``autograder.harness.wire.decode``: every value from a student's kernel passes through it.

Whatever arrives (any JSON, any byte string, wrong or huge shapes, lying byte counts, every dtype name),
``decode`` returns a checked, owned array no larger than what it received, or raises ``WireError``;
it never unpickles or evaluates anything.
"""
from __future__ import annotations

import base64
import contextlib
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from autograder.harness import wire
from autograder.harness.wire import DTYPES, MAX_BYTES, WireError

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                                      max_size=4), max_leaves=12)
SHAPES = st.lists(st.integers(min_value=0, max_value=2**62), max_size=6)
# Every dtype name numpy knows, and the dangerous ones spelled several ways.
OTHER_DTYPES = ["object", "O", "|O", "V8", "<U3", "S4", "complex128", "c8", "float64,int8", "datetime64[s]",
                "m8", "float128", "<f8", ">i4", "f8", "int", "float", "str", "bytes", "", " float64", "float64 "]


def encoded(array: np.ndarray) -> dict:
    """What the kernel-side agent sends for ``array``."""
    return {"dtype": array.dtype.name, "shape": list(array.shape), "data": base64.b64encode(array.tobytes()).decode()}


def checked(result: np.ndarray, message: dict) -> None:
    """A decoded array: owned and writable, of the declared dtype and shape, no bigger than what came."""
    assert isinstance(result, np.ndarray) and result.flags.owndata and result.flags.writeable
    assert result.dtype.name == message["dtype"] and list(result.shape) == message["shape"]
    assert result.nbytes == len(base64.b64decode(message["data"])) <= len(message["data"])


def decode_or_wire_error(message):
    try:
        result = decode(message)
    except WireError:
        return None
    checked(result, message)
    return result


def decode(message, **kwargs):
    """``wire.decode`` with every way to run code (unpickling, eval, exec) made to fail while it runs."""
    def refuse(*args, **kw):
        raise AssertionError("decode ran code")

    with contextlib.ExitStack() as stack:
        for target in ("pickle.loads", "pickle.load", "builtins.eval", "builtins.exec"):
            stack.enter_context(mock.patch(target, refuse))
        return wire.decode(message, **kwargs)


@SETTINGS
@given(hnp.arrays(st.sampled_from(sorted(DTYPES)), hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)))
def test_every_allowed_dtype_and_shape_round_trips(array):
    message = encoded(array)
    result = decode(message)
    checked(result, message)
    assert result.tobytes() == array.tobytes()   # bit for bit: NaNs and signed zeros too


@SETTINGS
@given(JSON)
def test_any_json_is_an_array_or_a_wire_error(value):
    decode_or_wire_error(value)


@SETTINGS
@given(st.sampled_from(sorted(DTYPES) + OTHER_DTYPES) | st.text(max_size=12), SHAPES, st.binary(max_size=256))
def test_any_bytes_with_any_shape_and_dtype(dtype, shape, raw):
    message = {"dtype": dtype, "shape": shape, "data": base64.b64encode(raw).decode()}
    result = decode_or_wire_error(message)
    if result is not None:
        assert dtype in DTYPES and result.tobytes() == raw


@SETTINGS
@given(st.sampled_from(sorted(DTYPES)), st.lists(st.integers(min_value=0, max_value=8), max_size=4), st.binary(max_size=64),
       st.integers(min_value=-8, max_value=8).filter(bool))
def test_a_lying_byte_count_is_refused(dtype, shape, raw, extra):
    count = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    raw = (raw * (count // max(1, len(raw)) + 2))[:max(0, count + extra)]
    if len(raw) == count:
        return
    with pytest.raises(WireError, match="does not match"):
        decode({"dtype": dtype, "shape": shape, "data": base64.b64encode(raw).decode()})


@SETTINGS
@given(st.sampled_from(sorted(DTYPES)), st.lists(st.integers(min_value=2**20, max_value=2**62), min_size=1, max_size=4),
       st.binary(max_size=64))
def test_a_huge_declared_shape_allocates_nothing(dtype, shape, raw):
    with pytest.raises(WireError):
        decode({"dtype": dtype, "shape": shape, "data": base64.b64encode(raw).decode()})


@SETTINGS
@given(st.text(max_size=64))
def test_any_text_as_data_is_an_array_or_a_wire_error(text):
    decode_or_wire_error({"dtype": "uint8", "shape": [len(text)], "data": text})


@SETTINGS
@given(st.fixed_dictionaries({"dtype": JSON, "shape": JSON, "data": JSON}))
def test_wrongly_typed_fields_are_wire_errors(message):
    decode_or_wire_error(message)


@pytest.mark.parametrize("shape", [[-1], [True, 2], [2.0], ["2"], [None], list(range(1, 40)), 3, "3", None])
def test_malformed_shapes_are_refused(shape):
    with pytest.raises(WireError):
        decode({"dtype": "float64", "shape": shape, "data": ""})


def test_more_than_the_limit_is_refused_before_it_is_decoded():
    with pytest.raises(WireError, match="MB"):
        decode({"dtype": "uint8", "shape": [64], "data": "A" * 400}, max_bytes=256)
    assert MAX_BYTES >= 2**20
