//! The emergency reduction list as stored: list versions recorded in the event log, enterprises kept
//! as documents keyed by county, so that a warning over a region finds its enterprises by a key range.
//!
//! In: a validated [`ListVersion`] from the registry import. Out: the stored list (enterprise by
//! USCC, enterprises under a region), and a `list_version_recorded` record with the diff.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::region::{RegionCode, Tier};
use crate::registry::import::{Fingerprint, Previous, Staged};
use crate::registry::{Enterprise, ListDiff, ListVersion, Uscc};
use crate::store::events::{Event, ListVersionRecorded};
use crate::store::{Collection, Encoded, version_key};
use crate::store::{ReadTx, RecordBody, Store, StoreError};

/// Full enterprise records, key `{county}/{uscc}`.
pub const ENTERPRISES: Collection = Collection::Enterprises;
/// The keys of [`ENTERPRISES`] alone, key `{county}/{uscc}` → `0`: a region's enterprises are a key
/// range here, and scanning it does not read the (large) records.
pub const MEMBERS: Collection = Collection::EnterpriseMembers;
/// USCC → county, key `{uscc}`.
pub const BY_USCC: Collection = Collection::EnterpriseCounty;
/// List version summaries, key zero-padded version.
pub const VERSIONS: Collection = Collection::ListVersions;

/// A recorded list version, without its enterprises.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionSummary {
    /// Version number.
    pub version: u32,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Content digest.
    pub digest: String,
    /// Number of enterprises.
    pub enterprises: usize,
    /// Changes against the previous version.
    pub diff: ListDiff,
}

/// The key prefix of every county under `region` (`14` for the province, `1401` for a city).
pub fn region_prefix(region: RegionCode) -> String {
    let s = region.to_string();
    match region.tier() {
        Tier::Province => s[..2].to_string(),
        Tier::City => s[..4].to_string(),
        Tier::County => format!("{s}/"),
    }
}

/// The current version summary, if any.
pub fn current_version(r: &ReadTx) -> Result<Option<VersionSummary>, StoreError> {
    Ok(r.docs::<VersionSummary>(VERSIONS, "", "", usize::MAX)?.pop().map(|(_, v)| v))
}

/// An enterprise by USCC.
pub fn enterprise(r: &ReadTx, uscc: &str) -> Result<Option<Enterprise>, StoreError> {
    let Some(county) = r.doc::<String>(BY_USCC, uscc)? else {
        return Ok(None);
    };
    r.doc(ENTERPRISES, &format!("{county}/{uscc}"))
}

/// Every stored enterprise, in key order (county, then USCC).
pub fn all_enterprises(r: &ReadTx) -> Result<Vec<Enterprise>, StoreError> {
    Ok(r.docs::<Enterprise>(ENTERPRISES, "", "", usize::MAX)?
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}

/// Up to `limit` stored enterprises after the key `after` (`{county}/{uscc}`; empty: from the
/// start), in key order, with their keys: the list read a page at a time (`GET /api/v1/enterprises`).
pub fn enterprises_after(r: &ReadTx, after: &str, limit: usize) -> Result<Vec<(String, Enterprise)>, StoreError> {
    r.docs::<Enterprise>(ENTERPRISES, "", after, limit)
}

/// Enterprises written per chunk of [`record`]'s transaction.
const RECORD_CHUNK: usize = 10_000;

/// A list version as [`record`] writes it: its number, digest and enterprises sorted by USCC, each
/// read when its chunk is written ([`ListVersion`] holds them, [`Staged`] packed).
pub trait NewVersion: Send + 'static {
    /// Its number.
    fn number(&self) -> u32;
    /// Its digest.
    fn digest(&self) -> &str;
    /// Number of enterprises.
    fn len(&self) -> usize;
    /// True when it has no enterprises.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The code and county of the `i`-th enterprise.
    fn key(&self, i: usize) -> (Uscc, RegionCode);
    /// The `i`-th enterprise as the store keeps it.
    fn encoded(&self, i: usize) -> Result<Encoded, StoreError>;
}

impl NewVersion for ListVersion {
    fn number(&self) -> u32 {
        self.version
    }
    fn digest(&self) -> &str {
        &self.digest
    }
    fn len(&self) -> usize {
        self.enterprises.len()
    }
    fn key(&self, i: usize) -> (Uscc, RegionCode) {
        (self.enterprises[i].uscc, self.enterprises[i].county)
    }
    fn encoded(&self, i: usize) -> Result<Encoded, StoreError> {
        Ok(Encoded::of(&self.enterprises[i]))
    }
}

