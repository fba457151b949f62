"""``nusterdb.Vector``: construction, validation, the sequence/numpy protocols, maths and
arithmetic, each checked against numpy."""

from __future__ import annotations

import copy
import math
import operator
import pickle
import warnings
from typing import Any, Callable, List, Sequence

import numpy as np
import numpy.typing as npt
import nusterdb
import pytest
from nusterdb import (
    DimensionMismatchError,
    InvalidArgumentError,
    InvalidVectorError,
    NusterDBError,
    Vector,
)

F32 = np.float32
EPS32 = float(np.finfo(np.float32).eps)


def as_f32(data: Sequence[float]) -> npt.NDArray[np.float32]:
    return np.asarray(data, dtype=np.float32)


def random_f32(rng: np.random.Generator, dim: int, scale: float = 1.0) -> npt.NDArray[np.float32]:
    return (rng.standard_normal(dim) * scale).astype(np.float32)


# --------------------------------------------------------------------------- construction


def test_construct_from_list_of_floats() -> None:
    v = Vector([1.0, -2.5, 3.25])
    assert v.data == [1.0, -2.5, 3.25]
    assert v.dimension == 3


def test_construct_from_tuple_and_ints() -> None:
    v = Vector((1, 2, 3))
    assert v.data == [1.0, 2.0, 3.0]
    assert all(isinstance(x, float) for x in v.data)


def test_construct_from_float32_array_keeps_every_bit(rng: np.random.Generator) -> None:
    a = random_f32(rng, 97)
    v = Vector(a)
    np.testing.assert_array_equal(v.to_numpy(), a)


def test_construct_from_float64_array_rounds_to_float32(rng: np.random.Generator) -> None:
    a = rng.standard_normal(64)
    v = Vector(a)
    np.testing.assert_array_equal(v.to_numpy(), a.astype(np.float32))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32])
def test_construct_from_integer_array(dtype: type) -> None:
    a: npt.NDArray[Any] = np.arange(1, 6).astype(dtype)
    v = Vector(a)
    assert v.data == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_construct_from_bool_and_float16_arrays() -> None:
    assert Vector(np.array([True, False, True])).data == [1.0, 0.0, 1.0]
    assert Vector(np.array([0.5, 1.5], dtype=np.float16)).data == [0.5, 1.5]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_construct_from_non_contiguous_slice(rng: np.random.Generator, dtype: type) -> None:
    base: npt.NDArray[Any] = (rng.standard_normal(40) * 10).astype(dtype)
    sliced = base[::2]
    assert not sliced.flags["C_CONTIGUOUS"]
    v = Vector(sliced)
    np.testing.assert_array_equal(v.to_numpy(), sliced.astype(np.float32))


def test_construct_from_reversed_and_column_slices(rng: np.random.Generator) -> None:
    m = random_f32(rng, 30).reshape(5, 6)
    np.testing.assert_array_equal(Vector(m[:, 2]).to_numpy(), m[:, 2])
    np.testing.assert_array_equal(Vector(m[0, ::-1]).to_numpy(), m[0, ::-1])


def test_construct_from_fortran_order_row(rng: np.random.Generator) -> None:
    m = np.asfortranarray(random_f32(rng, 12).reshape(3, 4))
    np.testing.assert_array_equal(Vector(m[1]).to_numpy(), m[1])


def test_construct_from_vector_copies() -> None:
    a = Vector([3.0, 4.0])
    b = Vector(a)
    b.normalize_mut()
    assert a.data == [3.0, 4.0]


def test_construct_from_numpy_scalars_in_a_list() -> None:
    values: List[Any] = [np.float32(1.5), np.int64(2), np.float64(-3)]
    assert Vector(values).data == [1.5, 2.0, -3.0]


# --------------------------------------------------------------------------- rejection


@pytest.mark.parametrize("empty", [[], (), np.array([], dtype=np.float32), np.zeros(0)])
def test_empty_input_is_invalid_vector(empty: Any) -> None:
    with pytest.raises(InvalidVectorError, match="empty"):
        Vector(empty)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("position", [0, 2, 6])
