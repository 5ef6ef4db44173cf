"""The ``config.yaml`` codec of spec-1 repositories: the config's serde tree as YAML.

The tree is :mod:`~pyicechunk.format.config_serde`'s. The written form is the one icechunk 2.3
writes into spec-1 repositories (serde's externally tagged enums as YAML tags, every key
present, unset values as ``null``; FORMAT-V1 §8, FORMAT-V2 §15), to the byte for configs whose
maps are in the same order. icechunk 1.1 reads it too, ignoring the keys it does not know,
as long as no HTTP store has headers (which 1.1 cannot hold). Reading is as lenient as the
reference: missing keys are unset, an empty file is the default config; keys this version
does not know are kept and written back by the next save. A malformed value of a known key
raises :class:`~pyicechunk.exceptions.IcechunkError` naming the key.

YAML goes through PyYAML's node layer only: the document is composed into nodes with a loader
that resolves nothing implicitly; scalars become :class:`~pyicechunk.format.config_serde.Text`
values that the schema reads with YAML 1.2 scalar rules as serde applies them (``yes`` is a
string, ``0x10`` an integer). Nothing is ever constructed by PyYAML itself.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pyicechunk.config import RepositoryConfig
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.config_serde import Tagged, Text, config_from_tree, config_to_tree
from pyicechunk.storage import keys

__all__ = ["config_from_yaml", "config_to_yaml"]

_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"


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


def _string(text: str, tag: str) -> ScalarNode:
    if "\n" in text:
        return ScalarNode(tag, text, style="|")
    if _plain_is_not_a_string(text):
        return ScalarNode(tag, text, style="'")
    return ScalarNode(tag, text)


def _float_text(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    return repr(value)


def _node(tree: Any, tag: str | None = None) -> Node:
    """The YAML node of a serde tree; a :class:`Tagged` variant becomes a tag."""
    if isinstance(tree, Tagged):
        return _node(tree.content, "!" + tree.name)
    if isinstance(tree, dict):
        items = [(_string(str(k), _STR), _node(v)) for k, v in tree.items()]
        return MappingNode(tag or _MAP, items, flow_style=not items)
    if isinstance(tree, list):
        return SequenceNode(tag or _SEQ, [_node(v) for v in tree], flow_style=not tree)
    if isinstance(tree, str):
        return _string(tree, tag or _STR)
    if tree is None:
        text = "null"
    elif isinstance(tree, bool):
        text = "true" if tree else "false"
    elif isinstance(tree, float):
        text = _float_text(tree)
    elif isinstance(tree, int):
        text = str(tree)
    else:
        # Only a kept unknown value from a FlexBuffer (a blob) can be something else.
        raise IcechunkError(
            f"cannot write the repository config as YAML: {type(tree).__name__} values (kept "
            "from a key this version does not know) have no YAML form; remove that key",
            kind="serialization",
        )
    return ScalarNode(tag or _STR, text)


def config_to_yaml(config: RepositoryConfig) -> bytes:
    """Serialize a config the way icechunk writes ``config.yaml``.

    Parameters
    ----------
    config
        The config to write, with any keys it was read with that this version does not know.

    Returns
    -------
    bytes
        UTF-8 YAML.

    Raises
    ------
    IcechunkError
        If the config cannot be persisted (see
        :func:`~pyicechunk.format.config_serde.config_to_tree`).
    """
    text = yaml.serialize(_node(config_to_tree(config)), Dumper=_Dumper, width=_WIDTH)
    return text.encode("utf-8")


# libyaml folds long plain scalars at 80 columns unless told otherwise; serde_yaml does not fold.
_WIDTH = 2**31 - 1


# --- reading -----------------------------------------------------------------------------------


class _Scalar(Text):
    """A YAML scalar: its text, whether it was plain (unquoted), and its line."""

    def __init__(self, node: ScalarNode) -> None:
        self.text = str(node.value)
        self.plain = node.style is None
        self.line = node.start_mark.line + 1

    def integer(self) -> int | None:
        return _parse_int(self.text) if self.plain else None

    def boolean(self) -> bool | None:
        if self.plain and self.text in _TRUES:
            return True
        if self.plain and self.text in _FALSES:
            return False
        return None

    def string(self) -> str:
        return self.text

    def value(self) -> Any:
        # YAML 1.2's core schema, as serde reads a value it has no type for.
        if not self.plain:
            return self.text
        for read in (self.boolean, self.integer):
            found = read()
            if found is not None:
                return found
        if self.text in _SPECIAL_FLOATS:
            return float(self.text.lower().replace(".", "", 1))
        if _FLOAT.fullmatch(self.text) and not _leading_zero_digits(self.text):
            return float(self.text)
        return self.text

    def where(self) -> str:
        return f" (line {self.line})"


def _tree(node: Node, *, untagged: bool = False) -> Any:
    """The serde tree of a composed YAML node (a local tag makes a :class:`Tagged`)."""
    if not untagged and node.tag.startswith("!"):
        return Tagged(node.tag[1:], _tree(node, untagged=True))
    if isinstance(node, MappingNode):
        # Keys that are not scalars cannot name a field; serde would refuse the document
        # only if the field mattered, so they are left out.
        return {str(k.value): _tree(v) for k, v in node.value if isinstance(k, ScalarNode)}
    if isinstance(node, SequenceNode):
        return [_tree(v) for v in node.value]
    assert isinstance(node, ScalarNode)
    if node.style is None and node.value in _NULLS:
        return None
    return _Scalar(node)


def config_from_yaml(data: bytes, key: str = keys.CONFIG) -> RepositoryConfig:
    """Parse ``config.yaml`` as icechunk does.

    Parameters
    ----------
    data
        The file's bytes.
    key
        Where the bytes came from, for error messages.

    Returns
    -------
    RepositoryConfig
        The stored config; missing keys and ``null`` values are unset, unknown keys are kept.

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
            f"cannot parse {key} as YAML: {err}. Fix the file or delete it to use the defaults.",
            kind="config-deserialization",
        ) from err
    tree = None if node is None else _tree(node)
    if tree is None:
        return RepositoryConfig()
    return config_from_tree(tree, key)
