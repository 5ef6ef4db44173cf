"""The flatbuffers builder: alignment, defaults, shared vtables, misuse."""

from __future__ import annotations

import random
import struct

import pytest

from pyicechunk.format.flatbuf import Builder, root_table


def _build_random(rng: random.Random) -> tuple[bytes, dict[str, object]]:
    """A root table with one field of every kind, objects created in a random order."""
    b = Builder(initial_size=16)  # small, so the buffer has to grow
    expected: dict[str, object] = {}
    refs: dict[str, int] = {}
    makers = {
        "string": lambda: b.create_string("x" * rng.randrange(9) + "é"),
        "bytes": lambda: b.create_bytes_vector(
            bytes(rng.randrange(256) for _ in range(rng.randrange(7)))
        ),
        "u32s": lambda: b.create_scalar_vector(
            "I", [rng.randrange(2**32) for _ in range(rng.randrange(5))]
        ),
        "structs": lambda: b.create_vector(
            b"".join(
                struct.pack("<QI4x", rng.randrange(2**64), 7) for _ in range(rng.randrange(1, 4))
            ),
            16,
            8,
        ),
        "child": lambda: _child(b, rng.randrange(2**64)),
    }
    for name in rng.sample(list(makers), len(makers)):
        refs[name] = makers[name]()
    children = [_child(b, i) for i in range(rng.randrange(4))]
    refs["children"] = b.create_offset_vector(children)
    b.start_table(10)
    order = list(range(10))
    rng.shuffle(order)
    for slot in order:
        if slot == 0:
            b.add_u8(0, 3)
        elif slot == 1:
            b.add_u64(1, 2**63 + 5)
        elif slot == 2:
            b.add_struct(2, struct.pack("<QQ", 1, 2), 8)
        elif slot == 3:
            b.add_u32(3, 9)
        else:
            b.add_offset(
                slot, refs[["string", "bytes", "u32s", "structs", "child", "children"][slot - 4]]
            )
    buf = b.finish(b.end_table())
    return buf, expected


def _child(b: Builder, value: int) -> int:
    b.start_table(2)
    b.add_u64(1, value)
    return b.end_table()


@pytest.mark.parametrize("seed", range(40))
def test_every_item_is_aligned_relative_to_the_buffer_start(seed: int) -> None:
    buf, _ = _build_random(random.Random(seed))
    assert buf[4:8] == b"Ichk"
    assert len(buf) % 8 == 0
    root = root_table(buf)
    assert root.pos % 4 == 0
    assert root.field_pos(1, 8) % 8 == 0 and root.u64(1) == 2**63 + 5
    assert root.field_pos(2, 16) % 8 == 0 and root.struct_bytes(2, 16) == struct.pack("<QQ", 1, 2)
    assert root.field_pos(3, 4) % 4 == 0 and root.u32(3) == 9
    assert root.u8(0) == 3
    for slot, size in ((5, 1), (6, 4), (7, 16), (9, 4)):
        vec = root.vector(slot, size)
        assert vec is not None
        assert (vec.start - 4) % 4 == 0
        assert vec.start % min(size, 8) == 0
    string = root.string(4)
    assert string is not None and string.endswith("é")
    pos = root.field_pos(4, 4)
    target = pos + struct.unpack_from("<I", buf, pos)[0]
    length = struct.unpack_from("<I", buf, target)[0]
    assert buf[target + 4 + length] == 0  # NUL terminator
    child = root.table(8)
    assert child is not None and child.field_pos(1, 8) % 8 == 0
    children = root.vector(9, 4)
    assert children is not None
    assert [children.table(i).u64(1) for i in range(len(children))] == list(range(len(children)))


def test_defaults_are_omitted_and_read_back() -> None:
    b = Builder()
    b.start_table(4)
    b.add_u8(0, 0)
    b.add_u32(1, 5, default=5)
    b.add_u64(2, 0)
    b.add_u32(3, 1)
    t = root_table(b.finish(b.end_table()))
    assert [t.field_pos(i, 1) for i in range(3)] == [0, 0, 0]
    assert (t.u8(0), t.u32(1, default=5), t.u64(2), t.u32(3)) == (0, 5, 0, 1)
    assert t.string(9) is None and t.table(9) is None and t.vector(9, 4) is None
    assert t.bytes_vector(9) is None and t.struct_bytes(9, 12) is None


def test_identical_vtables_are_shared() -> None:
    b = Builder()
    tables = []
    for value in (1, 2, 3, 4):
        b.start_table(2)
        b.add_u32(0 if value < 4 else 1, value)  # the last table uses another slot
        tables.append(b.end_table())
    root = b.create_offset_vector(tables)
    b.start_table(1)
    b.add_offset(0, root)
    buf = b.finish(b.end_table())
    vec = root_table(buf).vector(0, 4)
    assert vec is not None
    positions = [vec.table(i).pos for i in range(4)]
    vtables = [p - struct.unpack_from("<i", buf, p)[0] for p in positions]
    assert vtables[0] == vtables[1] == vtables[2] != vtables[3]
    assert [vec.table(i).u32(0) for i in range(3)] == [1, 2, 3]
    assert vec.table(3).u32(1) == 4


def test_empty_table_vtable() -> None:
    b = Builder()
    b.start_table(0)
    buf = b.finish(b.end_table())
    t = root_table(buf)
    vt = t.pos - struct.unpack_from("<i", buf, t.pos)[0]
    assert buf[vt : vt + 4] == bytes.fromhex("04000400")


def test_builder_misuse() -> None:
    b = Builder()
    b.start_table(2)
    with pytest.raises(RuntimeError):
        b.create_string("nested")
    with pytest.raises(ValueError, match="slot 1"):
        b.end_table(required=(1,))
    with pytest.raises(ValueError, match="multiple of 8"):
        Builder().create_vector(b"123", 8, 8)


@pytest.mark.parametrize("count", [0, 1, 7, 5000])
def test_an_offset_vector_from_an_array_is_the_one_from_a_list(count: int) -> None:
    import numpy as np

    outs = []
    for as_array in (False, True):
        b = Builder()
        refs = [b.create_string(f"s{i}") for i in range(count)]
        vec = b.create_offset_vector(np.array(refs, dtype=np.int64) if as_array else refs)
        b.start_table(1)
        b.add_offset(0, vec)
        outs.append(b.finish(b.end_table()))
    assert outs[0] == outs[1]
    strings = root_table(outs[1]).vector(0, 4)
    assert strings is not None and len(strings) == count
    assert [strings.string(i) for i in range(count)] == [f"s{i}" for i in range(count)]
