"""The exception hierarchy, errors raised from Rust, no panics on hostile input, the public
namespace, and objects being freed."""

from __future__ import annotations

import errno
import gc
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Type

import numpy as np
import nusterdb
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from nusterdb import (
    ClosedError,
    ConfigMismatchError,
    CorruptionError,
    DatabaseConfig,
    DatabaseLockedError,
    DimensionMismatchError,
    DistanceMetric,
    DuplicateIdError,
    FilterError,
    HNSWConfig,
    InvalidArgumentError,
    InvalidVectorError,
    Metadata,
    NusterDBError,
    NusterDBIOError,
    ReadOnlyError,
    StorageConfiguration,
    Vector,
    exceptions,
)

HIERARCHY: List[Tuple[Type[NusterDBError], Type[BaseException]]] = [
    (DimensionMismatchError, ValueError),
    (InvalidVectorError, ValueError),
    (InvalidArgumentError, ValueError),
    (DuplicateIdError, ValueError),
    (ConfigMismatchError, ValueError),
    (FilterError, ValueError),
    (DatabaseLockedError, Exception),
    (CorruptionError, Exception),
    (ClosedError, Exception),
    (ReadOnlyError, Exception),
    (NusterDBIOError, OSError),
]

# The exceptions every call below may raise on bad input; anything else (notably
# pyo3_runtime.PanicException, a BaseException) is a bug.
ALLOWED = (TypeError, ValueError, OverflowError, NusterDBError)


# ----------------------------------------------------------------------------- hierarchy


@pytest.mark.parametrize(("cls", "builtin"), HIERARCHY, ids=lambda c: c.__name__)
def test_each_class_subclasses_nusterdb_error_and_its_builtin(
    cls: Type[NusterDBError], builtin: Type[BaseException]
) -> None:
    assert issubclass(cls, NusterDBError)
    assert issubclass(cls, builtin)
    assert issubclass(cls, Exception)
    assert cls.__module__ == "nusterdb.exceptions"
    assert cls.__doc__


def test_base_class_is_a_plain_exception() -> None:
    assert issubclass(NusterDBError, Exception)
    assert not issubclass(NusterDBError, ValueError)


@pytest.mark.parametrize(
    "cls", [DatabaseLockedError, CorruptionError, ClosedError, ReadOnlyError], ids=str
)
def test_state_errors_are_not_value_errors(cls: Type[NusterDBError]) -> None:
    assert not issubclass(cls, ValueError)


def test_exceptions_module_all_matches_package() -> None:
    for name in exceptions.__all__:
        assert getattr(nusterdb, name) is getattr(exceptions, name)


def test_io_error_carries_errno_and_filename() -> None:
    e = NusterDBIOError(errno.ENOSPC, "no space left", "/tmp/db")
    assert e.errno == errno.ENOSPC
    assert e.filename == "/tmp/db"
    assert isinstance(e, OSError)


# ----------------------------------------------------------------------------- raised from Rust

REAL_CASES: Dict[str, Tuple[Type[NusterDBError], Callable[[], object]]] = {
    "dimension-mismatch-distance": (
        DimensionMismatchError,
        lambda: DistanceMetric.euclidean().distance([1.0], [1.0, 2.0]),
    ),
    "dimension-mismatch-add": (DimensionMismatchError, lambda: Vector([1.0]) + Vector([1.0, 2.0])),
    "invalid-vector-nan": (InvalidVectorError, lambda: Vector([0.0, math.nan])),
    "invalid-vector-empty": (InvalidVectorError, lambda: Vector([])),
    "invalid-vector-overflow": (InvalidVectorError, lambda: Vector([3e38]) * 10.0),
    "invalid-argument-metric": (InvalidArgumentError, lambda: DistanceMetric.from_name("nope")),
    "invalid-argument-key": (InvalidArgumentError, lambda: Metadata().set("$in", 1)),
    "invalid-argument-normalize": (InvalidArgumentError, lambda: Vector.zeros(3).normalize()),
    "invalid-argument-jaccard": (
        InvalidArgumentError,
        lambda: DistanceMetric.jaccard().distance([-1.0], [1.0]),
    ),
    "invalid-argument-config": (InvalidArgumentError, lambda: DatabaseConfig(0)),
    "invalid-argument-compression": (
        InvalidArgumentError,
        lambda: StorageConfiguration(compression="gzip"),
    ),
}


@pytest.mark.parametrize("case", list(REAL_CASES))
def test_rust_raises_the_typed_error_catchable_both_ways(case: str) -> None:
    cls, call = REAL_CASES[case]
    with pytest.raises(cls) as info:
        call()
    assert type(info.value) is cls
    assert str(info.value)  # a message, never empty

    caught_base = False
    try:
        call()
    except NusterDBError:
        caught_base = True
    assert caught_base

    caught_builtin = False
    try:
        call()
    except ValueError:
        caught_builtin = True
    assert caught_builtin


