"""The ``config.yaml`` codec: :class:`~pyicechunk.config.RepositoryConfig` to and from YAML.

The written form is the one icechunk 1.1 writes (serde's externally tagged enums as YAML tags,
every key present, unset values as ``null``), to the byte for configs whose maps are written in
the same order. Reading is as lenient as the reference: missing keys are unset, unknown keys are
ignored and an empty file is the default config. A malformed value of a known key raises
:class:`~pyicechunk.exceptions.IcechunkError` naming the key.

YAML goes through PyYAML's node layer only: the document is composed into nodes with a loader
that resolves nothing implicitly, and each node is interpreted here by the schema, with YAML 1.2
scalar rules as serde applies them (``yes`` is a string, ``0x10`` an integer). Nothing is ever
constructed by PyYAML itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pyicechunk.config import (
    U32_MAX,
    CachingConfig,
    CompressionAlgorithm,
    CompressionConfig,
    ManifestConfig,
    ManifestPreloadCondition,
    ManifestPreloadConfig,
    ManifestSplitCondition,
    ManifestSplitDimCondition,
    ManifestSplittingConfig,
    ObjectStoreConfig,
    RepositoryConfig,
    S3Options,
    StorageConcurrencySettings,
    StorageRetriesSettings,
    StorageSettings,
    VirtualChunkContainer,
)
from pyicechunk.exceptions import IcechunkError

__all__ = ["config_from_yaml", "config_to_yaml"]

T = TypeVar("T")

_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"

P = ManifestPreloadCondition
S = ManifestSplitCondition
D = ManifestSplitDimCondition
O = ObjectStoreConfig  # noqa: E741


class _Resolver(yaml.resolver.BaseResolver):
    """Resolves no plain scalar to anything but a string: the schema decides types."""

    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}  # noqa: RUF012


class _Loader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    _Resolver,
):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _Resolver.__init__(self)


class _Dumper(yaml.emitter.Emitter, yaml.serializer.Serializer, _Resolver):
    def __init__(self, stream: Any, **kwargs: Any) -> None:
        yaml.emitter.Emitter.__init__(
            self,
            stream,
            allow_unicode=True,
            width=kwargs.get("width"),
        )
        yaml.serializer.Serializer.__init__(self)
        _Resolver.__init__(self)

    def check_simple_key(self) -> bool:
        # libyaml writes an empty key as the simple key '' where PyYAML would use "? ''".
        event = self.event
        if isinstance(event, yaml.ScalarEvent) and event.value == "":
            return True
        return bool(super().check_simple_key())

    def choose_scalar_style(self) -> str:
        # libyaml (the reference's emitter) writes a tagged scalar plain when plain is safe;
        # PyYAML would quote every tagged scalar.
        event = self.event
        if (
            isinstance(event, yaml.ScalarEvent)
            and (event.tag or "").startswith("!")
            and not event.style
        ):
            if self.analysis is None:
                self.analysis = self.analyze_scalar(event.value)
            analysis = self.analysis
            if (
                not self.flow_level
                and analysis.allow_block_plain
                and not analysis.empty
                and not analysis.multiline
            ):
                return ""
        return str(super().choose_scalar_style())


# --- YAML 1.2 scalar rules as serde_yaml applies them ------------------------------------------

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUES = frozenset({"true", "True", "TRUE"})
_FALSES = frozenset({"false", "False", "FALSE"})
_DECIMAL = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_SPECIAL_FLOATS = frozenset(
    {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF"}
    | {".nan", ".NaN", ".NAN"}
)


def _leading_zero_digits(text: str) -> bool:
    digits = text[1:] if text[:1] in "+-" else text
    return len(digits) > 1 and digits[0] == "0" and digits[1:].isdigit()


def _parse_int(text: str) -> int | None:
    sign = -1 if text.startswith("-") else 1
    body = text[1:] if text[:1] in "+-" else text
    for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
        if body.startswith(prefix):
            rest = body[2:]
            if not rest or rest[0] in "+-_" or "_" in rest:
                return None
            try:
                return sign * int(rest, base)
            except ValueError:
                return None
    if not _DECIMAL.fullmatch(text) or _leading_zero_digits(text):
        return None
    return int(text)


def _plain_is_not_a_string(text: str) -> bool:
    """Whether serde quotes this text: it could read back as null, bool or a number."""
    if _leading_zero_digits(text):
        # A number in YAML 1.1's octal reading; serde quotes it although 1.2 reads a string.
        return True
    if text in _NULLS or text in _TRUES or text in _FALSES or text in _SPECIAL_FLOATS:
        return True
    if _parse_int(text) is not None:
        return True
    return bool(_FLOAT.fullmatch(text)) and not _leading_zero_digits(text)


# --- writing -----------------------------------------------------------------------------------


def _plain(text: str, tag: str = _STR) -> ScalarNode:
    return ScalarNode(tag, text)


def _null() -> ScalarNode:
    return _plain("null")


def _string(text: str, tag: str = _STR) -> ScalarNode:
    if "\n" in text:
        return ScalarNode(tag, text, style="|")
    if _plain_is_not_a_string(text):
        return ScalarNode(tag, text, style="'")
    return ScalarNode(tag, text)


def _int(value: int, tag: str = _STR) -> ScalarNode:
    return _plain(str(value), tag)


def _bool(value: bool) -> ScalarNode:
    return _plain("true" if value else "false")


def _opt(value: T | None, write: Callable[[T], Node]) -> Node:
    return _null() if value is None else write(value)


def _map(items: list[tuple[str, Node]], tag: str = _MAP) -> MappingNode:
    return MappingNode(tag, [(_string(k), v) for k, v in items], flow_style=not items)


def _seq(items: list[Node], tag: str = _SEQ) -> SequenceNode:
    return SequenceNode(tag, items, flow_style=not items)


def _w_compression(c: CompressionConfig) -> Node:
    return _map(
        [
            ("algorithm", _opt(c.algorithm, lambda _: _plain("zstd"))),
            ("level", _opt(c.level, _int)),
        ]
    )


def _w_fields(record: object, names: tuple[str, ...]) -> Node:
    return _map([(n, _opt(getattr(record, n), _int)) for n in names])


def _w_storage(s: StorageSettings) -> Node:
    return _map(
        [
            ("concurrency", _opt(s.concurrency, lambda c: _w_fields(c, c._FIELDS))),
            ("retries", _opt(s.retries, lambda r: _w_fields(r, r._FIELDS))),
            ("unsafe_use_conditional_update", _opt(s.unsafe_use_conditional_update, _bool)),
            ("unsafe_use_conditional_create", _opt(s.unsafe_use_conditional_create, _bool)),
            ("unsafe_use_metadata", _opt(s.unsafe_use_metadata, _bool)),
            ("storage_class", _opt(s.storage_class, _string)),
            ("metadata_storage_class", _opt(s.metadata_storage_class, _string)),
            ("chunks_storage_class", _opt(s.chunks_storage_class, _string)),
            (
                "minimum_size_for_multipart_upload",
                _opt(s.minimum_size_for_multipart_upload, _int),
            ),
        ]
    )


def _w_s3_options(o: S3Options, tag: str) -> Node:
    return _map(
        [
            ("region", _opt(o.region, _string)),
            ("endpoint_url", _opt(o.endpoint_url, _string)),
            ("anonymous", _bool(o.anonymous)),
            ("allow_http", _bool(o.allow_http)),
            ("force_path_style", _bool(o.force_path_style)),
            ("network_stream_timeout_seconds", _opt(o.network_stream_timeout_seconds, _int)),
            ("requester_pays", _bool(o.requester_pays)),
        ],
        tag,
    )


def _w_store(store: ObjectStoreConfig) -> Node:
    tag = "!" + store._TAG
    match store:
        case O.InMemory():
            return _plain(store._TAG)
        case O.LocalFileSystem(path):
            return _string(str(path), tag)
        case O.S3(opts) | O.S3Compatible(opts) | O.Tigris(opts):
            return _w_s3_options(opts, tag)
        case O.Gcs(opts) | O.Azure(opts) | O.Http(opts):
            return _map([(k, _string(v)) for k, v in (opts or {}).items()], tag)
    raise TypeError(f"not an ObjectStoreConfig: {store!r}")


def _w_container(c: VirtualChunkContainer) -> Node:
    store = c.store
    if store is None:
        raise IcechunkError(
            f"virtual chunk container {c.url_prefix!r} has no store; set one before saving"
        )
    return _map(
        [
            ("name", _opt(c.name, _string)),
            ("url_prefix", _string(c.url_prefix)),
            ("store", _w_store(store)),
        ]
    )


def _w_preload_cond(c: ManifestPreloadCondition) -> Node:
    match c:
        case P.And(conds):
            return _seq([_w_preload_cond(x) for x in conds], "!and")
        case P.Or(conds):
            return _seq([_w_preload_cond(x) for x in conds], "!or")
        case P.NameMatches(regex):
            return _map([("regex", _string(regex))], "!name_matches")
        case P.PathMatches(regex):
            return _map([("regex", _string(regex))], "!path_matches")
        case P.NumRefs():
            low, high = getattr(c, "from"), c.to
            return _map(
                [
                    ("from", _plain("Unbounded") if low is None else _int(low, "!Included")),
                    ("to", _plain("Unbounded") if high is None else _int(high, "!Excluded")),
                ],
                "!num_refs",
            )
    # True and False are Python keywords, so they cannot be class patterns above.
    return _string("true" if isinstance(c, getattr(P, "True")) else "false")


def _w_split_cond(c: ManifestSplitCondition) -> Node:
    match c:
        case S.And(conds):
            return _seq([_w_split_cond(x) for x in conds], "!and")
        case S.Or(conds):
            return _seq([_w_split_cond(x) for x in conds], "!or")
        case S.NameMatches(regex):
            return _map([("regex", _string(regex))], "!name_matches")
        case S.PathMatches(regex):
            return _map([("regex", _string(regex))], "!path_matches")
    return _plain("any_array")


def _w_dim(d: ManifestSplitDimCondition) -> Node:
    match d:
        case D.Axis(axis):
            return _int(axis, "!Axis")
        case D.DimensionName(regex):
            return _string(regex, "!DimensionName")
    return _plain("Any")


def _w_splitting(s: ManifestSplittingConfig) -> Node:
    def rule(
        cond: ManifestSplitCondition, dims: list[tuple[ManifestSplitDimCondition, int]]
    ) -> Node:
        return _seq(
            [
                _w_split_cond(cond),
                _seq([_map([("condition", _w_dim(d)), ("num_chunks", _int(n))]) for d, n in dims]),
            ]
        )

    return _map(
        [("split_sizes", _opt(s.split_sizes, lambda sizes: _seq([rule(c, d) for c, d in sizes])))]
    )


def _w_manifest(m: ManifestConfig) -> Node:
    def preload(p: ManifestPreloadConfig) -> Node:
        return _map(
            [
                ("max_total_refs", _opt(p.max_total_refs, _int)),
                ("preload_if", _opt(p.preload_if, _w_preload_cond)),
            ]
        )

    return _map(
        [("preload", _opt(m.preload, preload)), ("splitting", _opt(m.splitting, _w_splitting))]
    )


def config_to_yaml(config: RepositoryConfig) -> bytes:
    """Serialize a config the way icechunk 1.1 writes ``config.yaml``.

    Parameters
    ----------
    config
        The config to write.

    Returns
    -------
    bytes
        UTF-8 YAML.

    Raises
    ------
    IcechunkError
        If a virtual chunk container has no store.
    """
    containers = config.virtual_chunk_containers
    root = _map(
        [
            ("inline_chunk_threshold_bytes", _opt(config.inline_chunk_threshold_bytes, _int)),
            ("get_partial_values_concurrency", _opt(config.get_partial_values_concurrency, _int)),
            ("compression", _opt(config.compression, _w_compression)),
            ("max_concurrent_requests", _opt(config.max_concurrent_requests, _int)),
            ("caching", _opt(config.caching, lambda c: _w_fields(c, c._FIELDS))),
            ("storage", _opt(config.storage, _w_storage)),
            (
                "virtual_chunk_containers",
                _opt(containers, lambda cs: _map([(k, _w_container(v)) for k, v in cs.items()])),
            ),
            ("manifest", _opt(config.manifest, _w_manifest)),
        ]
    )
    text = yaml.serialize(root, Dumper=_Dumper, width=_WIDTH)
    return text.encode("utf-8")


# libyaml folds long plain scalars at 80 columns unless told otherwise; serde_yaml does not fold.
_WIDTH = 2**31 - 1


# --- reading -----------------------------------------------------------------------------------


class _Reader:
    """Interprets composed YAML nodes by the config schema, with errors naming the key."""

    def __init__(self, key: str) -> None:
        self.key = key

    def fail(self, path: str, node: Node | None, expected: str) -> IcechunkError:
        where = f" (line {node.start_mark.line + 1})" if node is not None else ""
        found = ""
        if isinstance(node, ScalarNode):
            found = f", found {node.value!r}"
        elif isinstance(node, MappingNode):
            found = ", found a mapping"
        elif isinstance(node, SequenceNode):
            found = ", found a list"
        return IcechunkError(
            f"invalid repository config in {self.key}: key `{path}`{where} must be "
            f"{expected}{found}. Fix or remove that key (a missing key means the default)."
        )

    @staticmethod
    def is_null(node: Node) -> bool:
        return (
            isinstance(node, ScalarNode)
            and not node.tag.startswith("!")
            and node.style is None
            and node.value in _NULLS
        )

    def fields(self, path: str, node: Node, expected: str) -> dict[str, tuple[str, Node]]:
        if not isinstance(node, MappingNode) or node.tag.startswith("!"):
            raise self.fail(path, node, expected)
        out: dict[str, tuple[str, Node]] = {}
        for k, v in node.value:
            if isinstance(k, ScalarNode):
                out[k.value] = (f"{path}.{k.value}" if path else k.value, v)
        return out

    def opt(
        self,
        fields: dict[str, tuple[str, Node]],
        name: str,
        read: Callable[[str, Node], T],
    ) -> T | None:
        entry = fields.get(name)
        if entry is None or self.is_null(entry[1]):
            return None
        return read(*entry)

    def required(
        self,
        fields: dict[str, tuple[str, Node]],
        parent: str,
        name: str,
        read: Callable[[str, Node], T],
    ) -> T:
        entry = fields.get(name)
        if entry is None:
            raise IcechunkError(
                f"invalid repository config in {self.key}: `{parent}` is missing the required "
                f"key `{name}`. Add it, or remove `{parent}`."
            )
        return read(*entry)

    def uint(self, bits: int, *, nonzero: bool = False) -> Callable[[str, Node], int]:
        low = 1 if nonzero else 0
        expected = f"an integer from {low} to {2**bits - 1}"

        def read(path: str, node: Node) -> int:
            value = None
            if isinstance(node, ScalarNode) and node.style is None:
                value = _parse_int(node.value)
            if value is None or not low <= value < 2**bits:
                raise self.fail(path, node, expected)
            return value

        return read

    def boolean(self, path: str, node: Node) -> bool:
        if isinstance(node, ScalarNode) and node.style is None:
            if node.value in _TRUES:
                return True
            if node.value in _FALSES:
                return False
        raise self.fail(path, node, "true or false")

    def string(self, path: str, node: Node) -> str:
        if not isinstance(node, ScalarNode) or node.tag.startswith("!"):
            raise self.fail(path, node, "a string")
        return str(node.value)

    def str_map(self, path: str, node: Node) -> dict[str, str]:
        if not isinstance(node, MappingNode):
            raise self.fail(path, node, "a mapping of strings to strings")
        return {self.string(path, k): self.string(f"{path}.{k.value}", v) for k, v in node.value}

    def variant(self, path: str, node: Node, expected: str) -> tuple[str, Node | None]:
        """Split an externally tagged enum value into (variant name, content)."""
        if node.tag.startswith("!"):
            return node.tag[1:], node
        if isinstance(node, ScalarNode):
            return node.value, None
        if isinstance(node, MappingNode) and len(node.value) == 1:
            k, v = node.value[0]
            if isinstance(k, ScalarNode):
                return k.value, v
        raise self.fail(path, node, expected)

    def seq(self, path: str, node: Node | None, expected: str) -> list[Node]:
        if not isinstance(node, SequenceNode):
            raise self.fail(path, node, expected)
        return list(node.value)

    # --- the schema ---

    def s3_options(self, path: str, node: Node) -> S3Options:
        f = self.fields(path, node, "a mapping of S3 options")
        return S3Options(
            region=self.opt(f, "region", self.string),
            endpoint_url=self.opt(f, "endpoint_url", self.string),
            anonymous=self.required(f, path, "anonymous", self.boolean),
            allow_http=self.required(f, path, "allow_http", self.boolean),
            force_path_style=self.opt(f, "force_path_style", self.boolean) or False,
            network_stream_timeout_seconds=self.opt(
                f, "network_stream_timeout_seconds", self.uint(32)
            ),
            requester_pays=self.opt(f, "requester_pays", self.boolean) or False,
        )

    def store(self, path: str, node: Node) -> ObjectStoreConfig:
        expected = (
            "an object store (!s3, !s3_compatible, !tigris, !gcs, !azure, !http, "
            "!local_file_system or in_memory)"
        )
        name, content = self.variant(path, node, expected)
        s3_kinds: dict[str, Callable[[S3Options], ObjectStoreConfig]] = {
            "s3": O.S3,
            "s3_compatible": O.S3Compatible,
            "tigris": O.Tigris,
        }
        map_kinds: dict[str, Callable[[dict[str, str]], ObjectStoreConfig]] = {
            "gcs": O.Gcs,
            "azure": O.Azure,
            "http": O.Http,
        }
        if name == "in_memory" and (content is None or self.is_null(content)):
            return O.InMemory()
        if content is None:
            raise self.fail(path, node, expected)
        if name == "local_file_system":
            return O.LocalFileSystem(self.string(path, _untagged(content)))
        if name in s3_kinds:
            return s3_kinds[name](self.s3_options(path, _untagged(content)))
        if name in map_kinds:
            return map_kinds[name](self.str_map(path, content))
        raise self.fail(path, node, expected)

    def container(self, path: str, node: Node) -> VirtualChunkContainer:
        f = self.fields(path, node, "a virtual chunk container mapping")
        cont = VirtualChunkContainer(
            self.required(f, path, "url_prefix", self.string),
            self.required(f, path, "store", self.store),  # type: ignore[arg-type]
        )
        cont.name = self.opt(f, "name", self.string)
        return cont

    def bound(self, path: str, node: Node, *, upper: bool) -> int | None:
        expected = "!Included <n>, !Excluded <n> or Unbounded"
        name, content = self.variant(path, node, expected)
        if name == "Unbounded" and content is None:
            return None
        if name not in ("Included", "Excluded") or content is None:
            raise self.fail(path, node, expected)
        n = self.uint(32)(path, _untagged(content))
        # The Python API's bounds are from-inclusive and to-exclusive.
        if (name == "Included") == upper:
            if n == U32_MAX:
                if upper:
                    return None
                raise self.fail(path, node, "a lower bound that some count can satisfy")
            return n + 1
        return n

    def preload_cond(self, path: str, node: Node) -> ManifestPreloadCondition:
        expected = (
            "a preload condition (!or, !and, !path_matches, !name_matches, !num_refs, "
            "'true' or 'false')"
        )
        name, content = self.variant(path, node, expected)
        if name in ("true", "false") and (content is None or self.is_null(content)):
            return P.true() if name == "true" else P.false()
        if name in ("or", "and"):
            items = [
                self.preload_cond(f"{path}[{i}]", x)
                for i, x in enumerate(self.seq(path, content, "a list of conditions"))
            ]
            return P.or_conditions(items) if name == "or" else P.and_conditions(items)
        if name in ("path_matches", "name_matches") and content is not None:
            f = self.fields(path, _untagged(content), "a mapping with `regex`")
            regex = self.required(f, path, "regex", self.string)
            return P.path_matches(regex) if name == "path_matches" else P.name_matches(regex)
        if name == "num_refs" and content is not None:
            f = self.fields(path, _untagged(content), "a mapping with `from` and `to`")
            low = self.required(f, path, "from", lambda p, n: self.bound(p, n, upper=False))
            high = self.required(f, path, "to", lambda p, n: self.bound(p, n, upper=True))
            return P.num_refs(low, high)
        raise self.fail(path, node, expected)

    def split_cond(self, path: str, node: Node) -> ManifestSplitCondition:
        expected = "a split condition (!or, !and, !path_matches, !name_matches or any_array)"
        name, content = self.variant(path, node, expected)
        if name == "any_array" and (content is None or self.is_null(content)):
            return S.AnyArray()
        if name in ("or", "and"):
            items = [
                self.split_cond(f"{path}[{i}]", x)
                for i, x in enumerate(self.seq(path, content, "a list of conditions"))
            ]
            return S.or_conditions(items) if name == "or" else S.and_conditions(items)
        if name in ("path_matches", "name_matches") and content is not None:
            f = self.fields(path, _untagged(content), "a mapping with `regex`")
            regex = self.required(f, path, "regex", self.string)
            return S.path_matches(regex) if name == "path_matches" else S.name_matches(regex)
        raise self.fail(path, node, expected)

    def dim_cond(self, path: str, node: Node) -> ManifestSplitDimCondition:
        expected = "!Axis <n>, !DimensionName <regex> or Any"
        name, content = self.variant(path, node, expected)
        if name == "Any" and (content is None or self.is_null(content)):
            return D.Any()
        if name == "Axis" and content is not None:
            return D.Axis(self.uint(64)(path, _untagged(content)))
        if name == "DimensionName" and content is not None:
            return D.DimensionName(self.string(path, _untagged(content)))
        raise self.fail(path, node, expected)

    def split_sizes(self, path: str, node: Node) -> list[object]:
        rules: list[object] = []
        for i, rule in enumerate(self.seq(path, node, "a list of [condition, dims] pairs")):
            rpath = f"{path}[{i}]"
            pair = self.seq(rpath, rule, "a [condition, dims] pair")
            if len(pair) != 2:
                raise self.fail(rpath, rule, "a [condition, dims] pair")
            dims = []
            for j, dim in enumerate(self.seq(f"{rpath}[1]", pair[1], "a list of dim rules")):
                dpath = f"{rpath}[1][{j}]"
                f = self.fields(dpath, dim, "a mapping with `condition` and `num_chunks`")
                dims.append(
                    (
                        self.required(f, dpath, "condition", self.dim_cond),
                        self.required(f, dpath, "num_chunks", self.uint(32)),
                    )
                )
            rules.append((self.split_cond(f"{rpath}[0]", pair[0]), dims))
        return rules

    def manifest(self, path: str, node: Node) -> ManifestConfig:
        f = self.fields(path, node, "a mapping")

        def preload(p: str, n: Node) -> ManifestPreloadConfig:
            pf = self.fields(p, n, "a mapping")
            return ManifestPreloadConfig(
                self.opt(pf, "max_total_refs", self.uint(32)),
                self.opt(pf, "preload_if", self.preload_cond),
            )

        def splitting(p: str, n: Node) -> ManifestSplittingConfig:
            sf = self.fields(p, n, "a mapping")
            return ManifestSplittingConfig(self.opt(sf, "split_sizes", self.split_sizes))

        return ManifestConfig(self.opt(f, "preload", preload), self.opt(f, "splitting", splitting))

    def storage(self, path: str, node: Node) -> StorageSettings:
        f = self.fields(path, node, "a mapping")

        def concurrency(p: str, n: Node) -> StorageConcurrencySettings:
            cf = self.fields(p, n, "a mapping")
            return StorageConcurrencySettings(
                self.opt(cf, "max_concurrent_requests_for_object", self.uint(16, nonzero=True)),
                self.opt(cf, "ideal_concurrent_request_size", self.uint(64, nonzero=True)),
            )

        def retries(p: str, n: Node) -> StorageRetriesSettings:
            rf = self.fields(p, n, "a mapping")
            return StorageRetriesSettings(
                self.opt(rf, "max_tries", self.uint(16, nonzero=True)),
                self.opt(rf, "initial_backoff_ms", self.uint(32)),
                self.opt(rf, "max_backoff_ms", self.uint(32)),
            )

        return StorageSettings(
            concurrency=self.opt(f, "concurrency", concurrency),
            retries=self.opt(f, "retries", retries),
            unsafe_use_conditional_create=self.opt(
                f, "unsafe_use_conditional_create", self.boolean
            ),
            unsafe_use_conditional_update=self.opt(
                f, "unsafe_use_conditional_update", self.boolean
            ),
            unsafe_use_metadata=self.opt(f, "unsafe_use_metadata", self.boolean),
            storage_class=self.opt(f, "storage_class", self.string),
            metadata_storage_class=self.opt(f, "metadata_storage_class", self.string),
            chunks_storage_class=self.opt(f, "chunks_storage_class", self.string),
            minimum_size_for_multipart_upload=self.opt(
                f, "minimum_size_for_multipart_upload", self.uint(64)
            ),
        )

    def compression(self, path: str, node: Node) -> CompressionConfig:
        f = self.fields(path, node, "a mapping")

        def algorithm(p: str, n: Node) -> CompressionAlgorithm:
            if isinstance(n, ScalarNode) and n.value == "zstd":
                return CompressionAlgorithm.Zstd
            raise self.fail(p, n, "zstd")

        return CompressionConfig(
            self.opt(f, "algorithm", algorithm), self.opt(f, "level", self.uint(8))
        )

    def caching(self, path: str, node: Node) -> CachingConfig:
        f = self.fields(path, node, "a mapping")
        return CachingConfig(*(self.opt(f, name, self.uint(64)) for name in CachingConfig._FIELDS))

    def containers(self, path: str, node: Node) -> dict[str, VirtualChunkContainer]:
        f = self.fields(path, node, "a mapping from URL prefix to container")
        return {name: self.container(p, n) for name, (p, n) in f.items()}

    def repository(self, node: Node) -> RepositoryConfig:
        f = self.fields("", node, "a mapping of repository settings")
        return RepositoryConfig(
            inline_chunk_threshold_bytes=self.opt(f, "inline_chunk_threshold_bytes", self.uint(16)),
            get_partial_values_concurrency=self.opt(
                f, "get_partial_values_concurrency", self.uint(16)
            ),
            compression=self.opt(f, "compression", self.compression),
            max_concurrent_requests=self.opt(f, "max_concurrent_requests", self.uint(16)),
            caching=self.opt(f, "caching", self.caching),
            storage=self.opt(f, "storage", self.storage),
            virtual_chunk_containers=self.opt(f, "virtual_chunk_containers", self.containers),
            manifest=self.opt(f, "manifest", self.manifest),
        )


def _untagged(node: Node) -> Node:
    """The content of a tagged node, read as if it had no tag."""
    if not node.tag.startswith("!"):
        return node
    default = {ScalarNode: _STR, SequenceNode: _SEQ, MappingNode: _MAP}[type(node)]
    clone = type(node)(default, node.value, node.start_mark, node.end_mark)
    if isinstance(node, ScalarNode):
        clone.style = node.style  # type: ignore[attr-defined]
    return clone


def config_from_yaml(data: bytes, key: str = "config.yaml") -> RepositoryConfig:
    """Parse ``config.yaml`` as icechunk 1.1 does.

    Parameters
    ----------
    data
        The file's bytes.
    key
        Where the bytes came from, for error messages.

    Returns
    -------
    RepositoryConfig
        The stored config; missing keys and ``null`` values are unset.

    Raises
    ------
    IcechunkError
        If the file is not YAML, or a known key holds a value of the wrong kind.
    """
    try:
        text = data.decode("utf-8")
        node = yaml.compose(text, Loader=_Loader)  # type: ignore[arg-type]
    except (UnicodeDecodeError, yaml.YAMLError) as err:
        raise IcechunkError(
            f"cannot parse {key} as YAML: {err}. Fix the file or delete it to use the defaults."
        ) from err
    reader = _Reader(key)
    if node is None or reader.is_null(node):
        return RepositoryConfig()
    return reader.repository(node)
