"""Array type aliases shared by the analytics modules."""

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]


def as_int_array(values: npt.ArrayLike) -> IntArray:
    return np.asarray(values, dtype=np.int64)


def as_float_array(values: npt.ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def as_bool_array(values: npt.ArrayLike) -> BoolArray:
    return np.asarray(values, dtype=np.bool_)


def safe_share(numerator: npt.ArrayLike, denominator: npt.ArrayLike) -> FloatArray:
    """numerator / denominator, NaN where the denominator is zero (no data, not a zero rate)."""
    top = as_float_array(numerator)
    bottom = as_float_array(denominator)
    out = np.full(np.broadcast(top, bottom).shape, np.nan)
    np.divide(top, bottom, out=out, where=bottom > 0)
    return out
