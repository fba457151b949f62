//! API keys: `DATA_DIR/keys.json` holds, per key, its id, name, scopes, collection
//! grants and a salted SHA-256 hash of its secret — never the secret. A key is
//! `nus_<id>_<secret>`: the id finds the entry, the secret is hashed with the entry's
//! salt and compared in constant time. A key's secret is 32 random bytes, so one
//! SHA-256 is enough: a slow password hash guards low-entropy secrets, which these
//! are not.
//!
//! The file is replaced atomically under an exclusive lock (`keys.lock`), so
//! `nusterdb keys ...` and the server's `/v1/keys` can change it side by side; the
//! server reloads it when its size or modification time changes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use nusterdb_core::storage::fileio::{write_atomic, OsIo};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ApiResult};

/// What a key may do. Each scope includes the ones below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    /// # Errors
    /// A name other than read, write, admin.
    pub fn parse(s: &str) -> ApiResult<Scope> {
        match s {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            other => Err(ApiError::invalid(format!(
                "unknown scope {other:?}: the scopes are \"read\", \"write\", \"admin\""
            ))),
        }
    }
}

/// One key as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyEntry {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// The collections the key may use; `None`: all of them.
    pub collections: Option<Vec<String>>,
    pub created_at: u64,
    pub revoked_at: Option<u64>,
    salt: String,
    hash: String,
}

impl KeyEntry {
    /// The listing form (no salt, no hash); `key` is set only by its creation.
    pub fn public(&self) -> crate::schema::Key {
        crate::schema::Key {
            id: self.id.clone(),
            name: self.name.clone(),
            scopes: self.scopes.iter().map(|s| s.name().to_owned()).collect(),
            collections: self.collections.clone(),
            created_at: self.created_at,
            revoked: self.revoked_at.is_some(),
            revoked_at: self.revoked_at,
            key: None,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KeyFile {
    version: u32,
    keys: Vec<KeyEntry>,
}

const KEY_FILE_VERSION: u32 = 1;

/// Who made a request.
#[derive(Clone, Debug)]
pub struct Principal {
    /// The key's id (`None` with authentication off).
    pub key_id: Option<String>,
    scopes: Vec<Scope>,
    collections: Option<Vec<String>>,
}

impl Principal {
    /// The caller when authentication is off: everything is allowed.
    pub fn anonymous_admin() -> Self {
        Self {
            key_id: None,
            scopes: vec![Scope::Admin],
            collections: None,
        }
    }

    /// Whether the caller has `scope` (or one above it).
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.iter().any(|s| *s >= scope)
    }

    /// Whether the caller may use `collection`.
    pub fn may_use(&self, collection: &str) -> bool {
        self.collections
            .as_ref()
            .is_none_or(|c| c.iter().any(|n| n == collection))
    }

    /// Checks `scope` and, when given, the grant for `collection`.
    ///
    /// # Errors
    /// 403 `ForbiddenError` naming what is missing.
    pub fn require(&self, scope: Scope, collection: Option<&str>) -> ApiResult<()> {
        let who = self.key_id.as_deref().unwrap_or("-");
        if !self.has(scope) {
            return Err(ApiError::forbidden(format!(
                "key {who} lacks the {:?} scope this request needs",
                scope.name()
            ))
            .with("scope", scope.name()));
        }
        if let Some(c) = collection {
            if !self.may_use(c) {
                return Err(ApiError::forbidden(format!(
                    "key {who} is not granted collection {c:?}"
                ))
                .with("collection", c));
            }
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex(n: usize) -> ApiResult<String> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b)
        .map_err(|e| ApiError::internal(format!("no random bytes from the system: {e}")))?;
    Ok(hex(&b))
}

fn digest(salt: &str, secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0u8]);
    h.update(secret.as_bytes());
    h.finalize().into()
}

/// The key file of a data directory, cached and reloaded when it changes.
pub struct KeyStore {
    path: PathBuf,
    lock_path: PathBuf,
    cache: Mutex<Cached>,
}

#[derive(Default)]
struct Cached {
    stamp: Option<(u64, SystemTime)>,
    keys: Arc<Vec<KeyEntry>>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> ApiError + '_ {
    move |source| {
        ApiError::from(nusterdb_core::Error::Io {
            path: path.to_owned(),
            source,
        })
    }
}

/// An exclusive lock on `keys.lock` for a read-modify-write of the key file.
struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    fn take(path: &Path) -> ApiResult<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io_err(path))?;
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: flock on a descriptor this function owns; released when the
            // file is closed (dropped).
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc != 0 {
                return Err(io_err(path)(std::io::Error::last_os_error()));
            }
        }
        Ok(Self { _file: file })
    }
}

