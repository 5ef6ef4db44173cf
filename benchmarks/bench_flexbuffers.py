"""FlexBuffers: pyicechunk's codec against the ``flatbuffers`` package's, for correctness
(FORMAT-V2 §6.1's table of what icechunk 2.3.0 writes) and speed (commit metadata and a
repository config as 2.3.0 stores them).

    python benchmarks/bench_flexbuffers.py

Needs the ``flatbuffers`` package (``pip install flatbuffers``), used only here.
"""

from __future__ import annotations

import timeit
from pathlib import Path
from typing import Any

from flatbuffers import flexbuffers as fb

from pyicechunk.format.flexbuffers import decode_flexbuffer, encode_flexbuffer
from pyicechunk.format.header import FileType, open_object
from pyicechunk.format.repo_info import decode_repo_info

FIXTURE = Path(__file__).parents[1] / "tests" / "format" / "fixtures" / "v2_repo_varied"

REFERENCE = [
    (True, "016801"),
    (None, "000001"),
    (-3, "fd0401"),
    (5, "050801"),
    (300, "2c010902"),
    (2**40, "00000000000100000b08"),
    (2**63 + 5, "05000000000000800b08"),
    (1.5, "0000c03f0e04"),
    (0.1, "9a9999999999b93f0f08"),
    ("me", "026d6500031401"),
    ({}, "00000100002401"),
    ([], "00002801"),
    ({"is_root": True}, "69735f726f6f7400010901010101680224 01".replace(" ", "")),
]


def _package_dumps(value: Any) -> bytes | str:
    try:
        return bytes(fb.Dumps(value))
    except Exception as exc:  # the package refuses some values
        return f"error: {exc}"


def correctness() -> None:
    print("value            2.3.0 bytes              ours   flatbuffers.flexbuffers")
    for value, hex_bytes in REFERENCE:
        ref = bytes.fromhex(hex_bytes)
        ours = "same" if encode_flexbuffer(value) == ref else "DIFF"
        theirs = _package_dumps(value)
        if isinstance(theirs, bytes):
            theirs = "same" if theirs == ref else f"differs ({theirs.hex()})"
        print(f"{value!r:16} {hex_bytes:24} {ours:6} {theirs}")


def _config() -> Any:
    content = open_object(FIXTURE.read_bytes(), FileType.REPO_INFO, "repo").content
    config = decode_repo_info(content).config
    assert config is not None
    return decode_flexbuffer(config)


METADATA = {
    "author": "someone@example.org",
    "run": 1234,
    "tile": [12, 7],
    "score": 0.875,
    "tags": ["nightly", "ocean", "v3"],
    "__icechunk": {"rebase_attempts": 0},
}


def _time(fn: Any, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def speed() -> None:
    print("\ncase             op       ours (us)  flatbuffers (us)")
    for name, value in (("commit metadata", METADATA), ("repo config", _config())):
        ours_bytes = encode_flexbuffer(value)
        theirs_bytes = bytes(fb.Dumps(value))
        assert decode_flexbuffer(theirs_bytes) == value
        assert fb.Loads(ours_bytes) == value
        n = 2000
        rows = [
            ("encode", lambda v=value: encode_flexbuffer(v), lambda v=value: fb.Dumps(v)),
            (
                "decode",
                lambda b=ours_bytes: decode_flexbuffer(b),
                lambda b=theirs_bytes: fb.Loads(b),
            ),
        ]
        for op, ours, theirs in rows:
            print(f"{name:16} {op:8} {_time(ours, n):9.1f}  {_time(theirs, n):16.1f}")
        print(f"{name:16} size     {len(ours_bytes):9d}  {len(theirs_bytes):16d}")


if __name__ == "__main__":
    correctness()
    speed()
