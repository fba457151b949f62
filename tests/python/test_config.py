"""``HNSWConfig``, ``StorageConfiguration`` and ``DatabaseConfig``: the SPEC §1 defaults,
validation naming the field, names and aliases, factories, immutability, equality."""

from __future__ import annotations

from typing import Any, Callable, Dict, List

import nusterdb
import pytest
from nusterdb import (
    DatabaseConfig,
    DistanceMetric,
    HNSWConfig,
    InvalidArgumentError,
    NusterDB,
    NusterDBError,
    StorageConfiguration,
)

HNSW_DEFAULTS: Dict[str, Any] = {
    "max_nb_connection": 16,
    "max_nb_elements": 1024,
    "max_layer": 16,
    "ef_construction": 200,
    "ef_search": None,
    "use_heuristic": True,
}
STORAGE_DEFAULTS: Dict[str, Any] = {
    "cache_size_mb": 256,
    "write_buffer_size_mb": 64,
    "max_write_buffer_number": 3,
    "compression": "lz4",
    "enable_statistics": True,
    "enable_bloom_filter": True,
    "bloom_filter_bits_per_key": 10,
    "max_background_jobs": 4,
    "sync_writes": False,
}


def kwargs(field: str, value: object) -> Dict[str, Any]:
    """One keyword argument, typed loosely so each test can pass any field."""
    return {field: value}


def props(obj: object, names: Dict[str, Any]) -> Dict[str, Any]:
    return {name: getattr(obj, name) for name in names}


# ----------------------------------------------------------------------------- module constants


def test_module_constants() -> None:
    assert nusterdb.DEFAULT_HNSW_M == 16
    assert nusterdb.DEFAULT_HNSW_EF_CONSTRUCTION == 200
    assert nusterdb.DEFAULT_CACHE_SIZE_MB == 256
    assert HNSWConfig().max_nb_connection == nusterdb.DEFAULT_HNSW_M
    assert HNSWConfig().ef_construction == nusterdb.DEFAULT_HNSW_EF_CONSTRUCTION
    assert StorageConfiguration().cache_size_mb == nusterdb.DEFAULT_CACHE_SIZE_MB


def test_version_is_a_release_string() -> None:
    parts = nusterdb.__version__.split(".")
    assert len(parts) >= 3
    assert all(p.isdigit() for p in parts[:2])


# ----------------------------------------------------------------------------- HNSWConfig


def test_hnsw_defaults_match_spec() -> None:
    assert props(HNSWConfig(), HNSW_DEFAULTS) == HNSW_DEFAULTS
    assert props(HNSWConfig.default(), HNSW_DEFAULTS) == HNSW_DEFAULTS
    assert HNSWConfig() == HNSWConfig.default()


def test_hnsw_every_property_reads_back() -> None:
    values: Dict[str, Any] = {
        "max_nb_connection": 32,
        "max_nb_elements": 1_000_000,
        "max_layer": 8,
        "ef_construction": 400,
        "ef_search": 64,
        "use_heuristic": False,
    }
    c = HNSWConfig(**values)
    assert props(c, values) == values
    assert HNSWConfig(32, 1_000_000, 8, 400, 64, False) == c


def test_hnsw_max_nb_elements_is_only_a_hint() -> None:
    assert HNSWConfig(max_nb_elements=0).max_nb_elements == 0
    assert HNSWConfig(max_nb_elements=10**12).max_nb_elements == 10**12


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_nb_connection", 0),
        ("max_nb_connection", 1),
        ("max_nb_connection", 513),
        ("max_layer", 0),
        ("max_layer", 65),
        ("ef_construction", 0),
        ("ef_construction", 2**20 + 1),
        ("ef_search", 0),
        ("ef_search", 2**20 + 1),
    ],
)
def test_hnsw_out_of_range_is_invalid_argument_naming_the_field(field: str, value: int) -> None:
    with pytest.raises(InvalidArgumentError, match=field) as info:
        HNSWConfig(**kwargs(field, value))
    assert str(value) in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_nb_connection", 2),
        ("max_nb_connection", 512),
        ("max_layer", 1),
        ("max_layer", 64),
        ("ef_construction", 16),
        ("ef_construction", 2**20),
        ("ef_search", 1),
        ("ef_search", 2**20),
        ("max_nb_elements", 0),
    ],
)
def test_hnsw_range_limits_are_inclusive(field: str, value: int) -> None:
    assert getattr(HNSWConfig(**kwargs(field, value)), field) == value


