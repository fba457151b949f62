"""Distance metrics against an independent float64 numpy reference, written here from the
definitions in SPEC §1 / ``crates/nusterdb-core/src/metric.rs``, plus names, properties
(Hypothesis) and every SIMD instruction set (one subprocess each)."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable, Dict, FrozenSet, List, Optional, Tuple

import numpy as np
import numpy.typing as npt
import nusterdb
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from nusterdb import (
    DimensionMismatchError,
    DistanceMetric,
    InvalidArgumentError,
    NusterDBError,
    Vector,
)

F64 = npt.NDArray[np.float64]
F32A = npt.NDArray[np.float32]

NAMES = [
    "euclidean",
    "manhattan",
    "cosine",
    "angular",
    "chebyshev",
    "jaccard",
    "hamming",
    "inner_product",
]
DIMS = [1, 3, 7, 97, 128, 384, 1536]

# ----------------------------------------------------------------------------- reference
# Written from the definitions only, in float64, on the float32 values the Vector holds
# (so the only difference measured is NusterDB's arithmetic, not input rounding).


def ref_cos(a: F64, b: F64) -> float:
    """cos(a, b), defined as 0 when either vector is zero, clamped to [-1, 1]."""
    denom = math.sqrt(float(a @ a) * float(b @ b))
    if denom == 0.0:
        return 0.0
    return min(1.0, max(-1.0, float(a @ b) / denom))


def ref_distance(name: str, a: F64, b: F64) -> float:
    if name == "euclidean":
        return float(np.sqrt(np.sum((a - b) ** 2)))
    if name == "manhattan":
        return float(np.sum(np.abs(a - b)))
    if name == "chebyshev":
        return float(np.max(np.abs(a - b)))
    if name == "cosine":
        return 1.0 - ref_cos(a, b)
    if name == "angular":
        return math.acos(ref_cos(a, b)) / math.pi
    if name == "inner_product":
        return -float(a @ b)
    if name == "hamming":
        return float(np.count_nonzero((a > 0) != (b > 0)))
    if name == "jaccard":
        assert (a >= 0).all()
        assert (b >= 0).all()
        den = float(np.maximum(a, b).sum())
        return 0.0 if den == 0.0 else 1.0 - float(np.minimum(a, b).sum()) / den
    raise AssertionError(name)


def ref_similarity(name: str, d: float, dim: int) -> float:
    """The monotone similarity of the module doc, from a distance."""
    if name in ("euclidean", "manhattan", "chebyshev"):
        return 1.0 / (1.0 + d)
    if name in ("cosine", "angular", "jaccard"):
        return 1.0 - d
    if name == "inner_product":
        return -d
    if name == "hamming":
        return 1.0 - d / dim
    raise AssertionError(name)


# ----------------------------------------------------------------------------- tolerance
# NusterDB accumulates in float32. For a sum of n terms each computed with a couple of
# roundings, the classic bound (Higham, "Accuracy and Stability of Numerical Algorithms",
# §4.2) is |computed - exact| ≤ gamma·Σ|termᵢ| with gamma ≈ n·u, u = 2⁻²⁴ the unit roundoff. We
# use gamma = (n + 4)·ε₃₂ with ε₃₂ = 2⁻²³ = 2u: the worst-case bound with a factor-2 margin,
# independent of the summation order (scalar, 8-lane, AVX2, AVX-512 and NEON differ).
#
# The error is relative to Σ|termᵢ|, not to the result, which matters where terms cancel:
#   euclidean/manhattan: terms ≥ 0, so Σ|termᵢ| is the result itself (relative error);
#   inner_product: Σ|aᵢbᵢ|;
#   cosine: the error of cos is ≲ 3gamma absolutely (numerator and both norms, Cauchy-Schwarz);
#   angular: that error pushed through arccos (steep near ±1), computed exactly below;
#   chebyshev: one rounded subtraction, hamming: exact, jaccard: f64 sums in NusterDB.
EPS32 = float(np.finfo(np.float32).eps)


def gamma(n: int) -> float:
    return (n + 4) * EPS32


def tolerance(name: str, a: F64, b: F64) -> float:
    n = a.size
    g = gamma(n)
    if name == "euclidean":
        return g * ref_distance(name, a, b) + 1e-30
    if name == "manhattan":
        return g * ref_distance(name, a, b) + 1e-30
    if name == "chebyshev":
        return 2 * EPS32 * ref_distance(name, a, b) + 1e-30
    if name == "inner_product":
        return g * float(np.abs(a * b).sum()) + 1e-30
    if name == "cosine":
        return 3 * g + 2 * EPS32
    if name == "angular":
        c = ref_cos(a, b)
        dc = 3 * g + 2 * EPS32
        base = math.acos(c)
        spread = max(
            abs(math.acos(max(-1.0, c - dc)) - base),
            abs(math.acos(min(1.0, c + dc)) - base),
        )
        return spread / math.pi + 2 * EPS32
    if name == "hamming":
        return 0.0
    if name == "jaccard":
        return 4 * EPS32
    raise AssertionError(name)


def assert_close(name: str, got: float, a: F64, b: F64) -> None:
    want = ref_distance(name, a, b)
    tol = tolerance(name, a, b)
    assert isinstance(got, float)
    assert math.isfinite(got), f"{name}: got {got}"
    assert abs(got - want) <= tol, f"{name}: got {got!r}, want {want!r} (tol {tol:.3g})"


# ----------------------------------------------------------------------------- inputs


def make_pair(name: str, rng: np.random.Generator, dim: int) -> Tuple[F32A, F32A]:
    """Random float32 inputs suited to the metric (non-negative for jaccard, with exact
    zeros and sign changes for hamming)."""
    a = rng.standard_normal(dim).astype(np.float32)
    b = rng.standard_normal(dim).astype(np.float32)
    if name == "jaccard":
        a, b = np.abs(a), np.abs(b)
        a[rng.random(dim) < 0.2] = 0.0
        b[rng.random(dim) < 0.2] = 0.0
    if name == "hamming":
        a[rng.random(dim) < 0.2] = 0.0
        b[rng.random(dim) < 0.2] = 0.0
    return a, b


def vector_method(name: str) -> Callable[[Vector, Vector], float]:
    """The ``Vector`` method that computes the metric's distance."""
    methods: Dict[str, Callable[[Vector, Vector], float]] = {
        "euclidean": Vector.euclidean_distance,
        "manhattan": Vector.manhattan_distance,
        "cosine": Vector.cosine_distance,
        "angular": Vector.angular_distance,
        "chebyshev": Vector.chebyshev_distance,
        "jaccard": Vector.jaccard_distance,
        "hamming": Vector.hamming_distance,
        "inner_product": lambda x, y: -x.dot(y),
    }
    return methods[name]