impl NewVersion for Staged {
    fn number(&self) -> u32 {
        self.version
    }
    fn digest(&self) -> &str {
        &self.digest
    }
    fn len(&self) -> usize {
        Staged::len(self)
    }
    fn key(&self, i: usize) -> (Uscc, RegionCode) {
        Staged::key(self, i)
    }
    fn encoded(&self, i: usize) -> Result<Encoded, StoreError> {
        let e = self
            .enterprise(i)
            .map_err(|e| StoreError::Refused(format!("cannot read the list's temporary file: {e}")))?;
        Ok(Encoded::of(&e))
    }
}

/// Records a new list version: writes the enterprises, removes those no longer listed, and appends a
/// `list_version_recorded` record with the diff; one transaction (written in chunks of
/// [`RECORD_CHUNK`], committed together or not at all).
pub async fn record(
    store: &Store,
    version: impl NewVersion,
    diff: ListDiff,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<VersionSummary, StoreError> {
    let actor = actor.to_string();
    store
        .write(move |tx| {
            // Removed enterprises a chunk at a time, each collection in turn: the undo log then
            // keeps one run of keys per collection and chunk, not an entry per key.
            for chunk in diff.removed.chunks(RECORD_CHUNK) {
                let usccs: Vec<String> = chunk.iter().map(|u| u.as_str().to_string()).collect();
                let counties: Vec<Option<String>> = tx.get_docs(BY_USCC, &usccs)?;
                let stored: Vec<(&String, String)> = usccs
                    .iter()
                    .zip(&counties)
                    .filter_map(|(u, c)| c.as_ref().map(|c| (u, format!("{c}/{u}"))))
                    .collect();
                for (_, key) in &stored {
                    tx.remove_doc(ENTERPRISES, key)?;
                }
                for (_, key) in &stored {
                    tx.remove_doc(MEMBERS, key)?;
                }
                for (uscc, _) in &stored {
                    tx.remove_doc(BY_USCC, uscc)?;
                }
            }
            // Bulk, in chunks of the one transaction: the keys of a chunk at a time, not of the whole
            // list (a national list has hundreds of thousands); each collection in its key order, so
            // B-tree inserts touch each page once.
            let n = version.len();
            let keys: Vec<(Uscc, RegionCode)> = (0..n).map(|i| version.key(i)).collect();
            for chunk in keys.chunks(RECORD_CHUNK) {
                let usccs: Vec<String> = chunk.iter().map(|(u, _)| u.as_str().to_string()).collect();
                let old_counties: Vec<Option<String>> = tx.get_docs(BY_USCC, &usccs)?;
                for ((uscc, county), old) in chunk.iter().zip(&old_counties) {
                    if let Some(old) = old.as_ref().filter(|o| **o != county.to_string()) {
                        tx.remove_doc(ENTERPRISES, &format!("{old}/{}", uscc.as_str()))?;
                        tx.remove_doc(MEMBERS, &format!("{old}/{}", uscc.as_str()))?;
                    }
                }
                let counties: Vec<(String, String)> = chunk.iter().zip(usccs).map(|((_, c), u)| (u, c.to_string())).collect();
                tx.put_docs(BY_USCC, &counties)?;
            }
            // `{county}/{uscc}` order: the six-digit county's numeric order, then the code's.
            let mut by_key: Vec<u32> = (0..n as u32).collect();
            by_key.sort_unstable_by_key(|i| (keys[*i as usize].1, keys[*i as usize].0));
            for chunk in by_key.chunks(RECORD_CHUNK) {
                let docs: Vec<(String, Encoded)> = chunk
                    .iter()
                    .map(|&i| {
                        let (uscc, county) = keys[i as usize];
                        Ok((format!("{county}/{}", uscc.as_str()), version.encoded(i as usize)?))
                    })
                    .collect::<Result<_, StoreError>>()?;
                tx.put_encoded_docs(ENTERPRISES, &docs)?;
                let members: Vec<(String, u8)> = docs.into_iter().map(|(k, _)| (k, 0)).collect();
                tx.put_docs(MEMBERS, &members)?;
            }
            let summary = VersionSummary {
                version: version.number(),
                recorded_at: now,
                digest: version.digest().to_string(),
                enterprises: n,
                diff,
            };
            tx.put_doc(VERSIONS, &version_key(u64::from(summary.version)), &summary)?;
            let recorded = ListVersionRecorded {
                added: summary.diff.added.len() as u64,
                changed: summary.diff.changed.len() as u64,
                digest: summary.digest.clone(),
                enterprises: summary.enterprises as u64,
                grade_changes: summary.diff.grade_changes.clone(),
                removed: summary.diff.removed.len() as u64,
                version: summary.version,
            };
            tx.append(now, &actor, None, RecordBody::Other(Event::ListVersionRecorded(recorded)))?;
            Ok(summary)
        })
        .await
}

/// On first start (no list recorded yet), imports the list folder (`enterprises.csv`, `measures.csv`).
pub async fn seed(engine: &crate::engine::Engine, defaults: &crate::registry::Defaults, dir: &std::path::Path) -> anyhow::Result<()> {
    if engine.store.read(current_version)?.is_some() || !dir.is_dir() {
        return Ok(());
    }
    let paths = vec![dir.join("enterprises.csv"), dir.join("measures.csv")];
    let opts = crate::registry::import::ImportOptions {
        defaults,
        regions: Some(engine.regions),
    };
    let enterprises = crate::registry::import::read_paths(&paths, &opts, &mut |_, _| {}).map_err(|errors| {
        let text: Vec<String> = errors.iter().take(20).map(ToString::to_string).collect();
        anyhow::anyhow!("the list seed {} has errors:\n{}", dir.display(), text.join("\n"))
    })?;
    let now = engine.clock.now();
    let version = ListVersion::new(enterprises, None, now);
    let diff = crate::registry::import::diff_enterprises(&[], &version.enterprises);
    let n = version.enterprises.len();
    record(&engine.store, version, diff, "seed", now).await?;
    tracing::info!(enterprises = n, dir = %dir.display(), "the emergency reduction list was seeded");
    Ok(())
}

/// The store's page cache for `hazeflow registry …`: the list is read or written once, in key order,
/// so a small cache costs little time and leaves the memory to the list being imported.
const CLI_CACHE_BYTES: usize = 64 << 20;

/// The stored list as a source for `hazeflow registry …` (the daemon must be stopped: the database
/// file is opened directly).
pub struct StoreList {
    store: Store,
    rt: tokio::runtime::Runtime,
}

impl StoreList {
    /// Opens the database file.
    pub fn open(path: &std::path::Path) -> anyhow::Result<StoreList> {
        use anyhow::Context;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let store = Store::open_with_cache(path, CLI_CACHE_BYTES)
            .with_context(|| format!("cannot open {} (is the daemon running? stop it first)", path.display()))?;
        Ok(StoreList { store, rt })
    }
}

impl Drop for StoreList {
    fn drop(&mut self) {
        self.store.close();
    }
}

impl crate::registry::cli::ListSource for StoreList {
    fn current(&mut self, _opts: &crate::registry::import::ImportOptions<'_>) -> anyhow::Result<Option<ListVersion>> {
        let (summary, enterprises) = self.store.read(|r| Ok((current_version(r)?, all_enterprises(r)?)))?;
        Ok(summary.map(|s| {
            let mut enterprises = enterprises;
            enterprises.sort_by_key(|a| a.uscc);
            ListVersion {
                version: s.version,
                created_at: s.recorded_at,
                enterprises,
                digest: s.digest,
            }
        }))
    }

    fn previous(&mut self, _opts: &crate::registry::import::ImportOptions<'_>) -> anyhow::Result<Option<Previous>> {
        // In pages: only the fingerprints of the stored list are held, never the list itself.
        const PAGE: usize = 1_000;
        self.store
            .read(|r| {
                let Some(summary) = current_version(r)? else { return Ok(None) };
                let mut prints = Vec::with_capacity(summary.enterprises);
                let mut after = String::new();
                loop {
                    let page = r.docs::<Enterprise>(ENTERPRISES, "", &after, PAGE)?;
                    let Some((last, _)) = page.last() else { break };
                    after = last.clone();
                    let full = page.len() == PAGE;
                    prints.extend(page.iter().map(|(_, e)| Fingerprint::of(e)));
                    if !full {
                        break;
                    }
                }
                Ok(Some(Previous::from_unsorted(summary.version, prints)))
            })
            .map_err(Into::into)
    }

    fn record(&mut self, version: Staged, diff: &ListDiff) -> anyhow::Result<()> {
        let now = Utc::now();
        self.rt
            .block_on(record(&self.store, version, diff.clone(), "registry import", now))?;
        Ok(())
    }
}
