//! The keys that sign acknowledgement links, each with an id, so that they can be rotated: the
//! newest key signs every new link, older keys still verify the links they signed until their file
//! is removed, and a link names the key that signed it (`/ack/k2.…`).
//!
//! Where they live: `{data_dir}/token-keys/k{N}.key` (64 hex digits, mode 0600, the folder 0700);
//! the highest `N` signs. The single key of earlier releases, `{data_dir}/token.key` (or
//! `HAZEFLOW_TOKEN_KEY`), is kept as the *legacy* key: it verifies the links without a key id that it
//! signed, and signs nothing new. Read at start (making `k1` when the folder holds no key) and again
//! on every reload; `hazeflow token-key rotate` adds the next key.
//!
//! The dashboard's session keys (they sign its forms and sessions) work alike ([`SessionKeys`]):
//! `{data_dir}/session-keys/k{N}.key`, the highest signs, the others verify; the single key of
//! earlier releases (`session.key`, or `HAZEFLOW_SESSION_KEY`) is read as `k0`, and signs until a
//! rotation adds `k1` (`hazeflow token-key rotate --session`).
//!
//! When the store is shared by several nodes (PostgreSQL), the keys live in the store instead
//! ([`KeyHome::Store`], collection `secrets`: `link/k{N}`, and the dashboard's `session/k{N}`), so
//! that a link signed on one node verifies on every other and a dashboard session survives a
//! failover; `hazeflow token-key rotate` then adds the next key there.
//!
//! In: the data folder or the store, and the environment. Out: a [`KeyRing`], or an error naming the
//! file or the record.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The folder of the keys with ids, inside the data folder.
pub const FOLDER: &str = "token-keys";

/// The key of earlier releases (links without a key id), inside the data folder.
pub const LEGACY_FILE: &str = "token.key";

/// The environment variable that gives the legacy key instead of its file.
pub const LEGACY_ENV: &str = "HAZEFLOW_TOKEN_KEY";

/// The keys in service: at least one with an id (the newest signs), and perhaps the legacy key.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRing {
    legacy: Option<[u8; 32]>,
    keys: BTreeMap<u32, [u8; 32]>,
    newest: (u32, [u8; 32]),
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_struct("KeyRing").field("ids", &self.ids()).finish()
    }
}

impl KeyRing {
    /// A ring of these keys (by id number: `k3` is 3) and the legacy key; refused without a key
    /// with an id, since nothing could sign.
    pub fn new(keys: BTreeMap<u32, [u8; 32]>, legacy: Option<[u8; 32]>) -> Result<KeyRing> {
        let Some((&id, &secret)) = keys.iter().next_back() else {
            bail!(
                "{FOLDER}: no acknowledgement-link key (k1.key, k2.key, …): nothing could sign new links; `hazeflow token-key rotate` makes one"
            );
        };
        Ok(KeyRing {
            legacy,
            keys,
            newest: (id, secret),
        })
    }

    /// The key that signs new links: its id number and secret.
    pub fn signing(&self) -> (u32, &[u8; 32]) {
        (self.newest.0, &self.newest.1)
    }

    /// The key of this id (`None`: the legacy key, for links without an id).
    pub fn get(&self, id: Option<u32>) -> Option<&[u8; 32]> {
        match id {
            Some(n) => self.keys.get(&n),
            None => self.legacy.as_ref(),
        }
    }

    /// The ids in service, oldest first (`legacy`, `k1`, `k2`, …); the last signs.
    pub fn ids(&self) -> Vec<String> {
        self.legacy
            .map(|_| "legacy".to_string())
            .into_iter()
            .chain(self.keys.keys().map(|n| id_name(*n)))
            .collect()
    }
}

/// `k3` for 3.
pub fn id_name(n: u32) -> String {
    format!("k{n}")
}