def factory(name: str) -> DistanceMetric:
    factories: Dict[str, Callable[[], DistanceMetric]] = {
        "euclidean": DistanceMetric.euclidean,
        "manhattan": DistanceMetric.manhattan,
        "cosine": DistanceMetric.cosine,
        "angular": DistanceMetric.angular,
        "chebyshev": DistanceMetric.chebyshev,
        "jaccard": DistanceMetric.jaccard,
        "hamming": DistanceMetric.hamming,
        "inner_product": DistanceMetric.inner_product,
    }
    return factories[name]()


# ----------------------------------------------------------------------------- vs numpy


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("name", NAMES)
def test_metric_distance_matches_numpy_reference(
    rng: np.random.Generator, name: str, dim: int
) -> None:
    metric = factory(name)
    for _ in range(5):
        a, b = make_pair(name, rng, dim)
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        assert_close(name, metric.distance(a, b), a64, b64)
        assert_close(name, metric.distance(Vector(a), Vector(b)), a64, b64)
        assert_close(name, metric.distance(a.tolist(), b), a64, b64)


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("name", NAMES)
def test_vector_distance_method_matches_numpy_reference(
    rng: np.random.Generator, name: str, dim: int
) -> None:
    method = vector_method(name)
    for _ in range(5):
        a, b = make_pair(name, rng, dim)
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        assert_close(name, method(Vector(a), Vector(b)), a64, b64)


@pytest.mark.parametrize("dim", [1, 7, 384])
@pytest.mark.parametrize("name", NAMES)
def test_metric_and_vector_method_agree_exactly(
    rng: np.random.Generator, name: str, dim: int
) -> None:
    a, b = make_pair(name, rng, dim)
    assert factory(name).distance(a, b) == vector_method(name)(Vector(a), Vector(b))


