//! The collections of a data directory: `DATA_DIR/collections/<name>/` is one NusterDB
//! database each, opened as its writer when the server starts and closed (sealed,
//! flushed) when it stops.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nusterdb_core::config::{Fields, MasterKey};
use nusterdb_core::{Database, DatabaseConfig, Location};

/// `config` with the server's master key, its rows in memory (an encrypted database
/// maps no files; the API has no `vectors` choice, so this replaces only the default).
fn keyed(mut config: DatabaseConfig, key: &MasterKey) -> DatabaseConfig {
    config.storage.encryption = Some(key.clone());
    config.vectors = nusterdb_core::config::VectorStorage::Memory;
    config
}
use parking_lot::{Mutex, RwLock};

use crate::error::{ApiError, ApiResult};

/// The longest collection name.
pub const MAX_NAME_LEN: usize = 64;

/// Checks a collection name: 1–64 of `[A-Za-z0-9_-]`, not starting with `-` or `.`
/// (it is a directory name, and must never name `..` or a hidden file).
pub fn check_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "collection names are 1-{MAX_NAME_LEN} characters of A-Z, a-z, 0-9, '_' and '-', \
             not starting with '-'; got {:?}",
            name.chars().take(80).collect::<String>()
        )))
    }
}

/// The open collections.
pub struct Registry {
    dir: PathBuf,
    open: RwLock<BTreeMap<String, Arc<Database>>>,
    /// The master key every collection is encrypted under (`nusterdb serve
    /// --encryption-key-*`): new collections are created encrypted, and every one is
    /// opened with it.
    encryption: Option<MasterKey>,
    /// Serialises creation and removal (a name is created or dropped once).
    changing: Mutex<()>,
}

impl Registry {
    /// Opens every collection under `data_dir/collections` (creating the directories).
    ///
    /// # Errors
    /// A directory that cannot be made or read; a collection that cannot be opened
    /// (locked by another process, damaged): the server does not start half-open.
    pub fn open(data_dir: &Path, encryption: Option<MasterKey>) -> nusterdb_core::Result<Self> {
        let dir = data_dir.join("collections");
        std::fs::create_dir_all(&dir).map_err(|source| nusterdb_core::Error::Io {
            path: dir.clone(),
            source,
        })?;
        let mut open = BTreeMap::new();
        let entries = std::fs::read_dir(&dir).map_err(|source| nusterdb_core::Error::Io {
            path: dir.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".dropped-") {
                // A drop a crash cut short: the collection was already gone.
                let _ = std::fs::remove_dir_all(entry.path());
                continue;
            }
            if check_name(&name).is_err() || !entry.path().is_dir() {
                continue; // a dropped collection's leftovers, or not ours
            }
            let given = match &encryption {
                Some(key) => Some(keyed(DatabaseConfig::new(1)?.stating(Fields::NONE), key)),
                None => None,
            };
            let db = Database::open(Location::Path(entry.path()), given, false)?;
            open.insert(name, Arc::new(db));
        }
        Ok(Self {
            dir,
            encryption,
            open: RwLock::new(open),
            changing: Mutex::new(()),
        })
    }

    /// The open collection `name`.
    ///
    /// # Errors
    /// No such collection (404).
    pub fn get(&self, name: &str) -> ApiResult<Arc<Database>> {
        self.open
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::no_collection(name))
    }

    /// Every collection, by name.
    pub fn all(&self) -> Vec<(String, Arc<Database>)> {
        self.open
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect()
    }

    /// Creates collection `name` with `config` (blocking: it creates a RocksDB
    /// database).
    ///
    /// # Errors
    /// A bad name; an existing collection (409 `CollectionExistsError`); the core's
    /// errors creating the database (nothing is left behind then).
    pub fn create(&self, name: &str, config: DatabaseConfig) -> ApiResult<Arc<Database>> {
        check_name(name)?;
        let _changing = self.changing.lock();
        let path = self.dir.join(name);
        if self.open.read().contains_key(name) || path.exists() {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "CollectionExistsError",
                format!("a collection named {name:?} exists"),
            )
            .with("collection", name));
        }
        let config = match &self.encryption {
            Some(key) => keyed(config, key),
            None => config,
        };
        let db = match Database::open(Location::Path(path.clone()), Some(config), false) {
            Ok(db) => Arc::new(db),
            Err(e) => {
                // Nothing of a failed creation stays behind to be opened next start.
                let _ = std::fs::remove_dir_all(&path);
                return Err(e.into());
            }
        };
        self.open.write().insert(name.to_owned(), Arc::clone(&db));
        Ok(db)
    }

    /// Closes and deletes collection `name` (blocking). The directory is first renamed
    /// out of `collections/`, so a crash midway leaves it gone or whole, never half.
    ///
    /// # Errors
    /// No such collection; the directory cannot be moved.
    pub fn drop_collection(&self, name: &str) -> ApiResult<()> {
        check_name(name)?;
        let _changing = self.changing.lock();
        let db = self
            .open
            .write()
            .remove(name)
            .ok_or_else(|| ApiError::no_collection(name))?;
        db.close();
        let path = self.dir.join(name);
        let trash = self
            .dir
            .join(format!(".dropped-{name}-{}", std::process::id()));
        std::fs::rename(&path, &trash).map_err(|source| {
            ApiError::from(nusterdb_core::Error::Io {
                path: path.clone(),
                source,
            })
        })?;
        let _ = std::fs::remove_dir_all(&trash);
        Ok(())
    }

    /// Closes every collection (each seals and flushes).
    pub fn close_all(&self) {
        for (_, db) in self.open.write().iter() {
            db.close();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_escape_the_directory_are_refused() {
        for bad in ["", "..", ".", "a/b", "-x", "a b", "é", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "A_b-9", &"x".repeat(64)] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
    }
}