def test_ef_construction_below_m_is_refused_not_clamped() -> None:
    # It used to report 1 and build with 16.
    with pytest.raises(
        InvalidArgumentError,
        match=r"ef_construction must be at least max_nb_connection \(16\), got 1",
    ):
        HNSWConfig(ef_construction=1)
    with pytest.raises(InvalidArgumentError, match="ef_construction"):
        HNSWConfig(max_nb_connection=32, ef_construction=31)
    assert HNSWConfig(max_nb_connection=2, ef_construction=2).ef_construction == 2
    # Not given, ef_construction follows a large M up: what is reported is what is used.
    assert HNSWConfig(max_nb_connection=512).ef_construction == 512
    assert HNSWConfig(max_nb_connection=8).ef_construction == 200


def test_max_nb_elements_is_a_hint_that_caps_nothing() -> None:
    cfg = DatabaseConfig(4, index_type="hnsw", hnsw_config=HNSWConfig(max_nb_elements=0))
    db = NusterDB(None, cfg)
    db.bulk_add(list(range(50)), [[float(i), 0.0, 0.0, 1.0] for i in range(50)])
    assert db.count() == 50
    assert db.config.hnsw_config.max_nb_elements == 0


@pytest.mark.parametrize("ef", [0, 2**20 + 1, 2**64 - 1])
def test_per_call_ef_search_has_the_config_bound(ef: int) -> None:
    db = NusterDB(None, DatabaseConfig(4, index_type="hnsw"))
    db.add(1, [1.0, 0.0, 0.0, 0.0])
    with pytest.raises(InvalidArgumentError, match="ef_search"):
        db.search([1.0, 0.0, 0.0, 0.0], k=1, ef_search=ef)
    with pytest.raises(InvalidArgumentError, match="ef_search"):
        db.batch_search([[1.0, 0.0, 0.0, 0.0]], k=1, ef_search=ef)
    assert db.search([1.0, 0.0, 0.0, 0.0], k=1, ef_search=2**20) == [(1, 0.0)]


@pytest.mark.parametrize(
    "field", ["max_nb_connection", "max_nb_elements", "max_layer", "ef_construction", "ef_search"]
)
def test_hnsw_negative_int_is_overflow_error(field: str) -> None:
    with pytest.raises(OverflowError):
        HNSWConfig(**kwargs(field, -1))


@pytest.mark.parametrize("value", ["16", 16.0, None])
def test_hnsw_non_int_is_type_error(value: Any) -> None:
    with pytest.raises(TypeError):
        HNSWConfig(max_nb_connection=value)


def test_hnsw_unknown_keyword_is_type_error() -> None:
    with pytest.raises(TypeError):
        HNSWConfig(m=16)  # type: ignore[call-arg]


# ----------------------------------------------------------------------------- StorageConfiguration


def test_storage_defaults_match_spec() -> None:
    assert props(StorageConfiguration(), STORAGE_DEFAULTS) == STORAGE_DEFAULTS
    assert props(StorageConfiguration.default(), STORAGE_DEFAULTS) == STORAGE_DEFAULTS
    assert StorageConfiguration() == StorageConfiguration.default()