def test_non_finite_component_is_invalid_vector_naming_position(bad: float, position: int) -> None:
    data = [1.0] * 7
    data[position] = bad
    for source in (data, np.array(data), np.array(data, dtype=np.float32)):
        with pytest.raises(InvalidVectorError, match=rf"position {position}\b") as info:
            Vector(source)
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, NusterDBError)


def test_first_bad_position_is_the_one_named() -> None:
    with pytest.raises(InvalidVectorError, match=r"position 1\b"):
        Vector([0.0, math.inf, math.nan])


@pytest.mark.parametrize("big", [1e39, -1e39, 3.5e38, np.finfo(np.float64).max])
def test_float64_value_overflowing_float32_is_invalid_vector(big: float) -> None:
    with pytest.raises(InvalidVectorError, match=r"position 1\b"):
        Vector([0.0, big])
    with pytest.raises(InvalidVectorError, match=r"position 1\b"):
        Vector(np.array([0.0, big]))


def test_largest_float32_is_accepted() -> None:
    big = float(np.finfo(np.float32).max)
    assert Vector([big, -big]).data == [big, -big]


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((2, 3)),
        np.zeros((1, 3), dtype=np.float32),
        np.zeros((3, 1)),
        np.zeros((2, 2, 2)),
        np.array(1.0, dtype=np.float32),
    ],
    ids=["2x3", "1x3-f32", "3x1", "3-d", "0-d"],
)
def test_array_that_is_not_1d_is_value_error(array: npt.NDArray[Any]) -> None:
    with pytest.raises(ValueError, match="1-D"):
        Vector(array)


@pytest.mark.parametrize(
    "bad",
    [
        "1.0, 2.0",
        "",
        None,
        {"a": 1.0},
        {1.0, 2.0},
        1.0,
        3,
        ["1.0", "2.0"],
        [1.0, None],
        [[1.0, 2.0]],
        [1.0, 2j],
        object(),
    ],
    ids=repr,
)
def test_non_numeric_input_is_type_error(bad: Any) -> None:
    with pytest.raises(TypeError):
        Vector(bad)


def test_string_and_object_arrays_are_type_errors() -> None:
    with pytest.raises(TypeError):
        Vector(np.array(["a", "b"]))
    with pytest.raises(TypeError):
        Vector(np.array([1.0, "a"], dtype=object))
    # Object arrays are refused whatever they hold, rather than coerced element-wise.
    with pytest.raises(TypeError):
        Vector(np.array([1.0, None], dtype=object))


