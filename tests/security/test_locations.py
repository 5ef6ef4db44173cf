"""The location parser on its own: one value per location, and what it refuses."""

from __future__ import annotations

import pytest

from pyicechunk import RepositoryConfig, VirtualChunkContainer, s3_store
from pyicechunk.exceptions import IcechunkError
from pyicechunk.virtual import usable_containers
from pyicechunk.virtual_location import VirtualLocation, parse_container_prefix, parse_location

SAME = [
    # (location, an equivalent spelling)
    ("http://127.0.0.1:8080/d/x", "HTTP://127.0.0.1:8080/d/x"),
    ("http://127.0.0.1:8080/d/x", "http://0x7f.1:8080/d/x"),
    ("http://127.0.0.1:8080/d/x", "http://2130706433:8080/d/x"),
    ("http://127.0.0.1:8080/d/x", "http://0177.0.0.1:8080/d/x"),
    ("http://127.0.0.1:8080/d/x", "http://%31%32%37.0.0.1:08080/d/x"),
    ("http://example.com/d/x", "http://EXAMPLE.com:80/d/x"),
    ("http://example.com/d/x", "http://example.com/d//x#frag"),
    ("http://example.com/d/x", "http://example.com/d/./y/../x?q=1"),
    ("http://example.com/d/x", "http://example.com\\d\\x"),
    ("https://[::1]/d/x", "https://[0:0::1]:443/d/x"),
    ("s3://bucket/d/x", "s3://%62ucket/d/%78"),
    ("s3://bucket/d/x", "S3://bucket/d/%2e/x"),
    ("file:///d/x", "file://localhost/d/x"),
    ("file:///d/x", "file://LOCALHOST/d/%2E%2e/d/x"),
]


@pytest.mark.parametrize(("location", "other"), SAME)
def test_equivalent_spellings_parse_to_one_value(location: str, other: str) -> None:
    assert parse_location(location) == parse_location(other)


def test_parsed_value() -> None:
    parsed = parse_location("https://Example.com:8443/a%20b/c%25d/%C3%A9")
    assert parsed == VirtualLocation("https", "example.com", 8443, ("a b", "c%d", "é"))
    assert parsed.key == "a b/c%d/é"
    assert parsed.authority == "example.com:8443"
    # the printed form reads back to the same value
    assert str(parsed) == "https://example.com:8443/a%20b/c%25d/%C3%A9"
    assert parse_location(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://u:p@h/x", "user info"),
        ("http://h:1%2F@h:2/x", "user info"),
        ("s3://o@b/x", "user info"),
        ("http://h%2Fx/y", "invalid domain character"),
        ("http://h%3A9/y", "invalid domain character"),
        ("http://h%40i/y", "invalid domain character"),
        ("http://h%zz/y", "invalid domain character"),
        ("http://b\u00fccher.de/x", "not ASCII"),
        ("http://b%C3%BCcher.de/x", "not ASCII"),
        ("http://1.2.3.256/x", "invalid IPv4 address"),
        ("http://1.2.3.4.5/x", "invalid IPv4 address"),
        ("http://a.1/x", "invalid IPv4 address"),
        ("http://[::1%25eth0]/x", "invalid IPv6 address"),
        ("http://[zz::1]/x", "invalid IPv6 address"),
        ("http://h:65536/x", "invalid port number"),
        ("http://h:8a/x", "invalid port number"),
        ("s3://b:9000/x", "a port has no meaning"),
        ("file://h/x", "cannot name a host"),
        ("s3://b%2Fc/x", "not a bucket"),
        ("s3://b c/x", "not a bucket"),
        ("s3:///x", "not a bucket"),
        ("gs://b/a%2Fb", "holds '/'"),
        ("gs://b/a\\b", "holds '\\\\'"),
        ("gs://b/a%5Cb", "holds '\\\\'"),
        ("gs://b/a%00b", "control character"),
        ("gs://b/a%0Ab", "control character"),
        ("gs://b/a%FFb", "not UTF-8"),
        ("gs://b/../x", "above the root"),
        ("gs://b/x/%2e%2E/../y", "above the root"),
        ("gs://b/x\n", "control character"),
        ("gs://b/", "names no object"),
        ("gs://b/./", "names no object"),
        ("gs:b/x", "does not start with gs://"),
        ("/x/y", "not an absolute URL"),
    ],
)
def test_refused(location: str, reason: str) -> None:
    with pytest.raises(IcechunkError, match="refusing the virtual chunk location") as info:
        parse_location(location)
    assert reason in str(info.value)
    assert "Nothing was fetched" in str(info.value)


def test_within_is_segment_wise() -> None:
    prefix = parse_container_prefix("s3://b/data/")
    assert parse_location("s3://b/data/x").within(prefix)
    assert parse_location("s3://b/data/x/y").within(prefix)
    assert not parse_location("s3://b/database/x").within(prefix)
    assert not parse_location("s3://b/data").within(prefix)
    assert not parse_location("s3://c/data/x").within(prefix)
    assert not parse_location("gs://b/data/x").within(prefix)
    http = parse_container_prefix("http://h:8080/")
    assert parse_location("http://h:8080/x").within(http)
    assert not parse_location("http://h/x").within(http)
    assert not parse_location("http://h:8081/x").within(http)


@pytest.mark.parametrize(
    "prefix", ["s3://b/data/../", "s3://b/%2e%2e/", "s3://b/./", "s3://b/x?y/", "s3://u@b/"]
)
def test_unparsable_container_prefixes_are_unusable(prefix: str) -> None:
    with pytest.raises(ValueError):
        parse_container_prefix(prefix)
    config = RepositoryConfig.default()
    config.set_virtual_chunk_container(VirtualChunkContainer(prefix, s3_store()))
    assert usable_containers(config) == []


def test_deepest_container_first() -> None:
    config = RepositoryConfig.default()
    for prefix in ("s3://b/", "s3://b/data/deep/", "s3://b/data/"):
        config.set_virtual_chunk_container(VirtualChunkContainer(prefix, s3_store()))
    assert [c.url_prefix for c in usable_containers(config)] == [
        "s3://b/data/deep/",
        "s3://b/data/",
        "s3://b/",
    ]