@pytest.mark.parametrize("dim", [1, 7, 97, 384])
@pytest.mark.parametrize("name", NAMES)
def test_similarity_is_the_documented_transform(
    rng: np.random.Generator, name: str, dim: int
) -> None:
    metric = factory(name)
    a, b = make_pair(name, rng, dim)
    d = metric.distance(a, b)
    s = metric.similarity(a, b)
    # Computed in float32 from the float32 distance: one or two roundings.
    assert s == pytest.approx(ref_similarity(name, d, dim), rel=4 * EPS32, abs=4 * EPS32)


def test_vector_similarity_methods(rng: np.random.Generator) -> None:
    a, b = make_pair("jaccard", rng, 64)
    va, vb = Vector(a), Vector(b)
    assert va.cosine_similarity(vb) == pytest.approx(1.0 - va.cosine_distance(vb), abs=EPS32)
    assert va.cosine_similarity(vb) == pytest.approx(
        ref_cos(a.astype(np.float64), b.astype(np.float64)), abs=1e-5
    )
    assert va.jaccard_similarity(vb) == pytest.approx(1.0 - va.jaccard_distance(vb), abs=EPS32)


def test_similarities_order_like_distances(rng: np.random.Generator) -> None:
    q = rng.standard_normal(16).astype(np.float32)
    others = [rng.standard_normal(16).astype(np.float32) for _ in range(20)]
    for name in ("euclidean", "manhattan", "chebyshev", "cosine", "angular", "inner_product"):
        m = factory(name)
        by_distance = sorted(range(20), key=lambda i: m.distance(q, others[i]))
        by_similarity = sorted(range(20), key=lambda i: -m.similarity(q, others[i]))
        assert by_distance == by_similarity, name


# ----------------------------------------------------------------------------- defined cases


def test_small_cases_from_the_definitions() -> None:
    a, b = [1.0, 0.0, -2.0], [0.0, 2.0, 1.0]
    assert DistanceMetric.euclidean().distance(a, b) == pytest.approx(math.sqrt(14), rel=1e-7)
    assert DistanceMetric.manhattan().distance(a, b) == 6.0
    assert DistanceMetric.chebyshev().distance(a, b) == 3.0
    assert DistanceMetric.inner_product().distance(a, b) == 2.0
    assert DistanceMetric.hamming().distance(a, b) == 3.0
    assert DistanceMetric.angular().distance([1, 0], [0, 1]) == pytest.approx(0.5, abs=1e-7)
    assert DistanceMetric.angular().distance([1, 0], [-1, 0]) == pytest.approx(1.0, abs=1e-7)
    assert DistanceMetric.cosine().distance([1, 0], [-1, 0]) == pytest.approx(2.0, abs=1e-7)
    assert DistanceMetric.jaccard().distance([1, 1, 0], [1, 0, 1]) == pytest.approx(2 / 3)


def test_euclidean_is_not_squared() -> None:
    assert DistanceMetric.euclidean().distance([0.0, 0.0], [3.0, 4.0]) == 5.0


def test_binary_jaccard_on_zero_one_data() -> None:
    a = [1, 1, 0, 0, 1]
    b = [1, 0, 1, 0, 1]
    # |a∩b| = 2, |a union b| = 4
    assert DistanceMetric.jaccard().distance(a, b) == pytest.approx(0.5)
    assert DistanceMetric.jaccard().similarity(a, b) == pytest.approx(0.5)


def test_hamming_binarises_at_zero() -> None:
    h = DistanceMetric.hamming()
    assert h.distance([0.0, -1.0, 0.5], [-0.0, -5.0, 1e-30]) == 0.0
    assert h.distance([0.0, 0.1], [0.1, 0.0]) == 2.0
    assert h.similarity([1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, 1.0]) == pytest.approx(0.75)


@pytest.mark.parametrize("dim", [1, 3, 384])
def test_cosine_of_zero_vector_is_one(dim: int) -> None:
    z = Vector.zeros(dim)
    x = Vector.ones(dim)
    assert DistanceMetric.cosine().distance(z, x) == 1.0
    assert DistanceMetric.cosine().distance(x, z) == 1.0
    assert DistanceMetric.cosine().distance(z, z) == 1.0
    assert z.cosine_distance(x) == 1.0
    assert z.cosine_similarity(x) == 0.0