def test_storage_every_property_reads_back() -> None:
    values: Dict[str, Any] = {
        "cache_size_mb": 0,
        "write_buffer_size_mb": 16,
        "max_write_buffer_number": 6,
        "compression": "zstd",
        "enable_statistics": False,
        "enable_bloom_filter": False,
        "bloom_filter_bits_per_key": 20,
        "max_background_jobs": 2,
        "sync_writes": True,
    }
    c = StorageConfiguration(**values)
    assert props(c, values) == values


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cache_size_mb", 2**20 + 1),
        ("write_buffer_size_mb", 0),
        ("write_buffer_size_mb", 2**16 + 1),
        ("max_write_buffer_number", 0),
        ("max_write_buffer_number", 1),
        ("max_write_buffer_number", 65),
        ("bloom_filter_bits_per_key", 0),
        ("bloom_filter_bits_per_key", 65),
        ("max_background_jobs", 0),
        ("max_background_jobs", 257),
    ],
)
def test_storage_out_of_range_is_invalid_argument_naming_the_field(field: str, value: int) -> None:
    with pytest.raises(InvalidArgumentError, match=field) as info:
        StorageConfiguration(**kwargs(field, value))
    assert str(value) in str(info.value)


@pytest.mark.parametrize(
    "field",
    [
        "cache_size_mb",
        "write_buffer_size_mb",
        "max_write_buffer_number",
        "bloom_filter_bits_per_key",
        "max_background_jobs",
    ],
)
def test_storage_negative_int_is_overflow_error(field: str) -> None:
    with pytest.raises(OverflowError):
        StorageConfiguration(**kwargs(field, -1))


def test_storage_huge_int_is_overflow_error_not_wrapped() -> None:
    # u32 fields must not wrap 2**32 + 3 round to 3.
    with pytest.raises(OverflowError):
        StorageConfiguration(max_write_buffer_number=2**32 + 3)
    with pytest.raises(OverflowError):
        StorageConfiguration(cache_size_mb=2**64)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("none", "none"),
        ("snappy", "snappy"),
        ("lz4", "lz4"),
        ("zstd", "zstd"),
        ("LZ4", "lz4"),
        ("Zstd", "zstd"),
        ("NONE", "none"),
        ("Snappy", "snappy"),
    ],
)
def test_compression_names_are_case_insensitive(given: str, stored: str) -> None:
    assert StorageConfiguration(compression=given).compression == stored


