"""The repository config in serde's data model: the one shape both persisted forms share.

icechunk persists its Rust ``RepositoryConfig`` through serde: as YAML in spec-1 repositories
(``config.yaml``, FORMAT-V1 §8) and as a FlexBuffer inside the spec-2 ``repo`` object
(FORMAT-V2 §6.3). Both are the same tree: a struct is a map with every field present (unset
ones null), a unit enum variant is its name as a string, a newtype or struct variant is a
:class:`Tagged` value (YAML writes it as a tag, a FlexBuffer as a one-key map), tuples and
lists are lists. This module converts :class:`~pyicechunk.config.RepositoryConfig` to that
tree (:func:`config_to_tree`) and back (:func:`config_from_tree`); ``config_yaml`` and
``config_flex`` only translate the tree into their syntax.

Reading is serde's, with defaults on every optional field: missing keys and nulls are unset, a
known key with a value of the wrong kind raises :class:`~pyicechunk.exceptions.IcechunkError`
naming the key, and keys this version does not know are kept on the record that holds them
(``_unknown``), so that writing the config again writes them back. A leaf whose type only the
schema can decide (a YAML scalar) arrives as a :class:`Text`.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pyicechunk import config as cfg
from pyicechunk.config import (
    U32_MAX,
    record_fields,
    record_from_fields,
    record_unknown_keys,
    store_tag,
)
from pyicechunk.exceptions import IcechunkError

__all__ = ["Tagged", "Text", "config_from_tree", "config_to_tree", "plain_tree"]


P = cfg.ManifestPreloadCondition
S = cfg.ManifestSplitCondition
D = cfg.ManifestSplitDimCondition
O = cfg.ObjectStoreConfig  # noqa: E741


@dataclass(frozen=True)
class Tagged:
    """A newtype or struct enum variant: ``name`` and its content."""

    name: str
    content: Any


class Text(ABC):
    """A scalar read as text whose type the schema decides (YAML's plain and quoted scalars)."""

    @abstractmethod
    def integer(self) -> int | None:
        """The integer it spells, or None if it is not one (quoted text is never one)."""

    @abstractmethod
    def boolean(self) -> bool | None:
        """The boolean it spells, or None."""

    @abstractmethod
    def string(self) -> str:
        """The text itself."""

    @abstractmethod
    def value(self) -> Any:
        """What it is without a schema (null, bool, int, float or str): for unknown keys."""

    def where(self) -> str:
        """Where it was read, for messages (``" (line 3)"``), or ``""``."""
        return ""


def plain_tree(tree: Any) -> Any:
    """``tree`` with every :class:`Text` resolved without a schema."""
    if isinstance(tree, Text):
        return tree.value()
    if isinstance(tree, Tagged):
        return Tagged(tree.name, plain_tree(tree.content))
    if isinstance(tree, dict):
        return {k: plain_tree(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [plain_tree(v) for v in tree]
    return tree


# --- field kinds ---------------------------------------------------------------------------


class _Reader:
    """Reads a tree by the schema; errors name the config's source and the key's path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, value: Any, expected: str) -> IcechunkError:
        return IcechunkError(
            f"error in config deserialization of {self.source}: key `{path or '<root>'}` must "
            f"be {expected}, found {_describe(value)}. Fix or remove that key (a missing key "
            "means its default).",
            kind="config-deserialization",
        )

    def missing(self, path: str, name: str) -> IcechunkError:
        return IcechunkError(
            f"error in config deserialization of {self.source}: `{path or '<root>'}` is "
            f"missing the required key `{name}`. Add it, or remove `{path or 'the config'}`.",
            kind="config-deserialization",
        )

    def mapping(self, path: str, value: Any, expected: str = "a mapping") -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, value, expected)
        return value

    def sequence(self, path: str, value: Any, expected: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, value, expected)
        return value

    def variant(self, path: str, value: Any, expected: str) -> tuple[str, Any]:
        """(name, content) of an enum value; content is None for a unit variant."""
        if isinstance(value, Tagged):
            return value.name, value.content
        if isinstance(value, str):
            return value, None
        if isinstance(value, Text):
            return value.string(), None
        if isinstance(value, dict) and len(value) == 1:
            ((name, content),) = value.items()
            return name, content
        raise self.fail(path, value, expected)

    def string(self, path: str, value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, Text):
            return value.string()
        raise self.fail(path, value, "a string")

    def boolean(self, path: str, value: Any) -> bool:
        found = value if isinstance(value, bool) else None
        if isinstance(value, Text):
            found = value.boolean()
        if found is None:
            raise self.fail(path, value, "true or false")
        return found

    def integer(self, path: str, value: Any, low: int, high: int) -> int:
        found = value if isinstance(value, int) and not isinstance(value, bool) else None
        if isinstance(value, Text):
            found = value.integer()
        if found is None or not low <= found <= high:
            raise self.fail(path, value, f"an integer from {low} to {high}")
        return found

    def str_map(self, path: str, value: Any) -> dict[str, str]:
        items = self.mapping(path, value, "a mapping of strings to strings")
        return {k: self.string(_key(path, k), v) for k, v in items.items()}


def _key(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _shown(value: object) -> str:
    # A damaged file can hold anything; messages quote only the start of a value.
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(value: Any) -> str:
    if isinstance(value, Text):
        return f"{_shown(value.string())}{value.where()}"
    if isinstance(value, Tagged):
        return f"the variant {_shown(value.name)}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {_shown(value)}"
    return f"{type(value).__name__} {_shown(value)}"


class _Kind(ABC):
    """How one field's value becomes a tree and back."""

    @abstractmethod
    def write(self, value: Any) -> Any: ...

    @abstractmethod
    def read(self, r: _Reader, path: str, value: Any) -> Any: ...


class _Integer(_Kind):
    """An integer within ``[low, high]``: Rust's u8 ... u64, i32, NonZeroU16 ..."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def write(self, value: int) -> int:
        return value

    def read(self, r: _Reader, path: str, value: Any) -> int:
        return r.integer(path, value, self.low, self.high)


def _unsigned(bits: int, *, nonzero: bool = False) -> _Integer:
    return _Integer(int(nonzero), 2**bits - 1)


def _signed(bits: int) -> _Integer:
    return _Integer(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


class _Bool(_Kind):
    def write(self, value: bool) -> bool:
        return value

    def read(self, r: _Reader, path: str, value: Any) -> bool:
        return r.boolean(path, value)


class _Str(_Kind):
    def write(self, value: str) -> str:
        return value

    def read(self, r: _Reader, path: str, value: Any) -> str:
        return r.string(path, value)


class _Custom(_Kind):
    def __init__(
        self, write: Callable[[Any], Any], read: Callable[[_Reader, str, Any], Any]
    ) -> None:
        self._write, self._read = write, read

    def write(self, value: Any) -> Any:
        return self._write(value)

    def read(self, r: _Reader, path: str, value: Any) -> Any:
        return self._read(r, path, value)


class _Unit(_Kind):
    """A fieldless enum: each member is a string."""

    def __init__(self, names: Mapping[Any, str], what: str) -> None:
        self.names: dict[Any, str] = dict(names)
        self.members = {v: k for k, v in self.names.items()}
        self.what = what

    def write(self, value: Any) -> str:
        return self.names[value]

    def read(self, r: _Reader, path: str, value: Any) -> Any:
        name, content = r.variant(path, value, self.what)
        if content is not None or name not in self.members:
            raise r.fail(path, value, self.what)
        return self.members[name]


# A field of a record is optional (missing or null: unset), required (missing: an error) or
# defaulted (missing or null: the constructor's default), as the reference's serde struct has it.
_OPTIONAL, _REQUIRED, _DEFAULTED = "optional", "required", "defaulted"


@dataclass(frozen=True)
class _Spec:
    name: str
    kind: _Kind
    presence: str = _OPTIONAL


class _RecordKind(_Kind):
    """A record written as a serde struct: its fields in the reference's order, then unknowns."""

    def __init__(self, cls: type[Any], *specs: _Spec) -> None:
        self.cls = cls
        self.specs = specs
        # Every field of the record is in the schema, or a save would lose it.
        if {s.name for s in specs} != set(record_fields(cls)):
            raise TypeError(f"the serde schema of {cls.__name__} does not match its fields")

    def write(self, record: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for spec in self.specs:
            value = getattr(record, spec.name)
            out[spec.name] = None if value is None else spec.kind.write(value)
        out.update(copy.deepcopy(dict(record_unknown_keys(record))))
        return out

    def read(self, r: _Reader, path: str, value: Any) -> Any:
        fields = r.mapping(path, value)
        values: dict[str, Any] = {}
        for spec in self.specs:
            where = _key(path, spec.name)
            if spec.name not in fields:
                if spec.presence == _REQUIRED:
                    raise r.missing(path, spec.name)
                continue
            item = fields[spec.name]
            if item is None:
                if spec.presence == _REQUIRED:
                    raise r.fail(where, item, "set (it has no default)")
                continue
            values[spec.name] = spec.kind.read(r, where, item)
        known = {s.name for s in self.specs}
        unknown = {k: plain_tree(v) for k, v in fields.items() if k not in known}
        return record_from_fields(self.cls, values, unknown)


def _uints(bits: int, *names: str, nonzero: bool = False) -> list[_Spec]:
    return [_Spec(n, _unsigned(bits, nonzero=nonzero)) for n in names]


# --- the schema ----------------------------------------------------------------------------

_COMPRESSION = _RecordKind(
    cfg.CompressionConfig,
    _Spec("algorithm", _Unit({cfg.CompressionAlgorithm.Zstd: "zstd"}, "zstd")),
    _Spec("level", _unsigned(8)),
)
_CACHING = _RecordKind(cfg.CachingConfig, *_uints(64, *record_fields(cfg.CachingConfig)))
_CONCURRENCY = _RecordKind(
    cfg.StorageConcurrencySettings,
    *_uints(16, "max_concurrent_requests_for_object", nonzero=True),
    *_uints(64, "ideal_concurrent_request_size", nonzero=True),
)
_RETRIES = _RecordKind(
    cfg.StorageRetriesSettings,
    *_uints(16, "max_tries", nonzero=True),
    *_uints(32, "initial_backoff_ms", "max_backoff_ms"),
)
_TIMEOUTS = _RecordKind(
    cfg.StorageTimeoutSettings, *_uints(32, *record_fields(cfg.StorageTimeoutSettings))
)
_STORAGE = _RecordKind(
    cfg.StorageSettings,
    _Spec("concurrency", _CONCURRENCY),
    _Spec("retries", _RETRIES),
    _Spec("timeouts", _TIMEOUTS),
    _Spec("unsafe_use_conditional_update", _Bool()),
    _Spec("unsafe_use_conditional_create", _Bool()),
    _Spec("unsafe_use_metadata", _Bool()),
    _Spec("storage_class", _Str()),
    _Spec("metadata_storage_class", _Str()),
    _Spec("chunks_storage_class", _Str()),
    _Spec("minimum_size_for_multipart_upload", _unsigned(64)),
)
_CHECKSUM = _Unit(
    {
        cfg.ChecksumAlgorithm.Crc32: "crc32",
        cfg.ChecksumAlgorithm.Crc32c: "crc32c",
        cfg.ChecksumAlgorithm.Crc64Nvme: "crc64_nvme",
        cfg.ChecksumAlgorithm.Sha1: "sha1",
        cfg.ChecksumAlgorithm.Sha256: "sha256",
    },
    "crc32, crc32c, crc64_nvme, sha1 or sha256",
)
_S3_OPTIONS = _RecordKind(
    cfg.S3Options,
    _Spec("region", _Str()),
    _Spec("endpoint_url", _Str()),
    _Spec("anonymous", _Bool(), _REQUIRED),
    _Spec("allow_http", _Bool(), _REQUIRED),
    _Spec("force_path_style", _Bool(), _DEFAULTED),
    _Spec("network_stream_timeout_seconds", _unsigned(32)),
    _Spec("requester_pays", _Bool(), _DEFAULTED),
    _Spec("checksum_algorithm", _CHECKSUM),
)

# The HTTP store's options are flattened into its map; its headers go under this key.
_HTTP_HEADERS = "headers"


def _w_store(store: cfg.ObjectStoreConfig) -> Any:
    match store:
        case O.InMemory():
            return store_tag(store)
        case O.LocalFileSystem(path):
            return Tagged(store_tag(store), str(path))
        case O.S3(opts) | O.S3Compatible(opts) | O.Tigris(opts):
            return Tagged(store_tag(store), _S3_OPTIONS.write(opts))
        case O.Http(opts, headers):
            if _HTTP_HEADERS in (opts or {}):
                raise IcechunkError(
                    f"cannot save an HTTP virtual chunk container store with a client option "
                    f"named {_HTTP_HEADERS!r}: the persisted form uses that key for request "
                    "headers. Pass headers with http_store(headers=...) instead.",
                    kind="serialization",
                )
            content: dict[str, Any] = dict(opts or {})
            if headers:
                content[_HTTP_HEADERS] = dict(headers)
            return Tagged(store_tag(store), content)
        case O.Gcs(opts) | O.Azure(opts):
            return Tagged(store_tag(store), dict(opts or {}))
    raise TypeError(f"not an ObjectStoreConfig: {store!r}")


def _r_store(r: _Reader, path: str, value: Any) -> cfg.ObjectStoreConfig:
    expected = (
        "an object store (s3, s3_compatible, tigris, gcs, azure, http, local_file_system or "
        "in_memory)"
    )
    name, content = r.variant(path, value, expected)
    s3_kinds = {"s3": O.S3, "s3_compatible": O.S3Compatible, "tigris": O.Tigris}
    map_kinds = {"gcs": O.Gcs, "azure": O.Azure}
    if name == "in_memory" and content is None:
        return O.InMemory()
    if content is None:
        raise r.fail(path, value, expected)
    if name == "local_file_system":
        return O.LocalFileSystem(r.string(path, content))
    if name in s3_kinds:
        return s3_kinds[name](_S3_OPTIONS.read(r, path, content))
    if name in map_kinds:
        return map_kinds[name](r.str_map(path, content))
    if name == "http":
        options = dict(r.mapping(path, content, "a mapping of HTTP client options"))
        raw_headers = options.pop(_HTTP_HEADERS, None)
        headers = None
        if raw_headers is not None:
            headers = r.str_map(_key(path, _HTTP_HEADERS), raw_headers) or None
        return O.Http(r.str_map(path, options), headers)
    raise r.fail(path, value, expected)


_CONTAINER = _RecordKind(
    cfg.VirtualChunkContainer,
    _Spec("name", _Str()),
    _Spec("url_prefix", _Str(), _REQUIRED),
    _Spec("store", _Custom(_w_store, _r_store), _REQUIRED),
)


def _w_containers(containers: Mapping[str, cfg.VirtualChunkContainer]) -> dict[str, Any]:
    return {prefix: _CONTAINER.write(c) for prefix, c in containers.items()}


def _r_containers(r: _Reader, path: str, value: Any) -> dict[str, cfg.VirtualChunkContainer]:
    items = r.mapping(path, value, "a mapping from URL prefix to container")
    return {prefix: _CONTAINER.read(r, _key(path, prefix), c) for prefix, c in items.items()}


# Conditions. ``Or``/``And`` hold lists; ``PathMatches``/``NameMatches`` are struct variants
# with one field, ``regex``.
_PATTERNS = ("path_matches", "name_matches")


def _w_pattern_or_combination(c: Any, write: Callable[[Any], Any]) -> Any:
    if isinstance(c, (P.And, S.And)):
        return Tagged("and", [write(x) for x in c._0])
    if isinstance(c, (P.Or, S.Or)):
        return Tagged("or", [write(x) for x in c._0])
    if isinstance(c, (P.NameMatches, S.NameMatches)):
        return Tagged("name_matches", {"regex": c.regex})
    if isinstance(c, (P.PathMatches, S.PathMatches)):
        return Tagged("path_matches", {"regex": c.regex})
    return None


def _r_pattern_or_combination(
    r: _Reader,
    path: str,
    name: str,
    content: Any,
    family: Any,
    read: Callable[[_Reader, str, Any], Any],
) -> Any:
    if name in ("or", "and") and content is not None:
        items = r.sequence(path, content, "a list of conditions")
        conditions = [read(r, f"{path}[{i}]", x) for i, x in enumerate(items)]
        return (
            family.or_conditions(conditions) if name == "or" else family.and_conditions(conditions)
        )
    if name in _PATTERNS and content is not None:
        fields = r.mapping(path, content, "a mapping with `regex`")
        if "regex" not in fields:
            raise r.missing(path, "regex")
        regex = r.string(_key(path, "regex"), fields["regex"])
        return family.path_matches(regex) if name == "path_matches" else family.name_matches(regex)
    return None


def _w_preload_cond(c: cfg.ManifestPreloadCondition) -> Any:
    written = _w_pattern_or_combination(c, _w_preload_cond)
    if written is not None:
        return written
    if isinstance(c, P.NumRefs):
        low, high = getattr(c, "from"), c.to
        return Tagged(
            "num_refs",
            {
                "from": "Unbounded" if low is None else Tagged("Included", low),
                "to": "Unbounded" if high is None else Tagged("Excluded", high),
            },
        )
    # True and False are Python keywords, so only getattr reaches these variant classes.
    return "true" if isinstance(c, getattr(P, "True")) else "false"


def _r_bound(r: _Reader, path: str, value: Any, *, upper: bool) -> int | None:
    expected = "Included <n>, Excluded <n> or Unbounded"
    name, content = r.variant(path, value, expected)
    if name == "Unbounded" and content is None:
        return None
    if name not in ("Included", "Excluded") or content is None:
        raise r.fail(path, value, expected)
    n = r.integer(path, content, 0, U32_MAX)
    # The Python API's bounds are from-inclusive and to-exclusive.
    if (name == "Included") == upper:
        if n == U32_MAX:
            if upper:
                return None
            raise r.fail(path, value, "a lower bound that some count can satisfy")
        return n + 1
    return n


def _r_preload_cond(r: _Reader, path: str, value: Any) -> cfg.ManifestPreloadCondition:
    expected = (
        "a preload condition (or, and, path_matches, name_matches, num_refs, 'true' or 'false')"
    )
    name, content = r.variant(path, value, expected)
    if name in ("true", "false") and content is None:
        return P.true() if name == "true" else P.false()
    found = _r_pattern_or_combination(r, path, name, content, P, _r_preload_cond)
    if found is not None:
        return found  # type: ignore[no-any-return]
    if name == "num_refs" and content is not None:
        fields = r.mapping(path, content, "a mapping with `from` and `to`")
        bounds = []
        for key, upper in (("from", False), ("to", True)):
            if key not in fields:
                raise r.missing(path, key)
            bounds.append(_r_bound(r, _key(path, key), fields[key], upper=upper))
        return P.num_refs(*bounds)
    raise r.fail(path, value, expected)


def _w_split_cond(c: cfg.ManifestSplitCondition) -> Any:
    written = _w_pattern_or_combination(c, _w_split_cond)
    return "any_array" if written is None else written


def _r_split_cond(r: _Reader, path: str, value: Any) -> cfg.ManifestSplitCondition:
    expected = "a split condition (or, and, path_matches, name_matches or any_array)"
    name, content = r.variant(path, value, expected)
    if name == "any_array" and content is None:
        return S.AnyArray()
    found = _r_pattern_or_combination(r, path, name, content, S, _r_split_cond)
    if found is None:
        raise r.fail(path, value, expected)
    return found  # type: ignore[no-any-return]


def _w_dim(d: cfg.ManifestSplitDimCondition) -> Any:
    match d:
        case D.Axis(axis):
            return Tagged("Axis", axis)
        case D.DimensionName(regex):
            return Tagged("DimensionName", regex)
    return "Any"


def _r_dim(r: _Reader, path: str, value: Any) -> cfg.ManifestSplitDimCondition:
    expected = "Axis <n>, DimensionName <regex> or Any"
    name, content = r.variant(path, value, expected)
    if name == "Any" and content is None:
        return D.Any()
    if name == "Axis" and content is not None:
        return D.Axis(r.integer(path, content, 0, 2**64 - 1))
    if name == "DimensionName" and content is not None:
        return D.DimensionName(r.string(path, content))
    raise r.fail(path, value, expected)


def _w_split_sizes(sizes: list[Any]) -> list[Any]:
    return [
        [_w_split_cond(cond), [{"condition": _w_dim(d), "num_chunks": n} for d, n in dims]]
        for cond, dims in sizes
    ]


def _r_split_sizes(r: _Reader, path: str, value: Any) -> list[Any]:
    rules: list[Any] = []
    for i, rule in enumerate(r.sequence(path, value, "a list of [condition, dims] pairs")):
        rule_path = f"{path}[{i}]"
        pair = r.sequence(rule_path, rule, "a [condition, dims] pair")
        if len(pair) != 2:
            raise r.fail(rule_path, rule, "a [condition, dims] pair")
        dims = []
        dims_path = f"{rule_path}[1]"
        for j, dim in enumerate(r.sequence(dims_path, pair[1], "a list of dim rules")):
            dim_path = f"{dims_path}[{j}]"
            fields = r.mapping(dim_path, dim, "a mapping with `condition` and `num_chunks`")
            for key in ("condition", "num_chunks"):
                if key not in fields:
                    raise r.missing(dim_path, key)
            dims.append(
                (
                    _r_dim(r, _key(dim_path, "condition"), fields["condition"]),
                    r.integer(_key(dim_path, "num_chunks"), fields["num_chunks"], 0, U32_MAX),
                )
            )
        rules.append((_r_split_cond(r, f"{rule_path}[0]", pair[0]), dims))
    return rules


_PRELOAD = _RecordKind(
    cfg.ManifestPreloadConfig,
    _Spec("max_total_refs", _unsigned(32)),
    _Spec("preload_if", _Custom(_w_preload_cond, _r_preload_cond)),
    _Spec("max_arrays_to_scan", _unsigned(32)),
)
_SPLITTING = _RecordKind(
    cfg.ManifestSplittingConfig, _Spec("split_sizes", _Custom(_w_split_sizes, _r_split_sizes))
)
_LOCATION_COMPRESSION = _RecordKind(
    cfg.ManifestVirtualChunkLocationCompressionConfig,
    *_uints(16, "min_num_chunks", "dictionary_max_training_samples"),
    *_uints(32, "dictionary_max_size_bytes"),
    _Spec("compression_level", _signed(32)),
)
_MANIFEST = _RecordKind(
    cfg.ManifestConfig,
    _Spec("preload", _PRELOAD),
    _Spec("splitting", _SPLITTING),
    _Spec("virtual_chunk_location_compression", _LOCATION_COMPRESSION),
    *_uints(16, "max_concurrent_manifest_fetches_during_commit"),
)
_REPO_UPDATE_RETRIES = _RecordKind(cfg.RepoUpdateRetryConfig, _Spec("default", _RETRIES))
_REPOSITORY = _RecordKind(
    cfg.RepositoryConfig,
    *_uints(16, "inline_chunk_threshold_bytes", "get_partial_values_concurrency"),
    _Spec("compression", _COMPRESSION),
    *_uints(16, "max_concurrent_requests", "max_concurrent_decodes"),
    _Spec("caching", _CACHING),
    _Spec("storage", _STORAGE),
    _Spec("virtual_chunk_containers", _Custom(_w_containers, _r_containers)),
    _Spec("manifest", _MANIFEST),
    _Spec("previous_file", _Str()),
    _Spec("repo_update_retries", _REPO_UPDATE_RETRIES),
    *_uints(16, "num_updates_per_repo_info_file"),
)


def config_to_tree(config: cfg.RepositoryConfig) -> dict[str, Any]:
    """The serde tree of a config: every key of the reference, in its order, then unknown keys.

    Parameters
    ----------
    config
        The config.

    Returns
    -------
    dict
        Maps with str keys in serde's field order, lists, None, bool, int, str and
        :class:`Tagged` variants (unknown keys as they were read).

    Raises
    ------
    IcechunkError
        If an HTTP store has a client option named ``headers`` (the persisted form cannot
        hold it).
    """
    return _REPOSITORY.write(config)


def config_from_tree(tree: Any, source: str) -> cfg.RepositoryConfig:
    """Read a config from its serde tree.

    Parameters
    ----------
    tree
        The root value: a map (variants as :class:`Tagged`, one-key maps or strings; leaves
        may be :class:`Text`).
    source
        Where the config came from (``config.yaml``, ``repo``), for messages.

    Returns
    -------
    RepositoryConfig
        Missing keys and nulls are unset; unknown keys are kept on their records.

    Raises
    ------
    IcechunkError
        If a known key holds a value of the wrong kind, or a required key is missing; the
        message names the key.
    """
    reader = _Reader(source)
    config: cfg.RepositoryConfig = _REPOSITORY.read(
        reader, "", reader.mapping("", tree, "a mapping of repository settings")
    )
    return config