/// 3 for `k3` (no sign, no leading zero, from 1).
pub fn parse_id(s: &str) -> Option<u32> {
    let digits = s.strip_prefix('k')?;
    if digits.is_empty() || digits.starts_with('0') || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn parse_secret(text: &str) -> Option<[u8; 32]> {
    hex::decode(text.trim()).ok().and_then(|v| v.try_into().ok())
}

/// The keys of the data folder as they are now (a reload): the folder's `k{N}.key` files and the
/// legacy key. An error names the file; a folder without a key is an error.
pub fn read(data_dir: &Path) -> Result<KeyRing> {
    let legacy = match std::env::var(LEGACY_ENV) {
        Ok(v) => Some(parse_secret(&v).with_context(|| format!("{LEGACY_ENV} must be 64 hex digits"))?),
        Err(_) => {
            let path = data_dir.join(LEGACY_FILE);
            match std::fs::read_to_string(&path) {
                Ok(text) => Some(parse_secret(&text).with_context(|| format!("{} must hold 64 hex digits", path.display()))?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
            }
        }
    };
    KeyRing::new(read_folder(&data_dir.join(FOLDER))?, legacy)
}

/// The `k{N}.key` files of the folder (none when it does not exist). Hidden files and files not
/// ending in `.key` are passed over (a half-written `.k3.key.tmp`).
fn read_folder(dir: &Path) -> Result<BTreeMap<u32, [u8; 32]>> {
    let mut keys = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    for entry in entries {
        let path = entry.with_context(|| format!("cannot read {}", dir.display()))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let Some(stem) = name.strip_suffix(".key") else { continue };
        let id = parse_id(stem).with_context(|| format!("{}: a key file is named k<N>.key (k1.key, k2.key, …)", path.display()))?;
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let secret = parse_secret(&text).with_context(|| format!("{} must hold 64 hex digits", path.display()))?;
        keys.insert(id, secret);
    }
    Ok(keys)
}

/// At start: the keys of the data folder, making `k1` when the folder holds none (a first start, or
/// the first start of this release beside an existing `token.key`, which stays as the legacy key).
pub fn load_or_create(data_dir: &Path) -> Result<KeyRing> {
    match read(data_dir) {
        Ok(ring) => Ok(ring),
        Err(_) if read_folder(&data_dir.join(FOLDER))?.is_empty() => {
            let (id, path) = rotate(data_dir)?;
            tracing::info!(key = %id_name(id), file = %path.display(), "made the first acknowledgement-link key");
            read(data_dir)
        }
        Err(e) => Err(e),
    }
}

/// Adds the next key (one above the highest id; `k1` in an empty folder), written whole with mode
/// 0600 before it appears under its name. A running daemon signs with it after its next reload.
pub fn rotate(data_dir: &Path) -> Result<(u32, PathBuf)> {
    rotate_in(data_dir, FOLDER)
}

/// Adds the next key file to `{data_dir}/{folder}` (see [`rotate`]).
fn rotate_in(data_dir: &Path, folder: &str) -> Result<(u32, PathBuf)> {
    let dir = data_dir.join(folder);
    crate::config::private_dir(data_dir)?;
    crate::config::private_dir(&dir)?;
    let next = read_folder(&dir)?.keys().next_back().map_or(1, |n| n + 1);
    let name = format!("{}.key", id_name(next));
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let secret: [u8; 32] = rand::random();
    crate::config::create_private(&tmp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, hex::encode(secret).as_bytes()).and_then(|()| f.sync_all()))
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    // A key of that id made meanwhile is not overwritten.
    std::fs::hard_link(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    let _ = std::fs::remove_file(&tmp);
    Ok((next, path))
}

/// The folder of the dashboard's session keys (they sign its forms), inside the data folder.
pub const SESSION_FOLDER: &str = "session-keys";

/// The dashboard's single key of earlier releases, inside the data folder: read as `k0`.
pub const SESSION_LEGACY_FILE: &str = "session.key";

/// The environment variable that gives the dashboard's key instead (read as `k0`).
pub const SESSION_ENV: &str = "HAZEFLOW_SESSION_KEY";

/// The dashboard's session keys in service, by id (`k0`: the legacy `session.key` or
/// `HAZEFLOW_SESSION_KEY`; `k1`, `k2`, …: `session-keys/k{N}.key` or the store's `session/k{N}`).
/// The highest signs new forms; the others verify the forms they signed until they are removed.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    keys: BTreeMap<u32, [u8; 32]>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_struct("SessionKeys").field("ids", &self.ids()).finish()
    }
}

impl SessionKeys {
    /// These keys (0: the legacy key); refused when there is none.
    pub fn new(keys: BTreeMap<u32, [u8; 32]>) -> Result<SessionKeys> {
        if keys.is_empty() {
            bail!(
                "{SESSION_FOLDER}: no dashboard session key (k1.key, …, or {SESSION_LEGACY_FILE}): nothing could sign the dashboard's forms; `hazeflow token-key rotate --session` makes one"
            );
        }
        Ok(SessionKeys { keys })
    }

