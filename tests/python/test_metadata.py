"""``nusterdb.Metadata``: typed values, dict-like access, tags, bookkeeping, and rejection
of bad input without any change."""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, List, Tuple, Union

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nusterdb import InvalidArgumentError, Metadata, NusterDBError

Value = Union[str, int, float, bool]


def snapshot(m: Metadata) -> Tuple[int, int, List[Tuple[str, Value]], List[str]]:
    """Everything observable about ``m`` except the clock."""
    return (m.version, m.updated_at, m.items(), m.tags())


def typed(value: object) -> Tuple[type, object]:
    """Value with its exact type, so ``3 == 3.0 == True`` cannot hide a type change."""
    return (type(value), value)


# ----------------------------------------------------------------------------- values


def test_values_keep_their_type() -> None:
    m = Metadata()
    m.set("i", 3)
    m.set("f", 3.0)
    m.set("b", True)
    m.set("s", "3")
    assert typed(m.get("i")) == (int, 3)
    assert typed(m.get("f")) == (float, 3.0)
    assert typed(m.get("b")) == (bool, True)
    assert typed(m.get("s")) == (str, "3")


def test_int_and_float_of_equal_value_are_distinct() -> None:
    a = Metadata.with_data({"x": 3})
    b = Metadata.with_data({"x": 3.0})
    assert a != b
    assert type(a["x"]) is int
    assert type(b["x"]) is float


def test_bool_and_int_are_distinct() -> None:
    assert Metadata.with_data({"x": True}) != Metadata.with_data({"x": 1})
    assert Metadata.with_data({"x": False}) != Metadata.with_data({"x": 0})


@pytest.mark.parametrize(
    "value",
    [0, -1, 2**63 - 1, -(2**63), 0.0, -0.0, 1e308, 5e-324, -1.5, "", "ünï©ødé ✓", "a" * 10_000],
    ids=repr,
)
def test_value_round_trips_exactly(value: Value) -> None:
    m = Metadata()
    m.set("k", value)
    got = m.get("k")
    assert typed(got) == typed(value)
    if isinstance(value, float):
        assert math.copysign(1.0, got) == math.copysign(1.0, value)


def test_get_default() -> None:
    m = Metadata.with_data({"a": 1})
    assert m.get("missing") is None
    assert m.get("missing", 7) == 7
    sentinel = object()
    assert m.get("missing", sentinel) is sentinel
    assert m.get("a", 7) == 1


def test_getitem_missing_key_is_key_error() -> None:
    m = Metadata.with_data({"a": 1})
    assert m["a"] == 1
    with pytest.raises(KeyError, match="nope"):
        m["nope"]


def test_keys_items_values_are_sorted_by_key() -> None:
    m = Metadata()
    entries: List[Tuple[str, Value]] = [("zeta", 1), ("alpha", "x"), ("Mid", 2.5), ("beta", False)]
    for k, v in entries:
        m.set(k, v)
    assert m.keys() == ["Mid", "alpha", "beta", "zeta"]
    assert m.values() == [2.5, "x", False, 1]
    assert m.items() == [("Mid", 2.5), ("alpha", "x"), ("beta", False), ("zeta", 1)]


def test_set_overwrites_and_may_change_type() -> None:
    m = Metadata.with_data({"a": 1})
    m.set("a", "one")
    assert m["a"] == "one"
    assert len(m) == 1


def test_contains_key_and_in() -> None:
    m = Metadata.with_data({"a": 1}, ["t"])
    assert m.contains_key("a")
    assert "a" in m
    assert not m.contains_key("b")
    assert "b" not in m
    assert "t" not in m  # tags are not fields


def test_in_with_a_non_string_is_false() -> None:
    # Like a dict: membership of a key that cannot be present is False, not an error.
    m = Metadata.with_data({"1": 1})
    assert 1 not in m
    assert None not in m


def test_remove_returns_the_value_or_none() -> None:
    m = Metadata.with_data({"a": 1.5, "b": "x"})
    assert typed(m.remove("a")) == (float, 1.5)
    assert m.remove("a") is None
    assert m.keys() == ["b"]


def test_len_and_is_empty() -> None:
    m = Metadata()
    assert len(m) == m.len() == 0
    assert m.is_empty()
    m.set("a", 1)
    assert len(m) == m.len() == 1
    assert not m.is_empty()
    m.remove("a")
    assert m.is_empty()


def test_tags_are_not_counted_by_len_but_make_it_non_empty() -> None:
    m = Metadata.with_tags(["x"])
    assert len(m) == 0
    assert not m.is_empty()


# ----------------------------------------------------------------------------- tags


def test_tags_add_remove_has_return_values() -> None:
    m = Metadata()
    assert m.add_tag("red") is True
    assert m.add_tag("red") is False
    assert m.has_tag("red")
    assert not m.has_tag("blue")
    assert m.remove_tag("red") is True
    assert m.remove_tag("red") is False
    assert not m.has_tag("red")


def test_tags_are_sorted_and_unique() -> None:
    m = Metadata.with_tags(["b", "a", "c", "a"])
    assert m.tags() == ["a", "b", "c"]
    m.add_tag("0")
    assert m.tags() == ["0", "a", "b", "c"]