impl KeyStore {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join("keys.json"),
            lock_path: data_dir.join("keys.lock"),
            cache: Mutex::new(Cached::default()),
        }
    }

    fn read_file(&self) -> ApiResult<KeyFile> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                let f: KeyFile = serde_json::from_slice(&bytes).map_err(|e| {
                    ApiError::from(nusterdb_core::Error::Corruption {
                        path: self.path.clone(),
                        detail: format!("the key file is not valid: {e}"),
                    })
                })?;
                if f.version != KEY_FILE_VERSION {
                    return Err(ApiError::from(nusterdb_core::Error::Corruption {
                        path: self.path.clone(),
                        detail: format!("key file version {} is not supported", f.version),
                    }));
                }
                Ok(f)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyFile {
                version: KEY_FILE_VERSION,
                keys: Vec::new(),
            }),
            Err(e) => Err(io_err(&self.path)(e)),
        }
    }

    /// The keys, reloaded if the file changed since the last call.
    ///
    /// # Errors
    /// An unreadable or malformed key file (every request is then refused rather
    /// than allowed).
    pub fn keys(&self) -> ApiResult<Arc<Vec<KeyEntry>>> {
        let stamp = std::fs::metadata(&self.path)
            .ok()
            .and_then(|m| Some((m.len(), m.modified().ok()?)));
        let mut c = self.cache.lock();
        if c.stamp != stamp || stamp.is_none() {
            c.keys = Arc::new(self.read_file()?.keys);
            c.stamp = stamp;
        }
        Ok(Arc::clone(&c.keys))
    }

    fn change<T>(&self, f: impl FnOnce(&mut KeyFile) -> ApiResult<T>) -> ApiResult<T> {
        let _lock = FileLock::take(&self.lock_path)?;
        let mut file = self.read_file()?;
        let out = f(&mut file)?;
        let bytes = serde_json::to_vec_pretty(&file)
            .map_err(|e| ApiError::internal(format!("cannot encode the key file: {e}")))?;
        write_atomic(&OsIo, &self.path, |w| w.write_all(&bytes))?;
        self.cache.lock().stamp = None;
        Ok(out)
    }

    /// Creates a key; returns its entry and the key itself (shown once, never stored).
    ///
    /// # Errors
    /// An empty name or scope list, an unknown collection name form; I/O errors.
    pub fn create(
        &self,
        name: &str,
        scopes: Vec<Scope>,
        collections: Option<Vec<String>>,
    ) -> ApiResult<(KeyEntry, String)> {
        if name.is_empty() || name.len() > 200 {
            return Err(ApiError::invalid("a key name is 1-200 bytes"));
        }
        if scopes.is_empty() {
            return Err(ApiError::invalid("a key needs at least one scope"));
        }
        for c in collections.iter().flatten() {
            crate::registry::check_name(c)?;
        }
        let id = random_hex(6)?;
        let secret = random_hex(32)?;
        let salt = random_hex(16)?;
        let entry = KeyEntry {
            id: id.clone(),
            name: name.to_owned(),
            scopes,
            collections,
            created_at: nusterdb_core::metadata::now_unix(),
            revoked_at: None,
            hash: hex(&digest(&salt, &secret)),
            salt,
        };
        let stored = entry.clone();
        self.change(move |f| {
            f.keys.push(stored);
            Ok(())
        })?;
        Ok((entry, format!("nus_{id}_{secret}")))
    }

    /// Revokes key `id`; returns whether it was live.
    ///
    /// # Errors
    /// No key with that id (404); I/O errors.
    pub fn revoke(&self, id: &str) -> ApiResult<bool> {
        self.change(|f| {
            let e = f.keys.iter_mut().find(|k| k.id == id).ok_or_else(|| {
                ApiError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "KeyNotFoundError",
                    format!("no key with id {id:?}"),
                )
            })?;
            let live = e.revoked_at.is_none();
            e.revoked_at
                .get_or_insert(nusterdb_core::metadata::now_unix());
            Ok(live)
        })
    }

    /// The caller a key names.
    ///
    /// # Errors
    /// 401 for a malformed, unknown, wrong or revoked key (one message for all: the
    /// answer says nothing about which part was wrong).
    pub fn authenticate(&self, key: &str) -> ApiResult<Principal> {
        let denied = || ApiError::unauthorized("the API key is missing, invalid or revoked");
        let keys = self.keys()?;
        let mut parts = key.splitn(3, '_');
        let (Some("nus"), Some(id), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(denied());
        };
        let entry = keys.iter().find(|k| k.id == id);
        // Hash even for an unknown id, so the time taken does not tell ids apart.
        let (salt, want) = match entry {
            Some(e) => (e.salt.as_str(), e.hash.as_str()),
            None => ("", ""),
        };
        let got = hex(&digest(salt, secret));
        let same: bool = got.as_bytes().ct_eq(want.as_bytes()).into();
        match entry {
            Some(e) if same && e.revoked_at.is_none() => Ok(Principal {
                key_id: Some(e.id.clone()),
                scopes: e.scopes.clone(),
                collections: e.collections.clone(),
            }),
            _ => Err(denied()),
        }
    }
}