def test_division_by_zero_is_the_builtin_zero_division_error() -> None:
    with pytest.raises(ZeroDivisionError):
        Vector([1.0]) / 0.0


# ----------------------------------------------------------------------------- no panics

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.floats(width=32),
    st.complex_numbers(),
    st.text(max_size=8),
    st.sampled_from(["\ud800", "a\udfffb", "\x00", "cosine", "L2", "lz4", "hnsw", "$x", ""]),
    st.binary(max_size=8),
    st.sampled_from(
        [
            np.int64(-1),
            np.uint64(2**64 - 1),
            np.float32("nan"),
            np.float64("inf"),
            np.bool_(True),
            np.complex64(1j),
            np.datetime64("2020-01-01"),
            np.str_("x"),
            Ellipsis,
            NotImplemented,
            object(),
            type,
            len,
        ]
    ),
)

ARRAYS = hnp.arrays(
    dtype=st.one_of(
        hnp.scalar_dtypes(),
        hnp.byte_string_dtypes(),
        hnp.unicode_string_dtypes(),
        st.just(np.dtype(">f4")),
        st.just(np.dtype("<f8")),
    ),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
)

ANYTHING = st.recursive(
    st.one_of(SCALARS, ARRAYS),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=3), inner, max_size=3),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=10,
)


def call_allowing_typed_errors(
    fn: Callable[..., object],
    *args: Any,
    kwargs: Optional[Dict[str, Any]] = None,
    allowed: Tuple[Type[BaseException], ...] = ALLOWED,
) -> None:
    """Calls ``fn(*args, **kwargs)``; fails the test if anything but ``allowed`` escapes."""
    try:
        fn(*args, **(kwargs or {}))
    except allowed:
        pass
    except BaseException as exc:  # PanicException is a BaseException
        pytest.fail(f"{type(exc).__module__}.{type(exc).__name__} escaped: {exc!r}")


@given(ANYTHING)
def test_vector_constructor_never_panics(obj: Any) -> None:
    call_allowing_typed_errors(Vector, obj)


@given(ANYTHING, ANYTHING)
def test_distance_and_arithmetic_never_panic(a: Any, b: Any) -> None:
    v = Vector([1.0, 2.0, 3.0])
    call_allowing_typed_errors(DistanceMetric.cosine().distance, a, b)
    call_allowing_typed_errors(DistanceMetric.jaccard().similarity, v, a)
    call_allowing_typed_errors(v.dot, a)
    call_allowing_typed_errors(v.__add__, a)
    call_allowing_typed_errors(v.__rtruediv__, a)
    call_allowing_typed_errors(v.__getitem__, a, allowed=(*ALLOWED, IndexError))


@given(ANYTHING)
def test_from_name_never_panics(obj: Any) -> None:
    call_allowing_typed_errors(DistanceMetric.from_name, obj)


@given(ANYTHING, ANYTHING)
def test_metadata_never_panics(key: Any, value: Any) -> None:
    m = Metadata()
    call_allowing_typed_errors(m.set, key, value)
    call_allowing_typed_errors(m.get, key)
    call_allowing_typed_errors(m.remove, key)
    call_allowing_typed_errors(m.add_tag, key)
    call_allowing_typed_errors(Metadata.with_data, key, value)
    call_allowing_typed_errors(Metadata.with_tags, value)
    call_allowing_typed_errors(m.__eq__, value)


CONFIG_CALLS: List[Tuple[Callable[..., object], List[str]]] = [
    (
        HNSWConfig,
        [
            "max_nb_connection",
            "max_nb_elements",
            "max_layer",
            "ef_construction",
            "ef_search",
            "use_heuristic",
        ],
    ),
    (
        StorageConfiguration,
        [
            "cache_size_mb",
            "write_buffer_size_mb",
            "max_write_buffer_number",
            "compression",
            "enable_statistics",
            "enable_bloom_filter",
            "bloom_filter_bits_per_key",
            "max_background_jobs",
            "sync_writes",
        ],
    ),
    (
        DatabaseConfig,
        [
            "dim",
            "index_type",
            "distance_metric",
            "hnsw_config",
            "storage_config",
            "auto_snapshot",
            "snapshot_interval_secs",
        ],
    ),
]