def test_with_data_and_tags() -> None:
    m = Metadata.with_data({"n": 1, "s": "x"}, ["t1", "t2"])
    assert m.to_dict() == {"n": 1, "s": "x"}
    assert m.tags() == ["t1", "t2"]
    assert Metadata.with_data({}).is_empty()
    assert Metadata.with_data({"a": 1}, None).tags() == []


def test_empty_tag_is_invalid_argument() -> None:
    m = Metadata()
    before = snapshot(m)
    with pytest.raises(InvalidArgumentError):
        m.add_tag("")
    assert snapshot(m) == before
    with pytest.raises(InvalidArgumentError):
        Metadata.with_tags(["ok", ""])
    with pytest.raises(InvalidArgumentError):
        Metadata.with_data({"a": 1}, [""])


def test_to_dict_round_trip() -> None:
    m = Metadata.with_data({"i": 7, "f": 0.5, "b": False, "s": "str"}, ["x", "y"])
    d = m.to_dict()
    assert d == {"i": 7, "f": 0.5, "b": False, "s": "str"}
    assert typed(d["b"]) == (bool, False)
    assert Metadata.with_data(m.to_dict(), m.tags()) == m


def test_to_dict_is_a_copy() -> None:
    m = Metadata.with_data({"a": 1})
    d = m.to_dict()
    d["b"] = 2
    assert "b" not in m


def test_equality_ignores_bookkeeping_and_accepts_dicts() -> None:
    a = Metadata.with_data({"a": 1})
    b = Metadata()
    b.set("a", 2)
    b.set("a", 1)
    assert a == b
    assert a.version != b.version
    assert a == {"a": 1}
    assert a != {"a": 1.0}
    assert a != Metadata.with_data({"a": 1}, ["t"])
    assert a != "a"


def test_metadata_is_unhashable() -> None:
    with pytest.raises(TypeError):
        hash(Metadata())


def test_repr_shows_fields_and_tags() -> None:
    r = repr(Metadata.with_data({"k": "v", "n": 2}, ["t"]))
    assert r.startswith("Metadata(")
    for part in ("k", "v", "2", "t", "version=1"):
        assert part in r


# ----------------------------------------------------------------------------- bookkeeping


def test_version_starts_at_one_and_bumps_on_every_change() -> None:
    m = Metadata()
    assert m.version == 1
    m.set("a", 1)
    assert m.version == 2
    m.set("a", 1)  # a write is a change even with an equal value (core docs)
    assert m.version == 3
    m.set("b", "x")
    assert m.version == 4
    assert m.remove("b") == "x"
    assert m.version == 5
    assert m.add_tag("t")
    assert m.version == 6
    assert m.remove_tag("t")
    assert m.version == 7


def test_version_does_not_bump_on_no_ops() -> None:
    m = Metadata.with_data({"a": 1}, ["t"])
    v = m.version
    assert v == 1
    assert m.remove("missing") is None
    assert m.add_tag("t") is False
    assert m.remove_tag("missing") is False
    m.get("a")
    m.keys()
    m.to_dict()
    _ = "a" in m
    assert m.version == v


def test_with_data_and_with_tags_start_at_version_one() -> None:
    assert Metadata.with_data({"a": 1, "b": 2}, ["x", "y"]).version == 1
    assert Metadata.with_tags(["x", "y"]).version == 1


def test_timestamps_are_unix_seconds_now() -> None:
    before = int(time.time())
    m = Metadata()
    after = int(time.time()) + 1
    assert before <= m.created_at <= after
    assert m.created_at <= m.updated_at <= after
    assert isinstance(m.created_at, int)
    assert 0 <= m.age_seconds() <= 2


def test_updated_at_moves_on_change() -> None:
    m = Metadata()
    created = m.created_at
    time.sleep(1.05)
    m.set("a", 1)
    assert m.updated_at >= created + 1
    assert m.created_at == created
    assert m.age_seconds() >= 1


# ----------------------------------------------------------------------------- bad input

BAD_KEY_CASES = ["", "$gt", "$", "$and"]


@pytest.mark.parametrize("key", BAD_KEY_CASES)
def test_bad_key_is_invalid_argument_and_changes_nothing(key: str) -> None:
    m = Metadata.with_data({"a": 1}, ["t"])
    before = snapshot(m)
    with pytest.raises(InvalidArgumentError) as info:
        m.set(key, 1)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, NusterDBError)
    assert snapshot(m) == before
    with pytest.raises(InvalidArgumentError):
        Metadata.with_data({key: 1})


def test_dollar_inside_a_key_is_fine() -> None:
    m = Metadata()
    m.set("price$", 1)
    m.set("a$b", 2)
    assert m.keys() == ["a$b", "price$"]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float32("nan")], ids=repr)