    /// The key that signs new forms and sessions: its id number and secret.
    pub fn signing(&self) -> (u32, &[u8; 32]) {
        let (id, key) = self.keys.iter().next_back().unwrap_or_else(|| unreachable!("never empty"));
        (*id, key)
    }

    /// The key of this id.
    pub fn get(&self, id: u32) -> Option<&[u8; 32]> {
        self.keys.get(&id)
    }

    /// The ids in service, oldest first (`k0` for the legacy key); the last signs.
    pub fn ids(&self) -> Vec<String> {
        self.keys.keys().map(|n| format!("k{n}")).collect()
    }
}

/// 0 for `k0`, else as [`parse_id`] (a session key's id in a form token).
pub fn parse_session_id(s: &str) -> Option<u32> {
    if s == "k0" { Some(0) } else { parse_id(s) }
}

/// The legacy session key: `HAZEFLOW_SESSION_KEY`, else `{data_dir}/session.key` (when a folder is
/// given), else none.
fn session_legacy(data_dir: Option<&Path>) -> Result<Option<[u8; 32]>> {
    if let Ok(v) = std::env::var(SESSION_ENV) {
        return parse_secret(&v)
            .map(Some)
            .with_context(|| format!("{SESSION_ENV} must be 64 hex digits"));
    }
    let Some(dir) = data_dir else { return Ok(None) };
    let path = dir.join(SESSION_LEGACY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(
            parse_secret(&text).with_context(|| format!("{} must hold 64 hex digits", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Where the keys live: the data folder (one node, the embedded store) or the shared store.
#[derive(Clone)]
pub enum KeyHome {
    /// `{data_dir}/token-keys/` and `{data_dir}/session.key`.
    Folder(PathBuf),
    /// The store's `secrets` collection.
    Store(crate::store::Store),
}

/// A key as kept in the store.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredKey {
    /// 64 hex digits.
    secret: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl KeyHome {
    /// The store when it is shared by several nodes, else the data folder.
    pub fn for_store(store: &crate::store::Store, data_dir: &Path) -> KeyHome {
        if store.kind() == "postgres" {
            KeyHome::Store(store.clone())
        } else {
            KeyHome::Folder(data_dir.to_path_buf())
        }
    }

    /// Where, for messages.
    pub fn describe(&self) -> String {
        match self {
            KeyHome::Folder(dir) => dir.join(FOLDER).display().to_string(),
            KeyHome::Store(_) => "the store (shared by the nodes)".to_string(),
        }
    }

    /// The keys as they are now (a reload).
    pub fn read(&self) -> Result<KeyRing> {
        match self {
            KeyHome::Folder(dir) => read(dir),
            KeyHome::Store(store) => KeyRing::new(stored(store, "link/")?, legacy_from_env()?),
        }
    }

    /// At start: the keys, making `k1` when there is none.
    pub fn load_or_create(&self) -> Result<KeyRing> {
        match self {
            KeyHome::Folder(dir) => load_or_create(dir),
            KeyHome::Store(store) => {
                if stored(store, "link/")?.is_empty() {
                    let id = add_stored(store, "link/", true)?;
                    tracing::info!(key = %id_name(id), "made the first acknowledgement-link key in the store");
                }
                self.read()
            }
        }
    }

    /// Adds the next key; its id and where it went.
    pub fn rotate(&self) -> Result<(u32, String)> {
        match self {
            KeyHome::Folder(dir) => rotate(dir).map(|(id, path)| (id, path.display().to_string())),
            KeyHome::Store(store) => {
                let id = add_stored(store, "link/", false)?;
                Ok((id, format!("the store (secrets/link/{})", id_name(id))))
            }
        }
    }

    /// The dashboard's session keys as they are now (a reload): `session-keys/k{N}.key` (or the
    /// store's `session/k{N}`) and the legacy key as `k0` (`HAZEFLOW_SESSION_KEY`, else
    /// `session.key` in the data folder).
    pub fn session_keys(&self) -> Result<SessionKeys> {
        match self {
            KeyHome::Folder(dir) => {
                let mut keys = read_folder(&dir.join(SESSION_FOLDER))?;
                if let Some(k0) = session_legacy(Some(dir))? {
                    keys.insert(0, k0);
                }
                SessionKeys::new(keys)
            }
            KeyHome::Store(store) => {
                let mut keys = stored(store, "session/")?;
                if let Some(k0) = session_legacy(None)? {
                    keys.insert(0, k0);
                }
                SessionKeys::new(keys)
            }
        }
    }

    /// At start: the session keys, making `k1` when there is none at all (a legacy `session.key`
    /// stays the signing key, as `k0`, until a rotation).
    pub fn load_or_create_session(&self) -> Result<SessionKeys> {
        let none = match self {
            KeyHome::Folder(dir) => read_folder(&dir.join(SESSION_FOLDER))?.is_empty() && session_legacy(Some(dir))?.is_none(),
            KeyHome::Store(store) => stored(store, "session/")?.is_empty() && session_legacy(None)?.is_none(),
        };
        if none {
            let (id, place) = match self {
                KeyHome::Folder(dir) => rotate_in(dir, SESSION_FOLDER).map(|(id, p)| (id, p.display().to_string()))?,
                KeyHome::Store(store) => (add_stored(store, "session/", true)?, "the store".to_string()),
            };
            tracing::info!(key = %id_name(id), place, "made the first dashboard session key");
        }
        self.session_keys()
    }

    /// Adds the next session key (one above the highest; `k1` beside a legacy `k0`); its id and
    /// where it went. A running daemon signs with it after its next reload.
    pub fn rotate_session(&self) -> Result<(u32, String)> {
        match self {
            KeyHome::Folder(dir) => rotate_in(dir, SESSION_FOLDER).map(|(id, path)| (id, path.display().to_string())),
            KeyHome::Store(store) => {
                let id = add_stored(store, "session/", false)?;
                Ok((id, format!("the store (secrets/session/{})", id_name(id))))
            }
        }
    }

    /// Where the session keys live, for messages.
    pub fn describe_session(&self) -> String {
        match self {
            KeyHome::Folder(dir) => dir.join(SESSION_FOLDER).display().to_string(),
            KeyHome::Store(_) => "the store (shared by the nodes)".to_string(),
        }
    }
}

fn legacy_from_env() -> Result<Option<[u8; 32]>> {
    match std::env::var(LEGACY_ENV) {
        Ok(v) => Ok(Some(
            parse_secret(&v).with_context(|| format!("{LEGACY_ENV} must be 64 hex digits"))?,
        )),
        Err(_) => Ok(None),
    }
}

/// The keys of the store under `prefix` (`link/`, `session/`), by id number.
fn stored(store: &crate::store::Store, prefix: &str) -> Result<BTreeMap<u32, [u8; 32]>> {
    use crate::store::Collection;
    let found: Vec<(String, StoredKey)> = store.read(|r| r.docs(Collection::Secrets, prefix, "", 10_000))?;
    let mut keys = BTreeMap::new();
    for (key, k) in found {
        let name = key.strip_prefix(prefix).unwrap_or(&key);
        let id = parse_id(name).with_context(|| format!("secrets/{key}: a key is named {prefix}k<N>"))?;
        let secret = parse_secret(&k.secret).with_context(|| format!("secrets/{key} must hold 64 hex digits"))?;
        keys.insert(id, secret);
    }
    Ok(keys)
}

/// Adds the next key under `prefix` in one write (one above the highest; `k1` when none). With
/// `only_if_none`, nothing is added when a key is there already (two nodes starting together make
/// one). Returns the id of the newest key.
fn add_stored(store: &crate::store::Store, prefix: &str, only_if_none: bool) -> Result<u32> {
    use crate::store::{Collection, StoreError};
    let prefix = prefix.to_string();
    let now = chrono::Utc::now();
    let job = move |tx: &mut crate::store::Tx<'_>| {
        let present: Vec<String> = tx.doc_keys(Collection::Secrets, &prefix, "", 10_000)?;
        let highest = present
            .iter()
            .filter_map(|k| k.strip_prefix(prefix.as_str()).and_then(parse_id))
            .max();
        if only_if_none && let Some(h) = highest {
            return Ok::<u32, StoreError>(h);
        }
        let next = highest.map_or(1, |h| h + 1);
        let secret: [u8; 32] = rand::random();
        let value = StoredKey {
            secret: hex::encode(secret),
            created_at: now,
        };
        tx.put_doc(Collection::Secrets, &format!("{prefix}{}", id_name(next)), &value)?;
        Ok(next)
    };
    let written = match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| h.block_on(store.write(job)))
        }
        _ => std::thread::scope(|s| {
            s.spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .build()
                    .map_err(|e| crate::store::StoreError::Refused(e.to_string()))?
                    .block_on(store.write(job))
            })
            .join()
            .unwrap_or_else(|_| Err(crate::store::StoreError::Refused("the key's write panicked".into())))
        }),
    };
    Ok(written?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_strictly_and_the_highest_signs() {
        assert_eq!(parse_id("k1"), Some(1));
        assert_eq!(parse_id("k42"), Some(42));
        for bad in ["k", "k0", "k01", "1", "K1", "k1a", "k-1"] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
        let ring = KeyRing::new(BTreeMap::from([(1, [1; 32]), (10, [10; 32]), (2, [2; 32])]), Some([0; 32])).unwrap();
        assert_eq!(ring.signing().0, 10);
        assert_eq!(ring.ids(), ["legacy", "k1", "k2", "k10"]);
        assert_eq!(ring.get(None), Some(&[0; 32]));
        assert_eq!(ring.get(Some(3)), None);
        assert!(
            KeyRing::new(BTreeMap::new(), Some([0; 32])).is_err(),
            "the legacy key alone signs nothing"
        );
    }

    #[test]
    fn the_first_start_makes_k1_rotation_adds_the_next_and_a_stray_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let ring = load_or_create(dir.path()).unwrap();
        assert_eq!(ring.ids(), ["k1"]);
        assert_eq!(load_or_create(dir.path()).unwrap(), ring, "made once");
        assert_eq!(rotate(dir.path()).unwrap().0, 2);
        let ring = read(dir.path()).unwrap();
        assert_eq!((ring.ids(), ring.signing().0), (vec!["k1".to_string(), "k2".to_string()], 2));
        std::fs::write(dir.path().join(FOLDER).join("new.key"), "00").unwrap();
        let e = format!("{:#}", read(dir.path()).unwrap_err());
        assert!(e.contains("new.key: a key file is named k<N>.key"), "{e}");
        std::fs::write(dir.path().join(FOLDER).join("new.key"), "").unwrap();
        std::fs::remove_file(dir.path().join(FOLDER).join("new.key")).unwrap();
        std::fs::write(dir.path().join(FOLDER).join("k3.key"), "not hex").unwrap();
        let e = format!("{:#}", read(dir.path()).unwrap_err());
        assert!(e.contains("k3.key must hold 64 hex digits"), "{e}");
    }

    #[test]
    fn session_keys_read_the_legacy_file_as_k0_and_rotation_adds_k1_which_signs() {
        let dir = tempfile::tempdir().unwrap();
        let home = KeyHome::Folder(dir.path().to_path_buf());
        // A new data folder: k1 is made.
        let keys = home.load_or_create_session().unwrap();
        assert_eq!((keys.ids(), keys.signing().0), (vec!["k1".to_string()], 1));
        // A folder of an earlier release: its session.key is k0 and goes on signing until a rotation.
        let old = tempfile::tempdir().unwrap();
        std::fs::write(old.path().join(SESSION_LEGACY_FILE), hex::encode([7u8; 32])).unwrap();
        let home = KeyHome::Folder(old.path().to_path_buf());
        let keys = home.load_or_create_session().unwrap();
        assert_eq!((keys.ids(), keys.signing()), (vec!["k0".to_string()], (0, &[7u8; 32])));
        assert_eq!(home.rotate_session().unwrap().0, 1);
        let keys = home.session_keys().unwrap();
        assert_eq!((keys.ids(), keys.signing().0), (vec!["k0".to_string(), "k1".to_string()], 1));
        assert_eq!(keys.get(0), Some(&[7u8; 32]), "the legacy key still verifies");
        assert_eq!(
            (parse_session_id("k0"), parse_session_id("k2"), parse_session_id("k00")),
            (Some(0), Some(2), None)
        );
    }

    #[cfg(unix)]
    #[test]
    fn key_files_are_their_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (_, path) = rotate(dir.path()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(dir.path().join(FOLDER)).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
