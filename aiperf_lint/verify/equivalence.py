"""Are two ``run()`` results equivalent? Exact for ints/strings/bools, tolerant for floats.

Runs inside the child process that already imported the pair's libraries, so NumPy,
pandas and torch are imported only when a result actually contains their objects.
``compare`` returns None when equivalent, else a one-line description of the first
difference with its location (e.g. ``result[2]['loss']: 0.5 vs 0.6``).
"""

from __future__ import annotations

import cmath
import numbers
from collections.abc import Mapping

EXACT_SCALARS = (str, bytes, bool, type(None))


class Mismatch(Exception):
    """Raised at the first difference; the message says where and what."""


def compare(expected, actual, rtol: float, atol: float) -> str | None:
    try:
        _compare(expected, actual, "result", rtol, atol)
    except Mismatch as exc:
        return str(exc)
    return None


def _compare(expected, actual, where: str, rtol: float, atol: float) -> None:
    kind = _kind(expected)
    if kind != _kind(actual):
        raise Mismatch(f"{where}: type differs: {_type_name(expected)} vs {_type_name(actual)}")
    COMPARERS[kind](expected, actual, where, rtol, atol)


def _kind(value) -> str:
    module = type(value).__module__.split(".")[0]
    if module == "torch" and type(value).__name__ in ("Tensor", "Parameter"):
        return "tensor"
    if module == "pandas" and type(value).__name__ in ("DataFrame", "Series", "Index"):
        return "pandas-" + type(value).__name__
    if module == "numpy" and type(value).__name__ == "ndarray":
        return "ndarray"
    if isinstance(value, bool) or _is_numpy_bool(value):
        return "bool"
    if isinstance(value, numbers.Integral):
        return "int"  # Python and NumPy integers compare by value, exactly
    if isinstance(value, numbers.Real):
        return "float"
    if isinstance(value, numbers.Complex):
        return "complex"
    if isinstance(value, (list, tuple)):
        return type(value).__name__
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, (set, frozenset)):
        return "set"
    if isinstance(value, EXACT_SCALARS):
        return type(value).__name__
    return "other"


def _is_numpy_bool(value) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ == "bool"


def _type_name(value) -> str:
    cls = type(value)
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__name__}"


def _close(expected, actual, rtol: float, atol: float) -> bool:
    """numpy.isclose semantics: NaN equals NaN, infinities must match, tolerance is
    relative to the expected (``before``) value."""
    if expected == actual:
        return True
    e, a = complex(expected), complex(actual)
    if cmath.isnan(e) or cmath.isnan(a):
        return cmath.isnan(e) and cmath.isnan(a)
    if cmath.isinf(e) or cmath.isinf(a):
        return False
    return abs(a - e) <= atol + rtol * abs(e)


def _compare_exact(expected, actual, where, rtol, atol) -> None:
    if expected != actual:
        raise Mismatch(f"{where}: {_short(expected)} vs {_short(actual)}")


def _compare_number(expected, actual, where, rtol, atol) -> None:
    if not _close(expected, actual, rtol, atol):
        raise Mismatch(f"{where}: {expected!r} vs {actual!r} (rtol={rtol:g}, atol={atol:g})")


def _compare_sequence(expected, actual, where, rtol, atol) -> None:
    if len(expected) != len(actual):
        raise Mismatch(f"{where}: length differs: {len(expected)} vs {len(actual)}")
    for index, (e, a) in enumerate(zip(expected, actual)):
        _compare(e, a, f"{where}[{index}]", rtol, atol)


def _compare_mapping(expected, actual, where, rtol, atol) -> None:
    missing, extra = expected.keys() - actual.keys(), actual.keys() - expected.keys()
    if missing or extra:
        raise Mismatch(
            f"{where}: keys differ: missing {sorted(map(repr, missing))}, extra {sorted(map(repr, extra))}"
        )
    for key in expected:
        _compare(expected[key], actual[key], f"{where}[{key!r}]", rtol, atol)


def _compare_other(expected, actual, where, rtol, atol) -> None:
    if type(expected) is not type(actual):
        raise Mismatch(f"{where}: type differs: {_type_name(expected)} vs {_type_name(actual)}")
    try:
        equal = bool(expected == actual)
    except Exception as exc:  # e.g. an __eq__ that returns an array
        raise Mismatch(f"{where}: cannot compare {_type_name(expected)} objects: {exc}") from None
    if not equal:
        raise Mismatch(f"{where}: {_short(expected)} vs {_short(actual)} (compared with ==)")


