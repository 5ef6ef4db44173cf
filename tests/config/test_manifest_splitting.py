"""Manifest split conditions, dimension conditions and the splitting config."""

from __future__ import annotations

from types import ModuleType

import icechunk as ic
import pytest

import pyicechunk.config as pc

from ._reference import BOTH, plain


@BOTH
def test_split_variant_classes_and_payloads(m: ModuleType) -> None:
    S, D = m.ManifestSplitCondition, m.ManifestSplitDimCondition
    assert isinstance(S.AnyArray(), S.AnyArray)
    assert S.and_conditions([S.AnyArray()])._0 == [S.AnyArray()]
    assert S.name_matches("n").regex == "n"
    assert D.Axis(2)._0 == 2 and D.DimensionName("d")._0 == "d"


def test_dim_conditions_compare_by_value() -> None:
    # The reference compares these by identity; value equality is what dict keys need.
    D = pc.ManifestSplitDimCondition
    assert D.Axis(1) == D.Axis(1)
    assert D.Axis(1) != D.Axis(2)
    assert D.DimensionName("x") == D.DimensionName("x")
    assert D.Any() == D.Any()
    assert hash(D.Axis(1)) == hash(D.Axis(1))


@BOTH
def test_splitting_config_accepts_sequences_not_dicts(m: ModuleType) -> None:
    S, D = m.ManifestSplitCondition, m.ManifestSplitDimCondition
    cfg = m.ManifestSplittingConfig(((S.AnyArray(), ((D.Any(), 0),)),))
    assert cfg.split_sizes == [(S.AnyArray(), [(D.Any(), 0)])] or m is ic  # ic: identity dims
    with pytest.raises(TypeError):
        m.ManifestSplittingConfig({S.AnyArray(): [(D.Any(), 1)]})
    round_trip = m.ManifestSplittingConfig.from_dict(
        {S.name_matches("a"): {D.Axis(0): 1, D.Any(): 2}}
    ).to_dict()
    # Compared as data: the reference's dimension conditions compare by identity.
    assert [(plain(k), [(plain(d), n) for d, n in v.items()]) for k, v in round_trip.items()] == [
        (plain(S.name_matches("a")), [(plain(D.Axis(0)), 1), (plain(D.Any()), 2)])
    ]