@given(st.integers(0, len(CONFIG_CALLS) - 1), st.data())
def test_config_constructors_never_panic(which: int, data: st.DataObject) -> None:
    ctor, fields = CONFIG_CALLS[which]
    chosen = data.draw(st.lists(st.sampled_from(fields), unique=True, max_size=3))
    kwargs = {name: data.draw(st.one_of(ANYTHING, st.integers()), label=name) for name in chosen}
    if ctor is DatabaseConfig and "dim" not in kwargs:
        kwargs["dim"] = data.draw(st.integers(-(2**65), 2**65), label="dim")
    call_allowing_typed_errors(ctor, kwargs=kwargs)


@given(st.integers(-(2**70), 2**70), st.integers(-(2**70), 2**70))
def test_integer_arguments_never_panic(dim: int, seed: int) -> None:
    # Small dimensions only here: huge ones allocate (see the subprocess test below).
    small = dim % 64
    call_allowing_typed_errors(Vector.random, small, kwargs={"seed": seed})
    call_allowing_typed_errors(Vector.unit_random, small, kwargs={"seed": seed})
    call_allowing_typed_errors(Vector.random, 3, float(dim), float(seed), 1)
    call_allowing_typed_errors(Vector([1.0, 2.0]).__getitem__, dim, allowed=(*ALLOWED, IndexError))


HUGE_DIM_CHILD = textwrap.dedent(
    """
    import sys
    import nusterdb
    factory = getattr(nusterdb.Vector, sys.argv[1])
    try:
        factory(int(sys.argv[2]))
    except (ValueError, OverflowError, MemoryError) as exc:
        print("typed:", type(exc).__name__, exc)
        sys.exit(0)
    except BaseException as exc:
        print("untyped:", type(exc).__module__, type(exc).__name__, exc)
        sys.exit(3)
    print("allocated")
    sys.exit(0)
    """
)


@pytest.mark.parametrize("dim", [2**62, 2**48], ids=["2^62", "2^48"])
@pytest.mark.parametrize("factory", ["zeros", "ones", "random", "unit_random"])
def test_huge_dimension_is_a_typed_error_not_a_crash(factory: str, dim: int) -> None:
    # In a child process: a failed allocation in Rust aborts the whole process.
    proc = subprocess.run(
        [sys.executable, "-c", HUGE_DIM_CHILD, factory, str(dim)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "RUST_BACKTRACE": "0"},
    )
    detail = f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr[:2000]}"
    assert proc.returncode == 0, detail
    assert proc.stdout.startswith("typed:"), detail


# ----------------------------------------------------------------------------- namespace


def test_all_names_exist() -> None:
    for name in nusterdb.__all__:
        assert hasattr(nusterdb, name), name
    assert len(set(nusterdb.__all__)) == len(nusterdb.__all__)


def test_all_covers_the_public_api() -> None:
    public = {n for n in dir(nusterdb) if not n.startswith("_")}
    # nusterdb.integrations, nusterdb.cli (the command line) and nusterdb.server are
    # imported on demand (their tests import them at collection), never by `import
    # nusterdb`; nusterdb.client is the module of Client, nusterdb.encryption that of
    # EncryptionConfig. They are attributes here without being in __all__.
    allowed = {"annotations", "integrations", "cli", "server", "client", "encryption"}
    assert public <= set(nusterdb.__all__) | allowed


def test_extension_classes_live_in_core() -> None:
    for cls in (Vector, DistanceMetric, Metadata, HNSWConfig, StorageConfiguration, DatabaseConfig):
        assert cls.__module__ == "nusterdb._core"


# ----------------------------------------------------------------------------- freeing


@pytest.mark.parametrize(
    "make",
    [lambda: Vector.ones(1000), lambda: Metadata.with_data({"a": 1}, ["t"])],
    ids=["Vector", "Metadata"],
)
def test_objects_hold_no_hidden_references(make: Callable[[], object]) -> None:
    # The abi3 (Python >= 3.8) build cannot offer weak references, so freeing is shown
    # by reference counts: using an object through its methods must not leave extra
    # references behind (a leaked reference would keep it alive forever), and the
    # RSS test below shows the memory is returned.
    obj = make()
    before = sys.getrefcount(obj)
    for _ in range(100):
        repr(obj)
        len(obj)  # type: ignore[arg-type]
        obj == obj  # noqa: B015
    assert sys.getrefcount(obj) == before


def rss_bytes() -> int:
    statm = Path("/proc/self/statm")
    return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc/self/statm")
def test_dropped_vectors_release_their_memory() -> None:
    # 2,000 x 1 MB vectors: 2 GB if they leaked, a few MB if they are freed.
    big = np.ones(250_000, dtype=np.float32)
    for _ in range(50):
        Vector(big)
    gc.collect()
    before = rss_bytes()
    for _ in range(2000):
        v = Vector(big)
        w = v + 1.0
        del v, w
    gc.collect()
    grown = rss_bytes() - before
    print(f"rss growth: {grown / 2**20:.1f} MiB")
    assert grown < 200 * 2**20
