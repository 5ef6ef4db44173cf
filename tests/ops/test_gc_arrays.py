"""The array helpers of garbage collection agree with numpy's set operations.

Ids are 12-byte ``S12`` values; numpy drops trailing zero bytes of such values, so ids ending
in zeros are part of the data.
"""

from __future__ import annotations

import numpy as np
import pytest

from pyicechunk.ops.gc import _as_s12, _contained, _sorted_unique


def _ids(rng: np.random.Generator, n: int) -> np.ndarray:
    raw = rng.integers(0, 4, size=(n, 12), dtype=np.uint8)  # few values: many repeats
    raw[: n // 4, 8:] = 0  # trailing zeros
    return np.ascontiguousarray(raw).view("S12").ravel()


@pytest.mark.parametrize("n", [0, 1, 2, 50, 5000])
def test_sorted_unique_is_np_unique(n: int) -> None:
    values = _ids(np.random.default_rng(n), n)
    assert _sorted_unique(values).tolist() == np.unique(values).tolist()


@pytest.mark.parametrize(("n", "m"), [(0, 0), (10, 0), (0, 10), (300, 40), (4000, 4000)])
def test_contained_is_np_isin(n: int, m: int) -> None:
    rng = np.random.default_rng(n + m)
    ids, keep = _ids(rng, n), _sorted_unique(_ids(rng, m))
    assert _contained(ids, keep).tolist() == np.isin(ids, keep).tolist()
    # Kept ids from a Python set, as the phases build them, are found the same way.
    from_set = _as_s12(bytes(k).ljust(12, b"\0") for k in keep.tolist())
    assert _contained(ids, from_set).tolist() == np.isin(ids, keep).tolist()
