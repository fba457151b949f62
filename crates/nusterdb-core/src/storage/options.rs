//! Maps a [`StorageConfig`] onto RocksDB's options, knob by knob, so each one really
//! reaches the engine (tests read them back from RocksDB's own `OPTIONS-*` file).
//!
//! Durability choices live here too: the WAL is always on; `sync_writes` makes every
//! write batch fsync the WAL; the WAL recovery mode is point-in-time by default (the
//! database always opens, keeping a consistent prefix of the log) and "tolerate only
//! a corrupted tail" with `sync_writes`, where any other WAL damage is real
//! corruption that must be reported rather than skipped.

use rocksdb::{BlockBasedOptions, Cache, DBCompressionType, DBRecoveryMode, Options, WriteOptions};

use crate::config::{Compression, StorageConfig};

const MIB: u64 = 1024 * 1024;

/// The engine options for a database with `cfg`.
pub fn db_options(cfg: &StorageConfig) -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.set_write_buffer_size(
        usize::try_from(cfg.write_buffer_size_mb * MIB).unwrap_or(usize::MAX),
    );
    opts.set_max_write_buffer_number(clamp_i32(cfg.max_write_buffer_number));
    opts.set_compression_type(compression_type(cfg.compression));
    opts.set_max_background_jobs(clamp_i32(cfg.max_background_jobs));
    opts.set_wal_recovery_mode(if cfg.sync_writes {
        DBRecoveryMode::TolerateCorruptedTailRecords
    } else {
        DBRecoveryMode::PointInTime
    });
    opts.set_paranoid_checks(true);
    if cfg.enable_statistics {
        opts.enable_statistics();
    }

    let mut table = BlockBasedOptions::default();
    if cfg.cache_size_mb == 0 {
        table.disable_cache();
    } else {
        let bytes = usize::try_from(cfg.cache_size_mb * MIB).unwrap_or(usize::MAX);
        table.set_block_cache(&Cache::new_lru_cache(bytes));
    }
    if cfg.enable_bloom_filter {
        table.set_bloom_filter(f64::from(cfg.bloom_filter_bits_per_key), false);
    }
    opts.set_block_based_table_factory(&table);
    opts
}

/// Write options for every write batch: the WAL stays on, fsync'd when `sync_writes`.
pub fn write_options(cfg: &StorageConfig) -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(cfg.sync_writes);
    w.disable_wal(false);
    w
}

fn compression_type(c: Compression) -> DBCompressionType {
    match c {
        Compression::None => DBCompressionType::None,
        Compression::Snappy => DBCompressionType::Snappy,
        Compression::Lz4 => DBCompressionType::Lz4,
        Compression::Zstd => DBCompressionType::Zstd,
    }
}

fn clamp_i32(x: u32) -> i32 {
    i32::try_from(x).unwrap_or(i32::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rocksdb::statistics::Ticker;
    use rocksdb::DB;

    /// Opens a RocksDB with `cfg`, writes a little, and returns the text of the
    /// newest OPTIONS file the engine wrote.
    fn options_file_for(cfg: &StorageConfig) -> String {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = DB::open(&db_options(cfg), dir.path()).unwrap();
            db.put_opt(b"k", b"v", &write_options(cfg)).unwrap();
        }
        let mut files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("OPTIONS-"))
            .collect();
        files.sort();
        std::fs::read_to_string(dir.path().join(files.last().unwrap())).unwrap()
    }

    fn has_line(text: &str, needle: &str) -> bool {
        text.lines().any(|l| l.trim() == needle)
    }

    /// The engine's own report of a bloom filter's size after writing and flushing
    /// 20,000 keys with `bits` bits per key.
    fn filter_bytes_with_bits(bits: u32) -> u64 {
        let cfg = StorageConfig {
            bloom_filter_bits_per_key: bits,
            ..StorageConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let db = DB::open(&db_options(&cfg), dir.path()).unwrap();
        for i in 0u32..20_000 {
            db.put(i.to_be_bytes(), b"v").unwrap();
        }
        db.flush().unwrap();
        let props = db
            .property_value("rocksdb.aggregated-table-properties")
            .unwrap()
            .unwrap();
        props
            .split(';')
            .find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                (k.trim() == "filter block size").then(|| v.trim().parse().ok())?
            })
            .unwrap()
    }

    #[test]
    fn every_knob_reaches_the_engine() {
        let cfg = StorageConfig {
            cache_size_mb: 17,
            write_buffer_size_mb: 5,
            max_write_buffer_number: 7,
            compression: Compression::Zstd,
            enable_statistics: true,
            enable_bloom_filter: true,
            bloom_filter_bits_per_key: 13,
            max_background_jobs: 3,
            sync_writes: true,
            encryption: None,
        };
        let text = options_file_for(&cfg);
        assert!(has_line(&text, "write_buffer_size=5242880"), "{text}");
        assert!(has_line(&text, "max_write_buffer_number=7"));
        assert!(has_line(&text, "compression=kZSTD"));
        assert!(has_line(&text, "max_background_jobs=3"));
        assert!(has_line(
            &text,
            "wal_recovery_mode=kTolerateCorruptedTailRecords"
        ));
        assert!(has_line(&text, "filter_policy=bloomfilter"));
        assert!(has_line(&text, "no_block_cache=false"));

        let off = StorageConfig {
            cache_size_mb: 0,
            compression: Compression::None,
            enable_bloom_filter: false,
            ..StorageConfig::default()
        };
        let text = options_file_for(&off);
        assert!(has_line(&text, "no_block_cache=true"));
        assert!(has_line(&text, "compression=kNoCompression"));
        assert!(has_line(&text, "wal_recovery_mode=kPointInTimeRecovery"));
        assert!(!text.contains("bloomfilter"));
    }

    #[test]
    fn cache_size_sets_block_cache_capacity() {
        let cfg = StorageConfig {
            cache_size_mb: 17,
            ..StorageConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let db = DB::open(&db_options(&cfg), dir.path()).unwrap();
        let cap = db
            .property_int_value("rocksdb.block-cache-capacity")
            .unwrap();
        assert_eq!(cap, Some(17 * MIB));
    }

    #[test]
    fn bloom_bits_per_key_sizes_the_filter() {
        // The OPTIONS file does not record the bits; the filter's size does.
        let small = filter_bytes_with_bits(4);
        let large = filter_bytes_with_bits(16);
        assert!(
            large > 3 * small && small > 0,
            "filter bytes: 4 bits/key -> {small}, 16 bits/key -> {large}"
        );
    }

    #[test]
    fn sync_writes_fsyncs_every_batch() {
        for sync in [true, false] {
            let cfg = StorageConfig {
                sync_writes: sync,
                ..StorageConfig::default()
            };
            let dir = tempfile::tempdir().unwrap();
            let opts = db_options(&cfg);
            let db = DB::open(&opts, dir.path()).unwrap();
            let before = opts.get_ticker_count(Ticker::WalFileSynced);
            let w = write_options(&cfg);
            for i in 0u32..200 {
                db.put_opt(i.to_le_bytes(), b"v", &w).unwrap();
            }
            let synced = opts.get_ticker_count(Ticker::WalFileSynced) - before;
            if sync {
                assert!(
                    synced >= 200,
                    "only {synced} WAL syncs for 200 synced writes"
                );
            } else {
                assert!(synced < 5, "{synced} WAL syncs without sync_writes");
            }
        }
    }
}