@pytest.mark.parametrize("dim", [1, 3, 384])
def test_angular_of_zero_vector_is_one_half(dim: int) -> None:
    z = Vector.zeros(dim)
    x = Vector.ones(dim)
    assert DistanceMetric.angular().distance(z, x) == 0.5
    assert DistanceMetric.angular().distance(z, z) == 0.5
    assert z.angular_distance(x) == 0.5


def test_jaccard_of_two_zero_vectors_is_zero() -> None:
    z = Vector.zeros(5)
    assert DistanceMetric.jaccard().distance(z, z) == 0.0
    assert z.jaccard_distance(z) == 0.0
    assert z.jaccard_similarity(z) == 1.0


def test_jaccard_of_zero_and_non_zero_is_one() -> None:
    assert DistanceMetric.jaccard().distance([0.0, 0.0], [1.0, 2.0]) == 1.0


@pytest.mark.parametrize("bad", [[-1.0, 1.0], [1.0, -1e-30]])
def test_jaccard_on_negative_input_is_invalid_argument(bad: List[float]) -> None:
    good = [1.0, 1.0]
    calls: List[Callable[[], float]] = [
        lambda: DistanceMetric.jaccard().distance(bad, good),
        lambda: DistanceMetric.jaccard().distance(good, bad),
        lambda: DistanceMetric.jaccard().similarity(good, bad),
        lambda: Vector(bad).jaccard_distance(good),
        lambda: Vector(good).jaccard_similarity(bad),
    ]
    for call in calls:
        with pytest.raises(InvalidArgumentError, match="non-negative"):
            call()


def test_jaccard_accepts_negative_zero() -> None:
    assert DistanceMetric.jaccard().distance([-0.0, 1.0], [0.0, 1.0]) == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_dimension_mismatch_is_typed(name: str) -> None:
    m = factory(name)
    with pytest.raises(DimensionMismatchError, match=r"expected 3, got 2") as info:
        m.distance([1.0, 2.0, 3.0], [1.0, 2.0])
    assert isinstance(info.value, ValueError)
    with pytest.raises(DimensionMismatchError):
        m.similarity([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(DimensionMismatchError):
        vector_method(name)(Vector([1.0, 2.0, 3.0]), Vector([1.0, 2.0]))


@pytest.mark.parametrize("name", NAMES)
def test_distance_validates_its_inputs(name: str) -> None:
    m = factory(name)
    with pytest.raises(nusterdb.InvalidVectorError):
        m.distance([1.0, math.nan], [1.0, 1.0])
    with pytest.raises(nusterdb.InvalidVectorError):
        m.distance([], [])
    with pytest.raises(TypeError):
        m.distance("ab", "ab")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- extreme magnitudes


def test_cosine_self_distance_of_tiny_vector_is_zero() -> None:
    # ‖a‖² underflows float32 here (1e-60), but a is not the zero vector: cos(a, a) = 1.
    # normalize() handles the same input in float64; the cosine kernel must not turn it
    # into "zero vector" (distance 1.0).
    a = Vector([1e-30, 2e-30, 3e-30])
    assert a.cosine_distance(a) == pytest.approx(0.0, abs=1e-6)
    assert a.angular_distance(a) == pytest.approx(0.0, abs=1e-3)
    assert a.cosine_distance(a * -1.0) == pytest.approx(2.0, abs=1e-6)


@pytest.mark.parametrize("name", ["cosine", "angular"])
def test_cosine_of_huge_vectors_is_never_nan(name: str) -> None:
    # Finite components whose squares overflow float32 (> ~1.8e19). SPEC: cosine/angular
    # distances are always defined, never NaN.
    a = [1e20, 2e20, 3e20]
    b = [3e20, 2e20, 1e20]
    d = factory(name).distance(a, b)
    assert not math.isnan(d)
    a64, b64 = np.array(a), np.array(b)
    assert d == pytest.approx(ref_distance(name, a64, b64), abs=1e-5)
    assert factory(name).distance(a, a) == pytest.approx(0.0, abs=1e-3)


def test_euclidean_of_large_finite_vectors_is_finite() -> None:
    # Both vectors are valid (finite) and so is their true distance (≈ 2.83e20).
    a, b = [1e20, 1e20], [-1e20, -1e20]
    got = DistanceMetric.euclidean().distance(a, b)
    assert math.isfinite(got)
    assert got == pytest.approx(math.sqrt(8) * 1e20, rel=1e-5)


# ----------------------------------------------------------------------------- names


@pytest.mark.parametrize("name", NAMES)
def test_from_name_round_trips_and_name_property(name: str) -> None:
    m = DistanceMetric.from_name(name)
    assert m.name == name
    assert m == factory(name)
    assert str(m) == name
    assert name in repr(m)


def test_names_lists_every_metric_in_a_stable_order() -> None:
    assert DistanceMetric.names() == NAMES


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("l2", "euclidean"),
        ("L2", "euclidean"),
        ("l1", "manhattan"),
        ("linf", "chebyshev"),
        ("LInf", "chebyshev"),
        ("ip", "inner_product"),
        ("dot", "inner_product"),
        ("DOT", "inner_product"),
        ("Cosine", "cosine"),
        ("EUCLIDEAN", "euclidean"),
        ("Inner_Product", "inner_product"),
        ("  hamming ", "hamming"),
    ],
)
def test_from_name_accepts_aliases_and_any_case(alias: str, canonical: str) -> None:
    assert DistanceMetric.from_name(alias).name == canonical


