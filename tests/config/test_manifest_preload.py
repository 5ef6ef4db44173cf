"""Manifest preload conditions and the default preload condition, against icechunk 1.1.21."""

from __future__ import annotations

from types import ModuleType

import pyicechunk.config as pc

from ._reference import BOTH


@BOTH
def test_preload_variant_classes_and_payloads(m: ModuleType) -> None:
    P = m.ManifestPreloadCondition
    refs = P.num_refs(3, None)
    assert isinstance(refs, P.NumRefs) and isinstance(refs, P)
    assert getattr(refs, "from") == 3 and refs.to is None
    assert isinstance(P.true(), getattr(P, "True"))
    assert isinstance(P.false(), getattr(P, "False"))
    assert P.or_conditions([P.true()])._0 == [P.true()]
    assert P.path_matches("x").regex == "x"


def test_effective_default_preload_matches_reference_file() -> None:
    """The reference's own default preload condition, as it serialises it, reads back as ours."""
    from pyicechunk.format.config_yaml import config_from_yaml

    # This is the Rust default written through serde: And[Or[names...], NumRefs(..=1000)].
    names = [c.regex for c in pc.RepositoryConfig()._effective().preload_if._0[0]._0]
    doc = (
        "manifest:\n  preload:\n    preload_if: !and\n    - !or\n"
        + "".join(f"      - !name_matches\n        regex: '{n}'\n" for n in names)
        + "    - !num_refs\n      from: Unbounded\n      to: !Included 1000\n"
    )
    cfg = config_from_yaml(doc.encode())
    assert cfg.manifest is not None and cfg.manifest.preload is not None
    assert cfg.manifest.preload.preload_if == pc.RepositoryConfig()._effective().preload_if