@pytest.mark.parametrize("bad", ["gzip", "zlib", "bzip2", "", "lz4hc", "lz 4"])
def test_unknown_compression_is_rejected_naming_the_valid_ones(bad: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        StorageConfiguration(compression=bad)
    for name in ("none", "snappy", "lz4", "zstd"):
        assert name in str(info.value)


def test_compression_must_be_a_string() -> None:
    with pytest.raises(TypeError):
        StorageConfiguration(compression=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["enable_statistics", "enable_bloom_filter", "sync_writes"])
def test_storage_bool_fields_reject_non_bools(field: str) -> None:
    with pytest.raises(TypeError):
        StorageConfiguration(**kwargs(field, "yes"))


# ----------------------------------------------------------------------------- DatabaseConfig


def test_database_config_defaults_match_spec() -> None:
    c = DatabaseConfig(128)
    assert c.dim == 128
    assert c.index_type == "flat"
    assert c.distance_metric == DistanceMetric.euclidean()
    assert c.hnsw_config == HNSWConfig.default()
    assert c.storage_config == StorageConfiguration.default()
    assert c.auto_snapshot is False
    assert c.snapshot_interval_secs == 3600


def test_database_config_every_property_reads_back() -> None:
    h = HNSWConfig(max_nb_connection=24, ef_search=50)
    s = StorageConfiguration(compression="zstd", sync_writes=True)
    c = DatabaseConfig(
        dim=384,
        index_type="hnsw",
        distance_metric=DistanceMetric.cosine(),
        hnsw_config=h,
        storage_config=s,
        auto_snapshot=True,
        snapshot_interval_secs=60,
    )
    assert c.dim == 384
    assert c.index_type == "hnsw"
    assert c.distance_metric == DistanceMetric.cosine()
    assert c.hnsw_config == h
    assert c.storage_config == s
    assert c.auto_snapshot is True
    assert c.snapshot_interval_secs == 60


@pytest.mark.parametrize("dim", [1, 3, 384, 65536])
def test_dim_in_range(dim: int) -> None:
    assert DatabaseConfig(dim).dim == dim


@pytest.mark.parametrize("dim", [0, 65537, 10**6])
def test_dim_out_of_range_is_invalid_argument_naming_dim(dim: int) -> None:
    with pytest.raises(InvalidArgumentError, match="dim"):
        DatabaseConfig(dim)
    with pytest.raises(InvalidArgumentError, match="dim"):
        DatabaseConfig.simple(dim)


def test_negative_dim_is_overflow_error() -> None:
    with pytest.raises(OverflowError):
        DatabaseConfig(-1)
    with pytest.raises(OverflowError):
        DatabaseConfig(dim=4, snapshot_interval_secs=-5)


def test_zero_snapshot_interval_with_auto_snapshot_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgumentError, match="snapshot_interval_secs"):
        DatabaseConfig(4, auto_snapshot=True, snapshot_interval_secs=0)
    # Without auto snapshots the interval is unused.
    assert DatabaseConfig(4, snapshot_interval_secs=0).snapshot_interval_secs == 0


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("flat", "flat"),
        ("hnsw", "hnsw"),
        ("HNSW", "hnsw"),
        ("ivf", "ivf"),
        ("IVF", "ivf"),
        ("Flat", "flat"),
        ("optimized_flat", "flat"),
        ("ultra_fast_flat", "flat"),
        ("super_optimized_flat", "flat"),
        ("ULTRA_FAST_FLAT", "flat"),
    ],
)
def test_index_type_and_flat_aliases(given: str, stored: str) -> None:
    assert DatabaseConfig(8, index_type=given).index_type == stored


@pytest.mark.parametrize("bad", ["ivfpq", "", "pq", "flat_hnsw", "brute"])
def test_unknown_index_type_is_invalid_argument(bad: str) -> None:
    with pytest.raises(InvalidArgumentError, match="flat") as info:
        DatabaseConfig(8, index_type=bad)
    assert "hnsw" in str(info.value)
    assert "ivf" in str(info.value)


@pytest.mark.parametrize(
    ("given", "name"),
    [
        (DistanceMetric.cosine(), "cosine"),
        ("cosine", "cosine"),
        ("L2", "euclidean"),
        ("ip", "inner_product"),
        (DistanceMetric.jaccard(), "jaccard"),
        (None, "euclidean"),
    ],
)
def test_distance_metric_accepts_a_metric_or_a_name(given: Any, name: str) -> None:
    assert DatabaseConfig(8, distance_metric=given).distance_metric.name == name


def test_unknown_metric_name_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgumentError, match="euclidean"):
        DatabaseConfig(8, distance_metric="nope")


@pytest.mark.parametrize("bad", [1, 2.5, ["cosine"], HNSWConfig()], ids=repr)
def test_distance_metric_of_a_wrong_type_is_type_error(bad: Any) -> None:
    with pytest.raises(TypeError):
        DatabaseConfig(8, distance_metric=bad)


def test_sub_configs_of_a_wrong_type_are_type_errors() -> None:
    with pytest.raises(TypeError):
        DatabaseConfig(8, hnsw_config=StorageConfiguration())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        DatabaseConfig(8, storage_config=HNSWConfig())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        DatabaseConfig(8, hnsw_config={"max_nb_connection": 8})  # type: ignore[arg-type]