def test_numeric_string_array_is_type_error_like_a_list_of_strings() -> None:
    # Vector(["1", "2"]) is a TypeError; the same strings in a numpy array must not be
    # parsed into numbers behind the caller's back.
    with pytest.raises(TypeError):
        Vector(["1", "2"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        Vector(np.array(["1", "2"]))
    with pytest.raises(TypeError):
        Vector(np.array([b"1", b"2"]))


@pytest.mark.parametrize("dtype", [">f4", ">f8", "<f4", ">i4"])
def test_construct_from_either_byte_order(dtype: str) -> None:
    a = np.array([1.5, -2.0, 3.25], dtype=dtype) if "f" in dtype else np.array([1, -2, 3], dtype)
    np.testing.assert_array_equal(Vector(a).to_numpy(), a.astype(np.float32))


def test_construct_from_read_only_array() -> None:
    a = np.arange(4, dtype=np.float32)
    a.flags.writeable = False
    assert Vector(a).data == [0.0, 1.0, 2.0, 3.0]


def test_complex_array_is_type_error_even_when_warnings_are_ignored() -> None:
    # Dropping the imaginary part is lossy, so it must be refused outright, not only
    # when numpy's ComplexWarning happens to be turned into an error (as under pytest).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TypeError):
            Vector(np.array([1 + 2j, 3 + 0j]))


# --------------------------------------------------------------------------- constructors


@pytest.mark.parametrize("dim", [1, 3, 384, 1536])
def test_zeros_and_ones(dim: int) -> None:
    assert Vector.zeros(dim).data == [0.0] * dim
    assert Vector.ones(dim).data == [1.0] * dim
    assert Vector.zeros(dim).dimension == dim


@pytest.mark.parametrize("factory", [Vector.zeros, Vector.ones, Vector.random, Vector.unit_random])
def test_zero_dimension_is_rejected(factory: Callable[[int], Vector]) -> None:
    with pytest.raises(InvalidVectorError):
        factory(0)


@pytest.mark.parametrize("factory", [Vector.zeros, Vector.ones, Vector.random, Vector.unit_random])
def test_negative_dimension_is_overflow_error(factory: Callable[[int], Vector]) -> None:
    with pytest.raises(OverflowError):
        factory(-1)


def test_random_is_in_the_default_range(seed: int) -> None:
    data = Vector.random(10_000, seed=seed).to_numpy()
    assert data.min() >= -1.0
    assert data.max() < 1.0
    # Uniform on [-1, 1): mean 0 and std 1/sqrt(3) to within sampling error.
    assert abs(float(data.mean())) < 0.05
    assert abs(float(data.std()) - 1 / math.sqrt(3)) < 0.02


@pytest.mark.parametrize(("lo", "hi"), [(0.0, 1.0), (-5.0, -4.0), (10.0, 1000.0), (-1e-3, 1e-3)])
def test_random_respects_min_and_max(seed: int, lo: float, hi: float) -> None:
    data = Vector.random(5000, min=lo, max=hi, seed=seed).to_numpy()
    assert data.min() >= F32(lo)
    assert data.max() < F32(hi)
    # It spreads over the interval rather than sitting at one end.
    assert data.max() - data.min() > 0.9 * (hi - lo)


@pytest.mark.parametrize(("lo", "hi"), [(1.0, 1.0), (2.0, 1.0), (math.nan, 1.0), (0.0, math.inf)])
def test_random_with_a_bad_range_is_invalid_argument(lo: float, hi: float) -> None:
    with pytest.raises(InvalidArgumentError):
        Vector.random(4, min=lo, max=hi, seed=1)


def test_random_is_reproducible_for_a_seed(seed: int) -> None:
    assert Vector.random(128, seed=seed) == Vector.random(128, seed=seed)
    assert Vector.random(128, -3.0, 7.0, seed) == Vector.random(128, -3.0, 7.0, seed)
    assert Vector.unit_random(128, seed=seed) == Vector.unit_random(128, seed=seed)


def test_different_seeds_give_different_vectors(seed: int) -> None:
    other = (seed + 1) % 2**63
    assert Vector.random(64, seed=seed) != Vector.random(64, seed=other)
    assert Vector.unit_random(64, seed=seed) != Vector.unit_random(64, seed=other)


def test_unseeded_random_differs_between_calls() -> None:
    assert Vector.random(64) != Vector.random(64)
    assert Vector.unit_random(64) != Vector.unit_random(64)


@pytest.mark.parametrize("dim", [1, 2, 3, 97, 384, 1536])
def test_unit_random_has_norm_one(seed: int, dim: int) -> None:
    u = Vector.unit_random(dim, seed=seed)
    assert u.dimension == dim
    assert u.is_normalized(1e-5)
    assert math.isclose(float(np.linalg.norm(u.to_numpy().astype(np.float64))), 1.0, rel_tol=1e-5)


def test_unit_random_covers_both_signs(seed: int) -> None:
    # Uniform on the sphere: each coordinate is symmetric around zero.
    data = np.array([Vector.unit_random(3, seed=seed + i).data for i in range(400)])
    assert (data > 0).mean() == pytest.approx(0.5, abs=0.1)


def test_seed_above_int64_is_accepted_and_negative_seed_is_rejected() -> None:
    assert Vector.random(4, seed=2**64 - 1) == Vector.random(4, seed=2**64 - 1)
    with pytest.raises(OverflowError):
        Vector.random(4, seed=-1)


# --------------------------------------------------------------------------- protocols


def test_dimension_dim_and_len_agree(rng: np.random.Generator) -> None:
    v = Vector(random_f32(rng, 17))
    assert v.dimension == v.dim() == len(v) == 17


def test_data_is_a_list_copy() -> None:
    v = Vector([1.0, 2.0])
    d = v.data
    assert isinstance(d, list)
    d[0] = 99.0
    assert v.data == [1.0, 2.0]


def test_indexing_positive_and_negative(rng: np.random.Generator) -> None:
    a = random_f32(rng, 9)
    v = Vector(a)
    for i in range(-9, 9):
        assert v[i] == float(a[i])
        assert isinstance(v[i], float)


@pytest.mark.parametrize("index", [5, 6, 100, -6, -100])
def test_indexing_out_of_range_is_index_error(index: int) -> None:
    v = Vector([1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(IndexError):
        v[index]


def test_indexing_with_huge_int_raises_not_panics() -> None:
    v = Vector([1.0])
    with pytest.raises((IndexError, OverflowError)):
        v[2**70]


def test_iteration_yields_floats_in_order(rng: np.random.Generator) -> None:
    a = random_f32(rng, 11)
    v = Vector(a)
    items = list(v)
    assert items == [float(x) for x in a]
    assert [x for x in v] == items
    assert sum(v) == pytest.approx(float(a.astype(np.float64).sum()), rel=1e-5)


def test_repr_shows_data_and_dimension() -> None:
    r = repr(Vector([1.0, -2.5]))
    assert r.startswith("Vector(")
    assert "1.0" in r
    assert "-2.5" in r
    assert "dimension=2" in r


def test_repr_of_a_long_vector_is_short() -> None:
    r = repr(Vector.ones(10_000))
    assert "dimension=10000" in r
    assert len(r) < 200


def test_equality() -> None:
    assert Vector([1.0, 2.0]) == Vector([1.0, 2.0])
    assert Vector([1.0, 2.0]) == Vector(np.array([1, 2]))
    assert Vector([1.0, 2.0]) != Vector([2.0, 1.0])
    assert Vector([1.0, 2.0]) != Vector([1.0, 2.0, 0.0])
    assert Vector([1.0]) != [1.0]
    assert Vector([1.0]) != "Vector([1.0])"
    assert Vector([1.0]) != None  # noqa: E711


def test_negative_zero_equals_zero() -> None:
    assert Vector([0.0]) == Vector([-0.0])


def test_vector_is_unhashable() -> None:
    v = Vector([1.0])
    with pytest.raises(TypeError):
        hash(v)
    with pytest.raises(TypeError):
        {v}  # noqa: B018


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip_is_bit_exact(rng: np.random.Generator, protocol: int) -> None:
    v = Vector(random_f32(rng, 384, scale=1e3))
    w = pickle.loads(pickle.dumps(v, protocol=protocol))
    assert isinstance(w, Vector)
    assert w == v
    np.testing.assert_array_equal(w.to_numpy(), v.to_numpy())


def test_copy_and_deepcopy_are_independent() -> None:
    v = Vector([3.0, 4.0])
    for w in (copy.copy(v), copy.deepcopy(v)):
        assert w == v
        w.normalize_mut()
        assert v.data == [3.0, 4.0]


def test_np_asarray_is_float32_with_the_same_data(rng: np.random.Generator) -> None:
    a = random_f32(rng, 33)
    v = Vector(a)
    arr = np.asarray(v)
    assert arr.dtype == np.float32
    assert arr.shape == (33,)
    np.testing.assert_array_equal(arr, a)
    np.testing.assert_array_equal(np.array(v), a)


def test_np_asarray_with_float64_dtype(rng: np.random.Generator) -> None:
    a = random_f32(rng, 8)
    arr = np.asarray(Vector(a), dtype=np.float64)
    assert arr.dtype == np.float64
    np.testing.assert_array_equal(arr, a.astype(np.float64))


def test_np_asarray_copy_false_raises() -> None:
    with pytest.raises(ValueError, match="copy"):
        np.asarray(Vector([1.0]), copy=False)


def test_to_numpy_is_a_float32_copy() -> None:
    v = Vector([1.0, 2.0])
    arr = v.to_numpy()
    assert arr.dtype == np.float32
    arr[0] = 50.0
    assert v.data == [1.0, 2.0]


def test_numpy_functions_accept_a_vector(rng: np.random.Generator) -> None:
    a = random_f32(rng, 16)
    v = Vector(a)
    assert float(np.sum(v)) == pytest.approx(float(a.sum()), rel=1e-6)
    np.testing.assert_array_equal(np.stack([v, v]), np.stack([a, a]))


# --------------------------------------------------------------------------- maths


def f64(v: Vector) -> npt.NDArray[np.float64]:
    return v.to_numpy().astype(np.float64)


@pytest.mark.parametrize("dim", [1, 3, 7, 97, 384, 1536])
def test_dot_and_norms_match_numpy(rng: np.random.Generator, dim: int) -> None:
    a, b = Vector(random_f32(rng, dim)), Vector(random_f32(rng, dim))
    x, y = f64(a), f64(b)
    # float32 accumulation: error ≤ dim·eps relative to the sum of |terms| (see test_metrics).
    tol = (dim + 2) * EPS32
    assert abs(a.dot(b) - float(x @ y)) <= tol * float(np.abs(x * y).sum())
    assert a.norm_squared() == pytest.approx(float(x @ x), rel=tol)
    assert a.norm() == pytest.approx(float(np.linalg.norm(x)), rel=tol)
    assert a.l1_norm() == pytest.approx(float(np.abs(x).sum()), rel=tol)
    assert a.linf_norm() == float(np.abs(x).max())


def test_dot_accepts_lists_and_arrays() -> None:
    v = Vector([1.0, 2.0, 3.0])
    assert v.dot([4.0, 5.0, 6.0]) == 32.0
    assert v.dot(np.array([4.0, 5.0, 6.0])) == 32.0
    assert v.dot(Vector([4.0, 5.0, 6.0])) == 32.0


def test_dot_with_a_different_dimension_is_dimension_mismatch() -> None:
    with pytest.raises(DimensionMismatchError, match=r"expected 3, got 2"):
        Vector([1.0, 2.0, 3.0]).dot([1.0, 2.0])


@pytest.mark.parametrize("dim", [1, 3, 97, 1536])
def test_normalize_matches_numpy(rng: np.random.Generator, dim: int) -> None:
    a = random_f32(rng, dim, scale=100.0)
    v = Vector(a)
    n = v.normalize()
    expected = a.astype(np.float64) / np.linalg.norm(a.astype(np.float64))
    np.testing.assert_allclose(f64(n), expected, rtol=2 * EPS32, atol=2 * EPS32)
    assert n.is_normalized()
    assert v == Vector(a)  # normalize() leaves the original alone


def test_normalize_mut_scales_in_place() -> None:
    v = Vector([3.0, 4.0])
    v.normalize_mut()
    assert v.data == pytest.approx([0.6, 0.8], rel=1e-6)
    assert v.is_normalized()


def test_normalize_of_tiny_vector_does_not_underflow() -> None:
    v = Vector([1e-30, 1e-30])
    n = v.normalize()
    assert n.data == pytest.approx([math.sqrt(0.5)] * 2, rel=1e-6)


def test_normalize_of_zero_vector_is_invalid_argument_and_leaves_it_unchanged() -> None:
    z = Vector.zeros(4)
    with pytest.raises(InvalidArgumentError, match="zero"):
        z.normalize()
    with pytest.raises(InvalidArgumentError, match="zero"):
        z.normalize_mut()
    assert z.data == [0.0] * 4


def test_is_normalized_uses_the_tolerance() -> None:
    assert Vector([1.0, 0.0]).is_normalized()
    assert not Vector([1.0, 0.01]).is_normalized()
    assert Vector([1.0, 0.01]).is_normalized(tolerance=1e-3)
    assert not Vector.zeros(3).is_normalized()


def test_is_finite_is_true_for_every_vector(rng: np.random.Generator) -> None:
    assert Vector(random_f32(rng, 10, scale=1e30)).is_finite()


# --------------------------------------------------------------------------- arithmetic

BINARY_OPS: List[Callable[[Any, Any], Any]] = [
    operator.add,
    operator.sub,
    operator.mul,
    operator.truediv,
]


@pytest.mark.parametrize("op", BINARY_OPS, ids=lambda f: f.__name__)
def test_vector_vector_arithmetic_matches_numpy(
    rng: np.random.Generator, op: Callable[[Any, Any], Any]
) -> None:
    a, b = random_f32(rng, 50), random_f32(rng, 50)
    b[np.abs(b) < 1e-3] = 0.5  # keep clear of zero divisors
    got = op(Vector(a), Vector(b))
    assert isinstance(got, Vector)
    np.testing.assert_array_equal(got.to_numpy(), op(a, b))


@pytest.mark.parametrize("op", BINARY_OPS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("scalar", [2.5, -3, 0.125, True])
def test_vector_scalar_arithmetic_matches_numpy(
    rng: np.random.Generator, op: Callable[[Any, Any], Any], scalar: float
) -> None:
    a = random_f32(rng, 20)
    a[np.abs(a) < 1e-3] = 0.5
    s = F32(scalar)
    got = op(Vector(a), scalar)
    np.testing.assert_array_equal(got.to_numpy(), op(a, s))
    reflected = op(scalar, Vector(a))
    assert isinstance(reflected, Vector)
    np.testing.assert_array_equal(reflected.to_numpy(), op(s, a))


def test_numpy_scalars_on_the_right_are_scalars() -> None:
    v = Vector([1.0, 2.0])
    # The stubs list only ``float`` here; numpy scalars work at runtime.
    assert (v * np.float32(2.0)).data == [2.0, 4.0]  # type: ignore[operator]
    assert (v + np.int64(1)).data == [2.0, 3.0]  # type: ignore[operator]


def test_negation() -> None:
    assert (-Vector([1.0, -2.0, 0.0])).data == [-1.0, 2.0, -0.0]


def test_arithmetic_returns_new_vectors() -> None:
    a = Vector([1.0, 2.0])
    b = a + 0.0
    assert b is not a
    b.normalize_mut()
    assert a.data == [1.0, 2.0]


@pytest.mark.parametrize("op", BINARY_OPS, ids=lambda f: f.__name__)
def test_arithmetic_dimension_mismatch(op: Callable[[Any, Any], Any]) -> None:
    with pytest.raises(DimensionMismatchError):
        op(Vector([1.0, 2.0]), Vector([1.0, 2.0, 3.0]))


def test_division_by_zero_scalar_is_zero_division_error() -> None:
    with pytest.raises(ZeroDivisionError):
        Vector([1.0, 2.0]) / 0
    with pytest.raises(ZeroDivisionError):
        Vector([1.0, 2.0]) / 0.0


def test_division_by_a_zero_component_is_zero_division_error() -> None:
    with pytest.raises(ZeroDivisionError, match=r"position 1\b"):
        Vector([1.0, 2.0]) / Vector([1.0, 0.0])
    with pytest.raises(ZeroDivisionError, match=r"position 0\b"):
        1.0 / Vector([0.0, 2.0])


def test_zero_division_error_is_not_a_nusterdb_value_error() -> None:
    with pytest.raises(ZeroDivisionError) as info:
        Vector([1.0]) / 0
    assert isinstance(info.value, ArithmeticError)


@pytest.mark.parametrize(
    "compute",
    [
        lambda: Vector([3e38]) + Vector([3e38]),
        lambda: Vector([3e38]) * 10,
        lambda: 10 * Vector([3e38]),
        lambda: Vector([-3e38]) - 3e38,
        lambda: Vector([3e38]) / 1e-10,
        lambda: 1e30 / Vector([1e-30]),
        lambda: Vector([1.0]) + 1e39,
        lambda: Vector([1.0]) * math.inf,
        lambda: Vector([1.0]) + math.nan,
    ],
    ids=["add", "mul", "rmul", "sub", "div", "rdiv", "add-huge", "mul-inf", "add-nan"],
)
def test_overflow_or_non_finite_result_is_invalid_vector(compute: Callable[[], Vector]) -> None:
    with pytest.raises(InvalidVectorError):
        compute()


@pytest.mark.parametrize("other", ["x", None, [1.0, 2.0], {"a": 1}, object()], ids=repr)
@pytest.mark.parametrize("op", BINARY_OPS, ids=lambda f: f.__name__)
def test_unsupported_operand_is_type_error(op: Callable[[Any, Any], Any], other: Any) -> None:
    v = Vector([1.0, 2.0])
    with pytest.raises(TypeError):
        op(v, other)
    with pytest.raises(TypeError):
        op(other, v)


def test_in_place_operators_rebind_to_new_vectors() -> None:
    v = Vector([1.0, 2.0])
    original = v
    v += 1.0
    v *= Vector([2.0, 2.0])
    assert v.data == [4.0, 6.0]
    assert original.data == [1.0, 2.0]


def test_matches_module_export() -> None:
    assert nusterdb.Vector is Vector
