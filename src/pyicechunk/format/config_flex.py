"""The config FlexBuffer of spec-2 repositories (``Repo.config``, FORMAT-V2 §6.3).

It is the config's serde tree (:mod:`~pyicechunk.format.config_serde`) as a FlexBuffer, as
icechunk 2.3 writes it with the Rust ``flexbuffers`` crate: every struct field present (unset
ones null), unit enum variants as strings, newtype and struct variants as one-key maps.
icechunk 2.3 refuses to open a repository whose config has a known key of the wrong type, so
the writer is exact; the reader is serde's (missing keys are defaults) and keeps the keys it
does not know, so that a save writes them back.
"""

from __future__ import annotations

from typing import Any

from pyicechunk.config import RepositoryConfig
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.config_serde import Tagged, config_from_tree, config_to_tree
from pyicechunk.format.flexbuffers import decode_flexbuffer, encode_flexbuffer

__all__ = ["config_from_flexbuffer", "config_to_flexbuffer", "tagged_as_maps"]


def tagged_as_maps(tree: Any) -> Any:
    """The tree with every :class:`Tagged` variant as the one-key map serde writes."""
    if isinstance(tree, Tagged):
        return {tree.name: tagged_as_maps(tree.content)}
    if isinstance(tree, dict):
        return {k: tagged_as_maps(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [tagged_as_maps(v) for v in tree]
    return tree


def config_to_flexbuffer(config: RepositoryConfig) -> bytes:
    """Encode a config as the FlexBuffer icechunk 2.3 stores in ``Repo.config``.

    Parameters
    ----------
    config
        The config, with any keys it was read with that this version does not know.

    Returns
    -------
    bytes
        The FlexBuffer.

    Raises
    ------
    IcechunkError
        If the config cannot be persisted: an HTTP store option named ``headers``, or a kept
        unknown value a FlexBuffer cannot hold (such as a NaN read from YAML).
    """
    tree = tagged_as_maps(config_to_tree(config))
    try:
        return encode_flexbuffer(tree)
    except (TypeError, ValueError) as exc:
        raise IcechunkError(
            f"cannot encode the repository config as a FlexBuffer: {exc}", kind="serialization"
        ) from exc


def config_from_flexbuffer(data: bytes | memoryview, key: str = "repo") -> RepositoryConfig:
    """Decode ``Repo.config``.

    Parameters
    ----------
    data
        The FlexBuffer.
    key
        The object it was stored in, for messages.

    Returns
    -------
    RepositoryConfig
        Missing keys and nulls are unset; unknown keys are kept.

    Raises
    ------
    IcechunkError
        If the bytes are not a FlexBuffer, or a known key holds a value of the wrong kind
        (the message says "deserialization" and names the key, as the reference's does).
    """
    try:
        tree = decode_flexbuffer(data)
    except IcechunkError as exc:
        raise IcechunkError(
            f"error in config deserialization of {key}: the config is not a valid FlexBuffer "
            f"({exc.message}); the repo object is damaged",
            kind="config-deserialization",
        ) from None
    return config_from_tree(tree, f"{key} (config)")
