"""Strings that are not valid UTF-8 (a ``str`` holding a lone surrogate such as
``"\\ud800"``) and byte strings given as vectors.

Every string NusterDB stores or looks up (metadata keys, str values, tags, filter keys
and values, snapshot names) is UTF-8, so a lone surrogate is refused with
``InvalidArgumentError`` (a ``ValueError``; ``FilterError`` inside a filter) whose
message names the string and the surrogate, never a raw ``UnicodeEncodeError`` or a
"must be str, got str". A path the file system encoding cannot hold is refused the same
way. ``bytes`` and ``bytearray`` are both refused as vectors with a ``TypeError``
(iterating them gives raw byte values, not floats). Nothing stored changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, List, Tuple

import numpy as np
import pytest
from db_helpers import state_checksum
from nusterdb import (
    DatabaseConfig,
    DistanceMetric,
    FilterError,
    InvalidArgumentError,
    Metadata,
    NusterDB,
    NusterDBError,
    StorageConfiguration,
    Vector,
)

DIM = 4
LONE = "\ud800"
MIXED = "ab\udfffc"  # a low surrogate at index 2

Call = Callable[[Any], object]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[NusterDB]:
    with NusterDB(str(tmp_path / "db"), dim=DIM) as d:
        d.bulk_add([1, 2], np.ones((2, DIM), np.float32), [{"a": "x"}, {"a": "y"}])
        d.snapshot_named("base")
        yield d


def assert_surrogate_error(err: BaseException, code_point: str, index: int) -> None:
    assert isinstance(err, ValueError)
    assert isinstance(err, NusterDBError)
    assert UnicodeError not in type(err).__mro__
    msg = str(err)
    assert "lone surrogate" in msg, msg
    assert f"U+{code_point}" in msg, msg
    assert f"index {index}" in msg, msg
    assert "got str" not in msg, msg


def vec() -> List[float]:
    return [0.5] * DIM


# (name, call, code point, index, expected class)
CASES: List[Tuple[str, Call, str, int, type]] = [
    ("add_meta_key", lambda d: d.add(9, vec(), {LONE: 1}), "D800", 0, InvalidArgumentError),
    ("add_meta_value", lambda d: d.add(9, vec(), {"k": MIXED}), "DFFF", 2, InvalidArgumentError),
    ("upsert_meta_key", lambda d: d.upsert(1, vec(), {MIXED: 1}), "DFFF", 2, InvalidArgumentError),
    (
        "update_meta_value",
        lambda d: d.update(1, None, {"a": LONE}),
        "D800",
        0,
        InvalidArgumentError,
    ),
    (
        "bulk_add_meta_key",
        lambda d: d.bulk_add([8, 9], np.ones((2, DIM)), [{"ok": 1}, {LONE: 2}]),
        "D800",
        0,
        InvalidArgumentError,
    ),
    ("filter_key", lambda d: d.search(vec(), k=1, filter={LONE: 1}), "D800", 0, FilterError),
    ("filter_value", lambda d: d.search(vec(), k=1, filter={"a": MIXED}), "DFFF", 2, FilterError),
    (
        "filter_nested_value",
        lambda d: d.batch_search(np.ones((1, DIM)), k=1, filter={"a": {"$in": ["x", LONE]}}),
        "D800",
        0,
        FilterError,
    ),
    ("snapshot_named", lambda d: d.snapshot_named(LONE), "D800", 0, InvalidArgumentError),
    (
        "snapshot_with_metadata",
        lambda d: d.snapshot_with_metadata(MIXED, {"a": 1}),
        "DFFF",
        2,
        InvalidArgumentError,
    ),
    (
        "snapshot_with_metadata_key",
        lambda d: d.snapshot_with_metadata("s2", {LONE: 1}),
        "D800",
        0,
        InvalidArgumentError,
    ),
    (
        "restore_snapshot_name",
        lambda d: d.restore_snapshot(LONE, "/tmp/never-made"),
        "D800",
        0,
        InvalidArgumentError,
    ),
    ("delete_snapshot", lambda d: d.delete_snapshot(MIXED), "DFFF", 2, InvalidArgumentError),
]


@pytest.mark.parametrize(
    ("call", "code_point", "index", "cls"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_lone_surrogate_is_a_typed_error_naming_it(
    db: NusterDB, call: Call, code_point: str, index: int, cls: type
) -> None:
    before = state_checksum(db)
    snapshots = [s["name"] for s in db.list_snapshots()]
    with pytest.raises(cls) as info:
        call(db)
    assert_surrogate_error(info.value, code_point, index)
    assert state_checksum(db) == before, "a rejected call changed the database"
    assert [s["name"] for s in db.list_snapshots()] == snapshots


def test_metadata_key_message_names_the_key_not_its_type() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Metadata.with_data({LONE: 1})
    assert_surrogate_error(info.value, "D800", 0)
    assert "metadata key" in str(info.value)
    assert "'\\ud800'" in str(info.value), "the key is shown escaped"
    # A value names its key.
    with pytest.raises(InvalidArgumentError, match='metadata value of key "k"') as info:
        Metadata.with_data({"k": LONE})
    assert_surrogate_error(info.value, "D800", 0)
    # A non-str key is still a TypeError naming its type.
    with pytest.raises(TypeError, match="metadata keys must be str, got int"):
        Metadata.with_data({1: 1})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.set(LONE, 1),
        lambda m: m.set("k", LONE),
        lambda m: m.add_tag(LONE),
        lambda m: m.get(LONE),
        lambda m: m.contains_key(LONE),
        lambda m: m[LONE],
        lambda m: m.remove(LONE),
        lambda m: m.has_tag(LONE),
        lambda m: m.remove_tag(LONE),
        lambda m: Metadata.with_tags(["ok", LONE]),
        lambda m: Metadata.with_data({"a": 1}, tags=[LONE]),
    ],
    ids=[
        "set_key",
        "set_value",
        "add_tag",
        "get",
        "contains_key",
        "getitem",
        "remove",
        "has_tag",
        "remove_tag",
        "with_tags",
        "with_data_tags",
    ],
)
def test_metadata_methods_refuse_lone_surrogates(call: Callable[[Metadata], object]) -> None:
    m = Metadata.with_data({"a": 1}, tags=["t"])
    with pytest.raises(InvalidArgumentError) as info:
        call(m)
    assert_surrogate_error(info.value, "D800", 0)
    assert m.to_dict() == {"a": 1}, "a rejected call changed it"
    assert m.tags() == ["t"], "a rejected call changed it"
    # `in` stays dict-like: a key that cannot be stored is simply not there.
    assert LONE not in m


def test_escapable_surrogates_are_still_refused_in_stored_strings(db: NusterDB) -> None:
    # "\udc80".."\udcff" are what surrogateescape decodes bytes to; they are still not
    # UTF-8, so they are refused as keys too.
    with pytest.raises(InvalidArgumentError) as info:
        db.add(9, vec(), {"\udcff": 1})
    assert_surrogate_error(info.value, "DCFF", 0)


@pytest.mark.parametrize(
    "make_path",
    [lambda p: str(p / LONE), lambda p: p / ("x" + LONE)],
    ids=["str", "pathlib"],
)
def test_path_with_a_lone_surrogate_is_a_typed_error(
    tmp_path: Path, make_path: Callable[[Path], Any]
) -> None:
    path = make_path(tmp_path)
    calls: List[Callable[[], object]] = [
        lambda: NusterDB(path, dim=DIM),
        lambda: NusterDB.open(path),
        lambda: NusterDB.simple(path, DIM),
    ]
    for call in calls:
        with pytest.raises(InvalidArgumentError) as info:
            call()
        assert "path" in str(info.value)
        assert "lone surrogate" in str(info.value)
        assert "U+D800" in str(info.value)
    assert list(tmp_path.iterdir()) == [], "something was created"


def test_restore_to_a_path_with_a_lone_surrogate_is_a_typed_error(
    db: NusterDB, tmp_path: Path
) -> None:
    with pytest.raises(InvalidArgumentError, match="lone surrogate U\\+D800"):
        db.restore_snapshot("base", str(tmp_path / ("r" + LONE)))
    assert not any(p.name.startswith("r") for p in tmp_path.iterdir())


def test_non_path_types_are_still_type_errors(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="path must be"):
        NusterDB(12, dim=DIM)  # type: ignore[arg-type]


# ------------------------------------------------------------------- bytes / bytearray

BYTE_LIKES = [
    pytest.param(lambda b: bytes(b), id="bytes"),
    pytest.param(lambda b: bytearray(b), id="bytearray"),
]


@pytest.mark.parametrize("make", BYTE_LIKES)
def test_bytes_and_bytearray_are_refused_alike_as_vectors(
    db: NusterDB, make: Callable[[bytes], Any]
) -> None:
    raw = make(np.ones(DIM, np.float32).tobytes()[:DIM])  # DIM bytes: the right length
    before = state_checksum(db)
    for call in (
        lambda: Vector(raw),
        lambda: db.add(9, raw),
        lambda: db.upsert(1, raw),
        lambda: db.update(1, raw),
        lambda: db.search(raw, k=1),
        lambda: Vector([1.0] * DIM).euclidean_distance(raw),
    ):
        with pytest.raises(TypeError, match=r"numpy\.frombuffer") as info:
            call()
        assert type(raw).__name__ in str(info.value)
    assert state_checksum(db) == before
    # The documented way to read a float32 buffer works.
    buf = make(np.arange(1, DIM + 1, dtype=np.float32).tobytes())
    assert Vector(np.frombuffer(buf, dtype=np.float32)).data == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize(
    "make",
    [
        lambda: DistanceMetric.from_name(LONE),
        lambda: DatabaseConfig(4, distance_metric=LONE),
        lambda: DatabaseConfig(4, index_type=LONE),
        lambda: StorageConfiguration(compression=LONE),
        lambda: StorageConfiguration(**{LONE: 1}),  # type: ignore[arg-type]
    ],
    ids=["metric-name", "config-metric", "config-index-type", "compression", "keyword"],
)
def test_config_names_with_a_lone_surrogate_are_typed_errors(make: Callable[[], object]) -> None:
    with pytest.raises(InvalidArgumentError, match="lone surrogate"):
        make()