@pytest.mark.parametrize(
    "bad", ["", "euclid", "l3", "cosine distance", "inner-product", "jaccard\x00", "\u21132"]
)
def test_from_name_rejects_unknown_names_listing_the_valid_ones(bad: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        DistanceMetric.from_name(bad)
    message = str(info.value)
    for name in NAMES:
        assert name in message
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, NusterDBError)


@pytest.mark.parametrize("bad", [None, 1, b"cosine", ["cosine"]], ids=repr)
def test_from_name_with_a_non_string_is_type_error(bad: object) -> None:
    with pytest.raises(TypeError):
        DistanceMetric.from_name(bad)  # type: ignore[arg-type]


def test_metric_equality_and_hash() -> None:
    assert DistanceMetric.cosine() == DistanceMetric.cosine()
    assert DistanceMetric.cosine() == DistanceMetric.from_name("COSINE")
    assert DistanceMetric.cosine() != DistanceMetric.angular()
    assert DistanceMetric.euclidean() != "euclidean"
    assert hash(DistanceMetric.from_name("l2")) == hash(DistanceMetric.euclidean())
    every = {DistanceMetric.from_name(n) for n in [*NAMES, "l2", "l1", "linf", "ip", "dot"]}
    assert len(every) == 8
    assert {DistanceMetric.cosine(): 1}[DistanceMetric.from_name("cosine")] == 1


def test_metrics_are_immutable() -> None:
    m = DistanceMetric.cosine()
    with pytest.raises(AttributeError):
        m.name = "euclidean"  # type: ignore[misc]


# ----------------------------------------------------------------------------- properties

# Components of "ordinary" magnitude: 0, or |x| in [2^-10, 2^10] (bounds exact in float32), so
# no square underflows or overflows float32. Extreme magnitudes have their own tests above.
LO, HI = 2.0**-10, 2.0**10
ORDINARY = st.one_of(
    st.just(0.0),
    st.floats(LO, HI, width=32),
    st.floats(-HI, -LO, width=32),
)
NON_NEGATIVE = st.one_of(st.just(0.0), st.floats(LO, HI, width=32))


@st.composite
def vector_pair(draw: st.DrawFn, elements: st.SearchStrategy[float] = ORDINARY) -> List[F32A]:
    dim = draw(st.integers(1, 40))
    vecs = draw(st.lists(st.lists(elements, min_size=dim, max_size=dim), min_size=3, max_size=3))
    return [np.array(v, dtype=np.float32) for v in vecs]


def elements_for(name: str) -> st.SearchStrategy[float]:
    return NON_NEGATIVE if name == "jaccard" else ORDINARY


@pytest.mark.parametrize("name", NAMES)
def test_every_metric_is_symmetric(name: str) -> None:
    m = factory(name)

    @given(vector_pair(elements_for(name)))
    def check(vs: List[F32A]) -> None:
        a, b, _ = vs
        assert m.distance(a, b) == m.distance(b, a)

    check()