def _compare_ndarray(expected, actual, where, rtol, atol) -> None:
    import numpy as np

    _check_shape_dtype(expected.shape, actual.shape, expected.dtype, actual.dtype, where)
    if expected.dtype.kind in "fc":
        close = np.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
    else:
        close = np.asarray(expected == actual)
    if not close.all():
        bad = np.argwhere(~close)
        first = tuple(int(i) for i in bad[0])
        _raise_elementwise(
            where, len(bad), close.size, first, expected[first], actual[first], rtol, atol
        )


def _compare_tensor(expected, actual, where, rtol, atol) -> None:
    import torch

    expected, actual = expected.detach().cpu(), actual.detach().cpu()
    _check_shape_dtype(
        tuple(expected.shape), tuple(actual.shape), expected.dtype, actual.dtype, where
    )
    if expected.is_floating_point() or expected.is_complex():
        close = torch.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
    else:
        close = expected == actual
    if not bool(close.all()):
        bad = torch.nonzero(~close)  # no .numpy(): torch may be installed without NumPy
        first = tuple(int(i) for i in bad[0]) if bad.numel() else ()
        _raise_elementwise(
            where,
            len(bad),
            close.numel(),
            first,
            expected[first].item(),
            actual[first].item(),
            rtol,
            atol,
        )


def _check_shape_dtype(expected_shape, actual_shape, expected_dtype, actual_dtype, where) -> None:
    if expected_shape != actual_shape:
        raise Mismatch(f"{where}: shape differs: {expected_shape} vs {actual_shape}")
    if expected_dtype != actual_dtype:
        raise Mismatch(f"{where}: dtype differs: {expected_dtype} vs {actual_dtype}")


def _raise_elementwise(where, n_bad, n_total, first, expected, actual, rtol, atol) -> None:
    raise Mismatch(
        f"{where}: {n_bad} of {n_total} elements differ; first at {list(first)}: "
        f"{expected!r} vs {actual!r} (rtol={rtol:g}, atol={atol:g})"
    )


def _compare_dataframe(expected, actual, where, rtol, atol) -> None:
    from pandas.testing import assert_index_equal

    _pandas_assert(assert_index_equal, expected.columns, actual.columns, f"{where}.columns")
    _pandas_assert(assert_index_equal, expected.index, actual.index, f"{where}.index")
    for position, column in enumerate(expected.columns):
        _compare_series(
            expected.iloc[:, position], actual.iloc[:, position], f"{where}[{column!r}]", rtol, atol
        )


def _compare_series(expected, actual, where, rtol, atol) -> None:
    from pandas.testing import assert_series_equal

    # pandas applies rtol/atol to integer columns too once either is given: keep ints exact.
    if expected.dtype.kind in "fc" and actual.dtype.kind in "fc":
        options = {"check_exact": False, "rtol": rtol, "atol": atol}
    else:
        options = {"check_exact": True}
    _pandas_assert(assert_series_equal, expected, actual, where, **options)


def _compare_index(expected, actual, where, rtol, atol) -> None:
    from pandas.testing import assert_index_equal

    _pandas_assert(assert_index_equal, expected, actual, where)


def _pandas_assert(check, expected, actual, where, **options) -> None:
    try:
        check(expected, actual, **options)
    except AssertionError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = lines[0] if lines else "differ"
        if len(lines) > 1 and "first diff" in lines[-1]:
            detail += "; " + lines[-1]
        raise Mismatch(f"{where}: {detail}") from None


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


COMPARERS = {
    "bool": _compare_exact,
    "int": _compare_exact,
    "str": _compare_exact,
    "bytes": _compare_exact,
    "NoneType": _compare_exact,
    "set": _compare_exact,
    "float": _compare_number,
    "complex": _compare_number,
    "list": _compare_sequence,
    "tuple": _compare_sequence,
    "mapping": _compare_mapping,
    "ndarray": _compare_ndarray,
    "tensor": _compare_tensor,
    "pandas-DataFrame": _compare_dataframe,
    "pandas-Series": _compare_series,
    "pandas-Index": _compare_index,
    "other": _compare_other,
}