/// The key id a presented key claims (for the audit log of a refused request; never
/// the secret).
pub fn claimed_id(key: &str) -> Option<&str> {
    let mut parts = key.splitn(3, '_');
    match (parts.next(), parts.next()) {
        (Some("nus"), Some(id)) if id.len() <= 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(id)
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_key_authenticates_until_revoked_and_only_its_hash_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        let (entry, key) = store
            .create("svc", vec![Scope::Write], Some(vec!["docs".into()]))
            .unwrap();
        let p = store.authenticate(&key).unwrap();
        assert!(p.has(Scope::Read) && p.has(Scope::Write) && !p.has(Scope::Admin));
        assert!(p.may_use("docs") && !p.may_use("other"));
        assert_eq!(p.require(Scope::Admin, None).unwrap_err().status, 403);
        let text = std::fs::read_to_string(dir.path().join("keys.json")).unwrap();
        let secret = key.rsplit('_').next().unwrap();
        assert!(!text.contains(secret));
        // A wrong secret, a malformed key, another id: 401.
        let mut wrong = key.clone();
        wrong.pop();
        wrong.push(if key.ends_with('0') { '1' } else { '0' });
        for bad in [
            wrong.as_str(),
            "nus_x",
            "",
            "Bearer",
            &format!("nus_ffffffffffff_{secret}"),
        ] {
            assert_eq!(store.authenticate(bad).unwrap_err().status, 401, "{bad:?}");
        }
        assert!(store.revoke(&entry.id).unwrap());
        assert_eq!(store.authenticate(&key).unwrap_err().status, 401);
        assert!(!store.revoke(&entry.id).unwrap());
    }

    #[test]
    fn a_second_store_on_the_same_directory_sees_new_keys() {
        let dir = tempfile::tempdir().unwrap();
        let a = KeyStore::new(dir.path());
        let b = KeyStore::new(dir.path());
        assert!(b.keys().unwrap().is_empty());
        let (_, key) = a.create("k", vec![Scope::Read], None).unwrap();
        assert!(b.authenticate(&key).is_ok());
    }
}