@pytest.mark.parametrize("name", ["euclidean", "manhattan", "chebyshev", "hamming", "jaccard"])
def test_self_distance_is_zero(name: str) -> None:
    m = factory(name)

    @given(vector_pair(elements_for(name)))
    def check(vs: List[F32A]) -> None:
        assert m.distance(vs[0], vs[0]) == 0.0

    check()


@pytest.mark.parametrize("name", ["cosine", "angular"])
def test_self_distance_of_non_zero_vectors_is_zero_within_tolerance(name: str) -> None:
    m = factory(name)

    @given(vector_pair())
    def check(vs: List[F32A]) -> None:
        a = vs[0]
        assume(np.any(a != 0))
        a64 = a.astype(np.float64)
        assert abs(m.distance(a, a)) <= tolerance(name, a64, a64)
        # Also for a positive multiple (same direction, other length).
        assert abs(m.distance(a, a * np.float32(4.0))) <= tolerance(name, a64, 4 * a64)

    check()


@pytest.mark.parametrize("name", [n for n in NAMES if n != "inner_product"])
def test_distances_are_non_negative(name: str) -> None:
    m = factory(name)

    @given(vector_pair(elements_for(name)))
    def check(vs: List[F32A]) -> None:
        a, b, _ = vs
        d = m.distance(a, b)
        assert d >= 0.0
        assert math.isfinite(d)

    check()


@given(vector_pair())
def test_inner_product_is_minus_dot(vs: List[F32A]) -> None:
    a, b, _ = vs
    assert DistanceMetric.inner_product().distance(a, b) == -Vector(a).dot(b)


@given(vector_pair())
def test_cosine_and_angular_are_bounded(vs: List[F32A]) -> None:
    a, b, _ = vs
    assert 0.0 <= DistanceMetric.cosine().distance(a, b) <= 2.0
    assert 0.0 <= DistanceMetric.angular().distance(a, b) <= 1.0


@pytest.mark.parametrize("name", ["euclidean", "manhattan", "chebyshev", "angular"])
def test_triangle_inequality(name: str) -> None:
    m = factory(name)

    @given(vector_pair())
    def check(vs: List[F32A]) -> None:
        a, b, c = vs
        if name == "angular":
            # The angle is a metric on directions; a zero vector has none (its distance
            # to everything is 0.5 by convention, which breaks the inequality).
            assume(all(np.any(v != 0) for v in vs))
        ab, bc, ac = m.distance(a, b), m.distance(b, c), m.distance(a, c)
        a64, b64, c64 = (v.astype(np.float64) for v in vs)
        slack = tolerance(name, a64, b64) + tolerance(name, b64, c64) + tolerance(name, a64, c64)
        assert ac <= ab + bc + slack

    check()


@given(vector_pair())
def test_distances_match_reference_on_arbitrary_ordinary_inputs(vs: List[F32A]) -> None:
    a, b, _ = vs
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    for name in NAMES:
        if name == "jaccard":
            continue
        assert_close(name, factory(name).distance(a, b), a64, b64)
    aa, bb = np.abs(a), np.abs(b)
    assert_close("jaccard", DistanceMetric.jaccard().distance(aa, bb), np.abs(a64), np.abs(b64))


# ----------------------------------------------------------------------------- SIMD paths

ISA_REPORTED = {"scalar": "scalar", "avx2": "avx2+fma", "avx512": "avx512", "neon": "neon"}


def cpu_flags() -> Optional[FrozenSet[str]]:
    """The CPU feature flags from /proc/cpuinfo (Linux), or None when unknown."""
    path = Path("/proc/cpuinfo")
    if not path.exists():
        return None
    flags: set[str] = set()
    for line in path.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return frozenset(flags)


def isa_supported(isa: str) -> Tuple[bool, str]:
    if isa == "scalar":
        return True, ""
    flags = cpu_flags()
    if flags is None:
        return False, f"no /proc/cpuinfo on {platform.system()}: cannot tell whether {isa} runs"
    machine = platform.machine().lower()
    if isa == "avx2":
        ok = machine in ("x86_64", "amd64") and {"avx2", "fma"} <= flags
        return ok, f"this CPU ({machine}) lacks avx2+fma"
    if isa == "avx512":
        ok = machine in ("x86_64", "amd64") and "avx512f" in flags
        return ok, f"this CPU ({machine}) lacks avx512f"
    if isa == "neon":
        ok = machine in ("aarch64", "arm64") and ("asimd" in flags or "neon" in flags)
        return ok, f"this CPU ({machine}) lacks neon"
    raise AssertionError(isa)