FACTORIES: Dict[str, Callable[[int], DatabaseConfig]] = {
    "optimized_flat": DatabaseConfig.optimized_flat,
    "ultra_fast_flat": DatabaseConfig.ultra_fast_flat,
    "super_optimized_flat": DatabaseConfig.super_optimized_flat,
    "simple": DatabaseConfig.simple,
}


@pytest.mark.parametrize("factory", list(FACTORIES))
def test_flat_factories_give_the_default_flat_config(factory: str) -> None:
    c = FACTORIES[factory](64)
    assert c.index_type == "flat"
    assert c == DatabaseConfig(64)
    with pytest.raises(InvalidArgumentError):
        FACTORIES[factory](0)


def test_simple_with_hnsw() -> None:
    c = DatabaseConfig.simple(64, use_hnsw=True)
    assert c.index_type == "hnsw"
    assert c == DatabaseConfig(64, index_type="hnsw")
    assert DatabaseConfig.simple(64, False) == DatabaseConfig(64)
    assert c.hnsw_config == HNSWConfig.default()


def test_config_validates_its_sub_configs() -> None:
    # A sub-config is already valid, so a DatabaseConfig built from valid parts is valid.
    c = DatabaseConfig(4, hnsw_config=HNSWConfig(max_nb_connection=2))
    assert c.hnsw_config.max_nb_connection == 2


# ----------------------------------------------------------------- immutability, equality

IMMUTABLE_CASES = [
    (HNSWConfig(), list(HNSW_DEFAULTS)),
    (StorageConfiguration(), list(STORAGE_DEFAULTS)),
    (
        DatabaseConfig(8),
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


@pytest.mark.parametrize(("config", "fields"), IMMUTABLE_CASES, ids=lambda x: type(x).__name__)
def test_configs_are_immutable(config: object, fields: List[str]) -> None:
    for field in fields:
        before = getattr(config, field)
        with pytest.raises(AttributeError):
            setattr(config, field, before)
        assert getattr(config, field) == before
    with pytest.raises(AttributeError):
        config.new_attribute = 1  # type: ignore[attr-defined]


def test_sub_config_getters_return_copies_that_cannot_reach_back() -> None:
    c = DatabaseConfig(8, hnsw_config=HNSWConfig(ef_search=10))
    h = c.hnsw_config
    assert h == HNSWConfig(ef_search=10)
    assert c.hnsw_config.ef_search == 10


def test_equality() -> None:
    assert HNSWConfig(ef_search=5) == HNSWConfig(ef_search=5)
    assert HNSWConfig(ef_search=5) != HNSWConfig(ef_search=6)
    assert StorageConfiguration(compression="ZSTD") == StorageConfiguration(compression="zstd")
    assert StorageConfiguration() != StorageConfiguration(sync_writes=True)
    assert DatabaseConfig(8, distance_metric="cosine") == DatabaseConfig(
        8, distance_metric=DistanceMetric.cosine()
    )
    assert DatabaseConfig(8) != DatabaseConfig(9)
    assert DatabaseConfig(8) != DatabaseConfig(
        8, storage_config=StorageConfiguration(sync_writes=True)
    )
    assert DatabaseConfig(8, index_type="optimized_flat") == DatabaseConfig(8)
    assert HNSWConfig() != StorageConfiguration()
    assert DatabaseConfig(8) != 8


def test_reprs_name_the_class_and_values() -> None:
    assert repr(HNSWConfig(ef_search=7)).startswith("HNSWConfig(")
    assert "ef_search=7" in repr(HNSWConfig(ef_search=7))
    assert "compression=" in repr(StorageConfiguration())
    r = repr(DatabaseConfig(12, distance_metric="cosine"))
    assert "dim=12" in r
    assert "cosine" in r


def test_config_errors_are_nusterdb_errors() -> None:
    for make in (
        lambda: HNSWConfig(max_nb_connection=1),
        lambda: StorageConfiguration(max_write_buffer_number=1),
        lambda: DatabaseConfig(0),
    ):
        with pytest.raises(NusterDBError):
            make()
