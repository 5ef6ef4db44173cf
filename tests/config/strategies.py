"""Hypothesis strategies for repository configs (pyicechunk's classes), every field included."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

import pyicechunk.config as pc

# Strings that YAML would read as something else unless quoted, and other corner cases.
SAFE_TEXT = st.one_of(
    st.sampled_from(
        ["", "yes", "null", "~", "1", "0x1", "007", "1e5", "a: b", "#x", "é", " x", "a\nb"]
    ),
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
        max_size=12,
    ),
)
# Any text YAML can carry through a round trip (it normalises \r and \x85 line breaks).
TEXT = st.one_of(
    SAFE_TEXT, st.text(max_size=12).filter(lambda s: "\r" not in s and "\x85" not in s)
)


def uint(bits: int, low: int = 0) -> st.SearchStrategy[int]:
    return st.integers(low, 2**bits - 1)


def opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def configs(
    text: st.SearchStrategy[str] = SAFE_TEXT, *, http_headers: bool = True
) -> st.SearchStrategy[pc.RepositoryConfig]:
    """Configs with any subset of fields set.

    ``http_headers=False`` leaves out HTTP store headers, which icechunk 1.1 cannot read.
    """
    P, S, D = pc.ManifestPreloadCondition, pc.ManifestSplitCondition, pc.ManifestSplitDimCondition
    # Map keys: FlexBuffer keys cannot hold NUL.
    key = text.filter(lambda s: "\x00" not in s)
    preload_cond = st.recursive(
        st.one_of(
            st.builds(P.path_matches, text),
            st.builds(P.name_matches, text),
            st.builds(P.num_refs, opt(uint(32)), opt(uint(32))),
            st.just(P.true()),
            st.just(P.false()),
        ),
        lambda inner: (
            st.builds(P.or_conditions, st.lists(inner, max_size=3))
            | st.builds(P.and_conditions, st.lists(inner, max_size=3))
        ),
        max_leaves=6,
    )
    split_cond = st.recursive(
        st.one_of(
            st.builds(S.path_matches, text), st.builds(S.name_matches, text), st.just(S.AnyArray())
        ),
        lambda inner: (
            st.builds(S.or_conditions, st.lists(inner, max_size=3))
            | st.builds(S.and_conditions, st.lists(inner, max_size=3))
        ),
        max_leaves=5,
    )
    dim = st.one_of(st.builds(D.Axis, uint(64)), st.builds(D.DimensionName, text), st.just(D.Any()))
    split_sizes = st.lists(
        st.tuples(split_cond, st.lists(st.tuples(dim, uint(32)), max_size=3)), max_size=3
    )
    s3_options = st.builds(
        pc.S3Options,
        opt(text),
        opt(text),
        st.booleans(),
        st.booleans(),
        st.booleans(),
        opt(uint(32)),
        st.booleans(),
        opt(st.sampled_from(list(pc.ChecksumAlgorithm))),
    )
    str_map = st.dictionaries(key, text, max_size=3)
    http_opts = st.dictionaries(key.filter(lambda k: k != "headers"), text, max_size=3)
    headers = opt(st.dictionaries(key, text, min_size=1, max_size=2)) if http_headers else st.none()
    store = st.one_of(
        st.builds(pc.ObjectStoreConfig.S3, s3_options),
        st.builds(pc.ObjectStoreConfig.S3Compatible, s3_options),
        st.builds(pc.ObjectStoreConfig.Tigris, s3_options),
        st.builds(pc.ObjectStoreConfig.Gcs, str_map),
        st.builds(pc.ObjectStoreConfig.Azure, str_map),
        st.builds(pc.ObjectStoreConfig.Http, http_opts, headers),
        st.builds(
            pc.ObjectStoreConfig.LocalFileSystem, st.sampled_from(["/data", "/a b/c", "rel"])
        ),
        st.just(pc.ObjectStoreConfig.InMemory()),
    )
    container = st.builds(pc.VirtualChunkContainer, text, store, opt(text))
    containers = st.dictionaries(key, container, max_size=3)
    retries = st.builds(pc.StorageRetriesSettings, opt(uint(16, 1)), opt(uint(32)), opt(uint(32)))
    return st.builds(
        pc.RepositoryConfig,
        opt(uint(16)),
        opt(uint(16)),
        opt(
            st.builds(
                pc.CompressionConfig, opt(st.just(pc.CompressionAlgorithm.Zstd)), opt(uint(8))
            )
        ),
        opt(uint(16)),
        opt(st.builds(pc.CachingConfig, *[opt(uint(64))] * 5)),
        opt(
            st.builds(
                pc.StorageSettings,
                opt(st.builds(pc.StorageConcurrencySettings, opt(uint(16, 1)), opt(uint(64, 1)))),
                opt(retries),
                opt(st.booleans()),
                opt(st.booleans()),
                opt(st.booleans()),
                opt(text),
                opt(text),
                opt(text),
                opt(uint(64)),
                opt(st.builds(pc.StorageTimeoutSettings, *[opt(uint(32))] * 4)),
            )
        ),
        opt(containers),
        opt(
            st.builds(
                pc.ManifestConfig,
                opt(
                    st.builds(
                        pc.ManifestPreloadConfig, opt(uint(32)), opt(preload_cond), opt(uint(32))
                    )
                ),
                opt(st.builds(pc.ManifestSplittingConfig, opt(split_sizes))),
                opt(
                    st.builds(
                        pc.ManifestVirtualChunkLocationCompressionConfig,
                        opt(uint(16)),
                        dictionary_max_training_samples=opt(uint(16)),
                        dictionary_max_size_bytes=opt(uint(32)),
                        compression_level=opt(st.integers(-(2**31), 2**31 - 1)),
                    )
                ),
                opt(uint(16)),
            )
        ),
        opt(st.builds(pc.RepoUpdateRetryConfig, opt(retries))),
        opt(uint(16)),
        opt(uint(16)),
    )


def newline_regex_config() -> pc.RepositoryConfig:
    """A config whose preload regex holds a newline, which icechunk 2.3.0's repr of a stored
    condition shows unescaped (Hypothesis found it; tests name it in ``@example`` so that it
    runs every time, not only while an example database remembers it)."""
    P = pc.ManifestPreloadCondition
    return pc.RepositoryConfig(
        manifest=pc.ManifestConfig(
            preload=pc.ManifestPreloadConfig(preload_if=P.path_matches("a\nb"))
        )
    )