def test_non_finite_float_is_invalid_argument_and_changes_nothing(value: float) -> None:
    m = Metadata.with_data({"a": 1.0})
    before = snapshot(m)
    with pytest.raises(InvalidArgumentError, match="finite"):
        m.set("a", value)
    with pytest.raises(InvalidArgumentError):
        m.set("b", value)
    assert snapshot(m) == before
    with pytest.raises(InvalidArgumentError):
        Metadata.with_data({"x": value})


@pytest.mark.parametrize("value", [2**63, 2**64, 10**30, -(2**63) - 1, np.uint64(2**63)], ids=repr)
def test_int_outside_int64_is_overflow_error_and_changes_nothing(value: int) -> None:
    m = Metadata.with_data({"a": 1})
    before = snapshot(m)
    with pytest.raises(OverflowError):
        m.set("a", value)
    assert snapshot(m) == before
    with pytest.raises(OverflowError):
        Metadata.with_data({"x": value})


@pytest.mark.parametrize(
    "value",
    [[1, 2], (1,), {"a": 1}, None, {1}, b"bytes", 1 + 2j, object(), Metadata()],
    ids=lambda v: type(v).__name__,
)
def test_non_scalar_value_is_type_error_and_changes_nothing(value: Any) -> None:
    m = Metadata.with_data({"a": 1})
    before = snapshot(m)
    with pytest.raises(TypeError):
        m.set("a", value)
    assert snapshot(m) == before
    with pytest.raises(TypeError):
        Metadata.with_data({"x": value})


@pytest.mark.parametrize("key", [1, None, b"k", ("k",)], ids=repr)
def test_non_string_key_is_type_error(key: Any) -> None:
    m = Metadata()
    with pytest.raises(TypeError):
        m.set(key, 1)
    with pytest.raises(TypeError):
        Metadata.with_data({key: 1})
    assert m.version == 1


def test_with_data_rejects_a_non_dict() -> None:
    with pytest.raises(TypeError):
        Metadata.with_data([("a", 1)])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Metadata.with_tags("abc")  # type: ignore[arg-type]


def test_bad_entry_in_with_data_builds_nothing() -> None:
    with pytest.raises(InvalidArgumentError):
        Metadata.with_data({"good": 1, "$bad": 2})


# ----------------------------------------------------------------------------- numpy scalars

NUMPY_CASES: List[Tuple[Any, type, Value]] = [
    (np.int64(5), int, 5),
    (np.int32(-7), int, -7),
    (np.uint8(200), int, 200),
    (np.int64(2**63 - 1), int, 2**63 - 1),
    (np.float32(0.5), float, 0.5),
    (np.float64(1.25), float, 1.25),
    (np.float16(2.0), float, 2.0),
    (np.bool_(True), bool, True),
    (np.bool_(False), bool, False),
    (np.str_("np"), str, "np"),
]


@pytest.mark.parametrize(("value", "kind", "expected"), NUMPY_CASES, ids=repr)
def test_numpy_scalars_are_accepted_with_the_right_type(
    value: Any, kind: type, expected: Value
) -> None:
    m = Metadata()
    m.set("k", value)
    assert typed(m.get("k")) == (kind, expected)
    assert typed(Metadata.with_data({"k": value})["k"]) == (kind, expected)


def test_numpy_float32_keeps_its_float32_value() -> None:
    m = Metadata()
    m.set("k", np.float32(0.1))  # type: ignore[arg-type]  # the stubs list builtins only
    assert m["k"] == float(np.float32(0.1))


# ----------------------------------------------------------------------------- properties

KEYS = st.text(min_size=1, max_size=20).filter(lambda k: not k.startswith("$"))
VALUES: st.SearchStrategy[Value] = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(max_size=50),
)


@given(st.dictionaries(KEYS, VALUES, max_size=20), st.lists(st.text(min_size=1), max_size=5))
def test_random_dicts_round_trip(data: Dict[str, Value], tags: List[str]) -> None:
    m = Metadata.with_data(data, tags)
    out = m.to_dict()
    assert {k: typed(v) for k, v in out.items()} == {k: typed(v) for k, v in data.items()}
    assert m.keys() == sorted(data)
    assert m.tags() == sorted(set(tags))
    assert Metadata.with_data(out, m.tags()) == m
    assert len(m) == len(data)


@given(st.lists(st.tuples(KEYS, VALUES), max_size=30))
def test_sets_behave_like_a_dict(ops: List[Tuple[str, Value]]) -> None:
    m = Metadata()
    model: Dict[str, Value] = {}
    for k, v in ops:
        m.set(k, v)
        model[k] = v
    assert m.items() == sorted(model.items(), key=lambda kv: kv[0])
    assert m.version == 1 + len(ops)


def test_many_fields(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = Metadata()
    expected: Dict[str, Value] = {}
    makers: List[Callable[[], Value]] = [
        lambda: int(rng.integers(-(2**62), 2**62)),
        lambda: float(rng.standard_normal()),
        lambda: bool(rng.integers(2)),
        lambda: str(rng.integers(1_000_000)),
    ]
    for i in range(2000):
        v = makers[i % 4]()
        m.set(f"key{i:05d}", v)
        expected[f"key{i:05d}"] = v
    assert m.to_dict() == expected
    assert m.version == 2001