# The child prints the ISA and every metric's distance on fixed inputs of awkward lengths
# (tails after 4-, 8- and 16-lane blocks).
CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import nusterdb
    seed = int(sys.argv[1])
    rng = np.random.default_rng(seed)
    out = {"isa": nusterdb.simd_isa(), "cases": []}
    for dim in (1, 3, 7, 8, 15, 16, 17, 31, 33, 97, 128, 384, 1536):
        a = rng.standard_normal(dim).astype(np.float32)
        b = rng.standard_normal(dim).astype(np.float32)
        a[rng.random(dim) < 0.1] = 0.0
        pa, pb = np.abs(a), np.abs(b)
        row = {"a": a.tolist(), "b": b.tolist(), "d": {}}
        for name in nusterdb.DistanceMetric.names():
            m = nusterdb.DistanceMetric.from_name(name)
            x, y = (pa, pb) if name == "jaccard" else (a, b)
            row["d"][name] = m.distance(x, y)
        v = nusterdb.Vector(a)
        row["norm"] = v.norm()
        row["dot"] = v.dot(b)
        out["cases"].append(row)
    print(json.dumps(out))
    """
)


def run_child(seed: int, force: Optional[str]) -> Dict[str, object]:
    env = dict(os.environ)
    env.pop("NUSTERDB_FORCE_ISA", None)
    if force is not None:
        env["NUSTERDB_FORCE_ISA"] = force
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(seed)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: Dict[str, object] = json.loads(proc.stdout)
    return result


@pytest.mark.parametrize("isa", list(ISA_REPORTED))
def test_forced_isa_is_reported_and_agrees_with_numpy(seed: int, isa: str) -> None:
    ok, reason = isa_supported(isa)
    if not ok:
        pytest.skip(reason)
    out = run_child(seed, isa)
    assert out["isa"] == ISA_REPORTED[isa]
    cases = out["cases"]
    assert isinstance(cases, list)
    for row in cases:
        a = np.array(row["a"], dtype=np.float32).astype(np.float64)
        b = np.array(row["b"], dtype=np.float32).astype(np.float64)
        for name, got in row["d"].items():
            x, y = (np.abs(a), np.abs(b)) if name == "jaccard" else (a, b)
            assert_close(name, float(got), x, y)
        assert row["norm"] == pytest.approx(np.linalg.norm(a), rel=gamma(a.size))
        assert abs(row["dot"] - float(a @ b)) <= gamma(a.size) * float(np.abs(a * b).sum())


def test_isas_agree_with_each_other(seed: int) -> None:
    runnable = [isa for isa in ISA_REPORTED if isa_supported(isa)[0]]
    outs = {isa: run_child(seed, isa) for isa in runnable}
    base = outs.pop("scalar")
    base_cases = base["cases"]
    assert isinstance(base_cases, list)
    for isa, out in outs.items():
        cases = out["cases"]
        assert isinstance(cases, list)
        for row, ref in zip(cases, base_cases):
            a = np.array(row["a"], dtype=np.float64)
            assert row["d"]["hamming"] == ref["d"]["hamming"], isa
            assert row["d"]["chebyshev"] == ref["d"]["chebyshev"], isa
            for name in ("euclidean", "manhattan"):
                # Both within gamma of the truth, so within 2gamma of each other.
                assert row["d"][name] == pytest.approx(ref["d"][name], rel=2 * gamma(a.size))


def test_unknown_forced_isa_falls_back_to_the_default(seed: int) -> None:
    default = run_child(seed, None)["isa"]
    assert run_child(seed, "no-such-isa")["isa"] == default
    assert default == nusterdb.simd_isa() or "NUSTERDB_FORCE_ISA" in os.environ


def test_simd_isa_is_a_known_name() -> None:
    assert nusterdb.simd_isa() in set(ISA_REPORTED.values())
