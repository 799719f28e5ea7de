//! Importing the list: CSV (`enterprises.csv` + `measures.csv`) or YAML → validated enterprises →
//! a [`ListVersion`], and the [`diff`] between two versions.
//!
//! In: file names and texts (the column reference is in the [module docs](super)), the measure
//! defaults (level ids, key-industry ids) and, for real lists, the region table. Out: every
//! enterprise, or every problem of the whole import as `file:line:column: message` — nothing is
//! half-imported. CSV cells are validated straight from the reader's record, without copies, so a
//! national list (300,000 enterprises, 1,000,000 measures) imports in seconds.
//!
//! One function per rule; the messages are part of the interface and pinned by the fixtures in
//! `tests/fixtures/registry/`.

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};

use super::species::columns_around_species;
use super::{
    Contact, Defaults, EmailAddress, Enterprise, Exemption, ExemptionKind, Grade, GradeRecord, Industry, IndustryCode, LimitBaseline, Line,
    Measure, MeasureKind, PartialPerSpecies, PerSpecies, PermitNo, Phone, RegistryError, Species, Uscc, yaml_error,
};
use crate::domain::region::{RegionCode, Regions, Tier};

/// What an import checks against.
#[derive(Clone, Copy)]
pub struct ImportOptions<'a> {
    /// Level ids and key-industry ids.
    pub defaults: &'a Defaults,
    /// The region table counties must be in; `None` for synthetic lists, whose county codes are
    /// only checked for shape.
    pub regions: Option<&'a Regions>,
}

/// Progress of a long import: `(done, total)`, in rows.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

/// The default role of an enterprise's contact and of a line's.
const ENTERPRISE_ROLE: &str = "环保负责人";
const LINE_ROLE: &str = "工序责任人";

// ---------------------------------------------------------------------------------------------
// List versions and diffs
// ---------------------------------------------------------------------------------------------

/// One version of the list (annual revision or correction), enterprises sorted by USCC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListVersion {
    /// 1 for the first import, then +1 per import.
    pub version: u32,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// The enterprises, sorted by USCC.
    pub enterprises: Vec<Enterprise>,
    /// SHA-256 (hex) of the enterprises' canonical JSON.
    pub digest: String,
}

impl ListVersion {
    /// A new version of `enterprises` after `previous`: sorted by USCC, numbered one above the
    /// previous, and with grade histories carried over — an enterprise whose grade changed gets
    /// its old grade appended to its history, unless the import gave a history of its own.
    pub fn new(enterprises: Vec<Enterprise>, previous: Option<&ListVersion>, now: DateTime<Utc>) -> ListVersion {
        ListVersion::after(enterprises, previous.map(Previous::of).as_ref(), now)
    }

    /// [`ListVersion::new`] after a previous version held compactly ([`Previous`]).
    pub fn after(mut enterprises: Vec<Enterprise>, previous: Option<&Previous>, now: DateTime<Utc>) -> ListVersion {
        enterprises.sort_by_key(|e| e.uscc);
        if let Some(prev) = previous {
            for e in &mut enterprises {
                let Some(old) = prev.get(&e.uscc) else { continue };
                if e.grade_history.is_empty() {
                    e.grade_history = old.grade_history.clone();
                    if old.grade.grade != e.grade.grade {
                        e.grade_history.push(old.grade.clone());
                    }
                }
            }
        }
        let digest = digest(&enterprises);
        ListVersion {
            version: previous.map_or(1, |p| p.version + 1),
            created_at: now,
            enterprises,
            digest,
        }
    }

    /// The enterprise with this code.
    pub fn get(&self, uscc: &Uscc) -> Option<&Enterprise> {
        self.enterprises
            .binary_search_by(|e| e.uscc.cmp(uscc))
            .ok()
            .map(|i| &self.enterprises[i])
    }

    /// Number of enterprises.
    pub fn len(&self) -> usize {
        self.enterprises.len()
    }

    /// True when the list is empty.
    pub fn is_empty(&self) -> bool {
        self.enterprises.is_empty()
    }
}

/// The fields whose changes a diff names, in the order it names them.
const DIFF_FIELDS: [&str; 11] = [
    "uscc_override",
    "permit",
    "name",
    "county",
    "industry",
    "grade",
    "exemption",
    "baseline",
    "lines",
    "contacts",
    "measures",
];

/// What a diff and the next version need of a previous enterprise, without its lines, contacts
/// and measures: its name, grade and grade history, and a hash of each field a diff names
/// ([`DIFF_FIELDS`]). A national list's previous version held this way takes a tenth of the room.
#[derive(Debug, Clone, PartialEq)]
pub struct Fingerprint {
    /// Its code.
    pub uscc: Uscc,
    /// Its name.
    pub name: String,
    /// Its grade.
    pub grade: GradeRecord,
    /// Its grade history.
    pub grade_history: Vec<GradeRecord>,
    /// A hash of each field of [`DIFF_FIELDS`] (of its canonical JSON).
    pub fields: [u64; 11],
}

impl Fingerprint {
    /// The fingerprint of an enterprise.
    pub fn of(e: &Enterprise) -> Fingerprint {
        fn h<T: Serialize + ?Sized>(value: &T) -> u64 {
            struct HashWriter(std::collections::hash_map::DefaultHasher);
            impl std::io::Write for HashWriter {
                fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                    std::hash::Hasher::write(&mut self.0, buf);
                    Ok(buf.len())
                }
                fn flush(&mut self) -> std::io::Result<()> {
                    Ok(())
                }
            }
            // Fixed keys: the same value hashes the same in every run.
            let mut w = HashWriter(std::collections::hash_map::DefaultHasher::default());
            let _ = serde_json::to_writer(&mut w, value);
            std::hash::Hasher::finish(&w.0)
        }
        Fingerprint {
            uscc: e.uscc,
            name: e.name.clone(),
            grade: e.grade.clone(),
            grade_history: e.grade_history.clone(),
            fields: [
                h(&e.uscc_override),
                h(&e.permit),
                h(&e.name),
                h(&e.county),
                h(&e.industry),
                h(&e.grade.grade),
                h(&e.exemption),
                h(&e.baseline),
                h(&e.lines),
                h(&e.contacts),
                h(&e.measures),
            ],
        }
    }
}

/// A previous list version held compactly: its number and its enterprises' [`Fingerprint`]s,
/// sorted by USCC.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Previous {
    /// Its version number.
    pub version: u32,
    /// The fingerprints, sorted by USCC.
    pub enterprises: Vec<Fingerprint>,
}

impl Previous {
    /// From a whole version.
    pub fn of(v: &ListVersion) -> Previous {
        Previous::from_unsorted(v.version, v.enterprises.iter().map(Fingerprint::of).collect())
    }

    /// From fingerprints in any order.
    pub fn from_unsorted(version: u32, mut enterprises: Vec<Fingerprint>) -> Previous {
        enterprises.sort_by_key(|f| f.uscc);
        Previous { version, enterprises }
    }

    /// The enterprise with this code.
    pub fn get(&self, uscc: &Uscc) -> Option<&Fingerprint> {
        self.enterprises
            .binary_search_by(|e| e.uscc.cmp(uscc))
            .ok()
            .map(|i| &self.enterprises[i])
    }
}

/// SHA-256 (hex) of the enterprises as compact JSON, streamed into the hash.
pub fn digest(enterprises: &[Enterprise]) -> String {
    let mut d = Digester::new();
    for e in enterprises {
        d.push(e);
    }
    d.finish()
}

/// [`digest`] one enterprise at a time: the same bytes as the JSON array of them all (`[`, the
/// enterprises separated by `,`, `]`).
struct Digester {
    w: HashWriter,
    first: bool,
}

struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Digester {
    fn new() -> Digester {
        let mut w = HashWriter(Sha256::new());
        w.0.update(b"[");
        Digester { w, first: true }
    }

    fn push(&mut self, e: &Enterprise) {
        if !self.first {
            self.w.0.update(b",");
        }
        self.first = false;
        // Writing plain data into a hash cannot fail.
        let _ = serde_json::to_writer(&mut self.w, e);
    }

    fn finish(mut self) -> String {
        self.w.0.update(b"]");
        hex::encode(self.w.0.finalize())
    }
}

/// What changed between two versions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListDiff {
    /// The older version (0 when there was none).
    pub from_version: u32,
    /// The newer version.
    pub to_version: u32,
    /// Enterprises new in the list.
    pub added: Vec<Uscc>,
    /// Enterprises no longer in the list.
    pub removed: Vec<Uscc>,
    /// Enterprises in both whose record changed, with the fields that did.
    pub changed: Vec<EnterpriseChange>,
    /// Grade changes (创A升B, downgrades): events with an effective date and a reason.
    pub grade_changes: Vec<GradeChange>,
}

impl ListDiff {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// An enterprise whose record changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnterpriseChange {
    /// Its code.
    pub uscc: Uscc,
    /// Its (new) name.
    pub name: String,
    /// The fields that changed (`name`, `county`, `industry`, `grade`, `exemption`, `baseline`,
    /// `lines`, `contacts`, `measures`, `permit`, `uscc_override`).
    pub fields: Vec<String>,
}

/// A grade change between two versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradeChange {
    /// The enterprise.
    pub uscc: Uscc,
    /// Its name.
    pub name: String,
    /// Old grade.
    pub from: Grade,
    /// New grade.
    pub to: Grade,
    /// Effective date given with the new grade.
    pub effective: Option<NaiveDate>,
    /// Reason given with the new grade.
    pub reason: String,
}

/// The difference between an old and a new version.
pub fn diff(old: &ListVersion, new: &ListVersion) -> ListDiff {
    diff_after(&Previous::of(old), new)
}

/// The difference between a previous version, held compactly, and a new one.
pub fn diff_after(old: &Previous, new: &ListVersion) -> ListDiff {
    ListDiff {
        from_version: old.version,
        to_version: new.version,
        ..diff_fingerprints(&old.enterprises, &new.enterprises)
    }
}

/// The difference between two lists of enterprises, each sorted by USCC (as in a [`ListVersion`]).
pub fn diff_enterprises(old: &[Enterprise], new: &[Enterprise]) -> ListDiff {
    let old: Vec<Fingerprint> = old.iter().map(Fingerprint::of).collect();
    diff_fingerprints(&old, new)
}

/// The difference between a previous list's fingerprints and a new list, each sorted by USCC.
pub fn diff_fingerprints(old: &[Fingerprint], new: &[Enterprise]) -> ListDiff {
    let mut walk = DiffWalk::new(old);
    for b in new {
        walk.push(b);
    }
    walk.finish()
}

/// [`diff_fingerprints`] with the new list given one enterprise at a time, in USCC order.
struct DiffWalk<'a> {
    old: &'a [Fingerprint],
    /// The first old enterprise not yet matched or removed.
    i: usize,
    d: ListDiff,
}

impl<'a> DiffWalk<'a> {
    fn new(old: &'a [Fingerprint]) -> DiffWalk<'a> {
        DiffWalk {
            old,
            i: 0,
            d: ListDiff::default(),
        }
    }

    fn push(&mut self, b: &Enterprise) {
        while let Some(a) = self.old.get(self.i).filter(|a| a.uscc < b.uscc) {
            self.d.removed.push(a.uscc);
            self.i += 1;
        }
        let Some(a) = self.old.get(self.i).filter(|a| a.uscc == b.uscc) else {
            self.d.added.push(b.uscc);
            return;
        };
        self.i += 1;
        let fields = changed_fields(a, &Fingerprint::of(b));
        if a.grade.grade != b.grade.grade {
            self.d.grade_changes.push(GradeChange {
                uscc: b.uscc,
                name: b.name.clone(),
                from: a.grade.grade,
                to: b.grade.grade,
                effective: b.grade.since,
                reason: b.grade.reason.clone(),
            });
        }
        if !fields.is_empty() {
            self.d.changed.push(EnterpriseChange {
                uscc: b.uscc,
                name: b.name.clone(),
                fields,
            });
        }
    }

    fn finish(mut self) -> ListDiff {
        self.d.removed.extend(self.old[self.i.min(self.old.len())..].iter().map(|a| a.uscc));
        self.d
    }
}

fn changed_fields(a: &Fingerprint, b: &Fingerprint) -> Vec<String> {
    DIFF_FIELDS
        .iter()
        .zip(a.fields.iter().zip(&b.fields))
        .filter(|(_, (x, y))| x != y)
        .map(|(f, _)| f.to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// A list held packed while it is imported
// ---------------------------------------------------------------------------------------------

/// Packed bytes kept in memory before they go to a temporary file: a small list never touches the
/// disk, a national one (about 600 bytes an enterprise) holds this much at most.
const SPILL_FROM_BYTES: usize = 16 << 20;

#[cfg(test)]
thread_local! {
    /// The tests' [`SPILL_FROM_BYTES`] (0: every enterprise goes to the file).
    static SPILL_FROM: std::cell::Cell<usize> = const { std::cell::Cell::new(SPILL_FROM_BYTES) };
}

/// Where an enterprise is packed in [`Packs`].
#[derive(Debug, Clone, Copy, Default)]
struct Place {
    at: u64,
    len: u32,
}

/// Enterprises packed ([`Enterprise::pack`]) one after the other and read back by place: in
/// memory up to [`SPILL_FROM_BYTES`], then in a temporary file. The file is created in the
/// system's temporary folder (`TMPDIR`), readable by its owner only, and its name is removed at
/// once: it has no name while it is used and goes away with the import, however that ends.
/// Packing an enterprise again (the rows of the measures file come back to it) appends it again.
struct Packs {
    file: Option<std::fs::File>,
    /// Bytes in the file.
    flushed: u64,
    /// The bytes after `flushed`, not in the file yet.
    pending: Vec<u8>,
    spill_from: usize,
}

impl Default for Packs {
    fn default() -> Packs {
        #[cfg(test)]
        let spill_from = SPILL_FROM.with(std::cell::Cell::get);
        #[cfg(not(test))]
        let spill_from = SPILL_FROM_BYTES;
        Packs {
            file: None,
            flushed: 0,
            pending: Vec::new(),
            spill_from,
        }
    }
}

impl Packs {
    /// Packs an enterprise; where it is.
    fn put(&mut self, e: &Enterprise) -> std::io::Result<Place> {
        let start = self.pending.len();
        e.pack(&mut self.pending);
        let place = Place {
            at: self.flushed + start as u64,
            len: u32::try_from(self.pending.len() - start).map_err(std::io::Error::other)?,
        };
        if self.pending.len() > self.spill_from {
            self.flush()?;
        }
        Ok(place)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let file = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(tempfile::tempfile()?),
        };
        file.write_all_at(&self.pending, self.flushed)?;
        self.flushed += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// The enterprise packed at `place`.
    fn get(&self, place: Place) -> std::io::Result<Enterprise> {
        use std::os::unix::fs::FileExt;
        let len = place.len as usize;
        let read;
        let bytes = match place.at.checked_sub(self.flushed) {
            Some(start) => self.pending.get(start as usize..start as usize + len),
            None => {
                let mut buf = vec![0; len];
                match &self.file {
                    Some(f) => f.read_exact_at(&mut buf, place.at)?,
                    None => return Err(std::io::Error::other("no temporary file")),
                }
                read = buf;
                Some(&read[..])
            }
        };
        bytes
            .and_then(Enterprise::unpack)
            .ok_or_else(|| std::io::Error::other("a packed enterprise does not read back"))
    }
}

/// The error an import reports when its temporary file fails (a full disk, say).
fn packs_error(e: &std::io::Error) -> RegistryError {
    RegistryError::at(
        std::env::temp_dir().display().to_string(),
        0,
        0,
        format!("cannot hold the list in a temporary file: {e}"),
    )
}

/// A built enterprise: where it is packed, and what the import needs without unpacking it.
#[derive(Debug, Clone, Copy)]
struct Slot {
    place: Place,
    uscc: Uscc,
    county: RegionCode,
    /// Some contact has an email.
    notifiable: bool,
}

/// A validated list, its enterprises packed, in file order ([`read_paths_packed`]).
pub struct PackedList {
    packs: Packs,
    slots: Vec<Slot>,
}

impl PackedList {
    /// Number of enterprises.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when the list is empty.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Every enterprise, unpacked, in file order (one at a time, to `f`).
    pub fn for_each(&self, mut f: impl FnMut(&Enterprise)) -> std::io::Result<()> {
        for slot in &self.slots {
            f(&self.packs.get(slot.place)?);
        }
        Ok(())
    }

    /// Every enterprise, unpacked, in file order.
    pub fn into_enterprises(self) -> Result<Vec<Enterprise>, Vec<RegistryError>> {
        self.slots
            .iter()
            .map(|s| self.packs.get(s.place))
            .collect::<Result<_, _>>()
            .map_err(|e| vec![packs_error(&e)])
    }

    /// The next version after `previous`, held packed, and the diff against it: as
    /// [`ListVersion::after`] and [`diff_after`] give them (sorted by USCC, grade histories carried
    /// over, the same digest), one enterprise unpacked at a time.
    pub fn stage(mut self, previous: Option<&Previous>, now: DateTime<Utc>) -> std::io::Result<(Staged, ListDiff)> {
        self.slots.sort_unstable_by_key(|s| s.uscc);
        let mut digest = Digester::new();
        let mut walk = DiffWalk::new(previous.map_or(&[][..], |p| &p.enterprises));
        for i in 0..self.slots.len() {
            let mut e = self.packs.get(self.slots[i].place)?;
            if let Some(old) = previous.and_then(|p| p.get(&e.uscc))
                && e.grade_history.is_empty()
            {
                e.grade_history = old.grade_history.clone();
                if old.grade.grade != e.grade.grade {
                    e.grade_history.push(old.grade.clone());
                }
                if !e.grade_history.is_empty() {
                    self.slots[i].place = self.packs.put(&e)?;
                }
            }
            digest.push(&e);
            walk.push(&e);
        }
        let version = previous.map_or(1, |p| p.version + 1);
        let diff = ListDiff {
            from_version: previous.map_or(0, |p| p.version),
            to_version: version,
            ..walk.finish()
        };
        let staged = Staged {
            version,
            created_at: now,
            digest: digest.finish(),
            packs: self.packs,
            slots: self.slots,
        };
        Ok((staged, diff))
    }
}

/// A new list version held packed ([`PackedList::stage`]): what [`ListVersion`] holds, the
/// enterprises sorted by USCC and unpacked one at a time.
pub struct Staged {
    /// 1 for the first import, then +1 per import.
    pub version: u32,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// SHA-256 (hex) of the enterprises' canonical JSON, as [`ListVersion::digest`].
    pub digest: String,
    packs: Packs,
    slots: Vec<Slot>,
}

impl Staged {
    /// Number of enterprises.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when the list is empty.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The code and county of the `i`-th enterprise (by USCC).
    pub fn key(&self, i: usize) -> (Uscc, RegionCode) {
        (self.slots[i].uscc, self.slots[i].county)
    }

    /// The `i`-th enterprise (by USCC), unpacked.
    pub fn enterprise(&self, i: usize) -> std::io::Result<Enterprise> {
        self.packs.get(self.slots[i].place)
    }

    /// The whole version, every enterprise unpacked.
    pub fn into_version(self) -> std::io::Result<ListVersion> {
        let enterprises = (0..self.len()).map(|i| self.enterprise(i)).collect::<std::io::Result<_>>()?;
        Ok(ListVersion {
            version: self.version,
            created_at: self.created_at,
            enterprises,
            digest: self.digest,
        })
    }

    /// The enterprise with this code, unpacked.
    pub fn get(&self, uscc: &Uscc) -> std::io::Result<Option<Enterprise>> {
        match self.slots.binary_search_by(|s| s.uscc.cmp(uscc)) {
            Ok(i) => self.enterprise(i).map(Some),
            Err(_) => Ok(None),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/// Reads a list from paths: a folder (its `enterprises.csv` and `measures.csv`, or its
/// `list.yaml`), a `.yaml` file, or an enterprises CSV optionally followed by a measures CSV.
pub fn read_paths(paths: &[PathBuf], opts: &ImportOptions<'_>, progress: Progress<'_>) -> Result<Vec<Enterprise>, Vec<RegistryError>> {
    read_paths_packed(paths, opts, progress)?.into_enterprises()
}

/// [`read_paths`], the enterprises held packed ([`PackedList`]): a national list in a fraction of
/// the room.
pub fn read_paths_packed(paths: &[PathBuf], opts: &ImportOptions<'_>, progress: Progress<'_>) -> Result<PackedList, Vec<RegistryError>> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| vec![RegistryError::at(p.display().to_string(), 0, 0, format!("cannot read: {e}"))])
    };
    let is_yaml = |p: &Path| p.extension().is_some_and(|x| x == "yaml" || x == "yml");
    let (first, second): (PathBuf, Option<PathBuf>) = match paths {
        [dir] if dir.is_dir() => {
            let yaml = dir.join("list.yaml");
            if yaml.is_file() && !dir.join("enterprises.csv").is_file() {
                (yaml, None)
            } else {
                let m = dir.join("measures.csv");
                (dir.join("enterprises.csv"), m.is_file().then_some(m))
            }
        }
        [one] => (one.clone(), None),
        [e, m] => (e.clone(), Some(m.clone())),
        _ => {
            return Err(vec![RegistryError::at(
                "",
                0,
                0,
                "name a folder, a YAML file, or an enterprises CSV and a measures CSV",
            )]);
        }
    };
    let name = first.display().to_string();
    if is_yaml(&first) {
        let text = read(&first)?;
        return import_yaml_packed(&name, &text, opts, progress);
    }
    // CSV files are read as they are parsed, never whole (a national list's files are hundreds of
    // megabytes): a first pass checks that they are UTF-8 and counts their lines.
    let e = CsvFile::scan(&first)?;
    let m = second.as_deref().map(CsvFile::scan).transpose()?;
    let m_name = second.as_ref().map(|m| m.display().to_string());
    import_csv_from(
        (&name, Src::File(&e)),
        m.as_ref().zip(m_name.as_deref()).map(|(m, n)| (n, Src::File(m))),
        opts,
        progress,
    )
}

/// A CSV file read as it is parsed: where its text starts (after a UTF-8 byte order mark) and how
/// many lines it has.
struct CsvFile {
    path: PathBuf,
    /// Bytes of the byte order mark skipped at the start (0 or 3).
    skip: u64,
    lines: usize,
}

impl CsvFile {
    /// Reads the file once in blocks: checks that it is UTF-8 (with the message reading it whole
    /// gave) and counts its lines.
    fn scan(path: &Path) -> Result<CsvFile, Vec<RegistryError>> {
        use std::io::Read;
        let fail = |e: &dyn std::fmt::Display| vec![RegistryError::at(path.display().to_string(), 0, 0, format!("cannot read: {e}"))];
        let mut f = std::fs::File::open(path).map_err(|e| fail(&e))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut head = Vec::with_capacity(3);
        f.by_ref().take(3).read_to_end(&mut head).map_err(|e| fail(&e))?;
        let skip = if head == b"\xef\xbb\xbf" { 3 } else { 0 };
        // Bytes not yet checked at the start of `buf`: the first ones (no byte order mark) or an
        // incomplete character at the end of the previous block.
        let mut carry = if skip == 0 { head.len() } else { 0 };
        buf[..carry].copy_from_slice(&head[..carry]);
        let mut lines = 0usize;
        loop {
            let n = f.read(&mut buf[carry..]).map_err(|e| fail(&e))?;
            let block = &buf[..carry + n];
            lines += block.iter().filter(|&&b| b == b'\n').count();
            let valid = match std::str::from_utf8(block) {
                Ok(_) => block.len(),
                Err(e) if e.error_len().is_none() && n > 0 => e.valid_up_to(),
                Err(_) => return Err(fail(&"stream did not contain valid UTF-8")),
            };
            if n == 0 {
                break;
            }
            // An incomplete character (never a newline) is checked again with the next block.
            buf.copy_within(valid..carry + n, 0);
            carry = carry + n - valid;
        }
        Ok(CsvFile {
            path: path.to_path_buf(),
            skip,
            lines,
        })
    }

    /// The file from the start of its text.
    fn open(&self) -> std::io::Result<std::fs::File> {
        use std::io::{Seek, SeekFrom};
        let mut f = std::fs::File::open(&self.path)?;
        f.seek(SeekFrom::Start(self.skip))?;
        Ok(f)
    }

    /// Up to 64 KiB of the text from `byte` on (for a column in an error message, or the header's
    /// place).
    fn text_at(&self, byte: usize) -> String {
        use std::io::{Read, Seek, SeekFrom};
        let mut out = Vec::new();
        if let Ok(mut f) = self.open()
            && f.seek(SeekFrom::Current(byte as i64)).is_ok()
        {
            let _ = f.take(64 << 10).read_to_end(&mut out);
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Where a CSV file's text is: in memory, or in its file.
#[derive(Clone, Copy)]
enum Src<'a> {
    Text(&'a str),
    File(&'a CsvFile),
}

impl Src<'_> {
    fn lines(&self) -> usize {
        match self {
            Src::Text(t) => count_lines(t),
            Src::File(f) => f.lines,
        }
    }

    /// The 1-based character column of field `field` of the record at `byte`.
    fn column(&self, byte: usize, field: usize) -> u64 {
        match self {
            Src::Text(t) => csv_column(t, byte, field),
            Src::File(f) => csv_column(&f.text_at(byte), 0, field),
        }
    }

    /// The line and byte offset of the header.
    fn header_place(&self) -> (u64, usize) {
        match self {
            Src::Text(t) => header_place(t),
            // The comment lines above the header are short.
            Src::File(f) => header_place(&f.text_at(0)),
        }
    }
}

/// Imports the CSV pair: `(file name, text)` of the enterprises file and, optionally, of the lines
/// and measures file. Validates everything before returning.
pub fn import_csv(
    enterprises: (&str, &str),
    measures: Option<(&str, &str)>,
    opts: &ImportOptions<'_>,
    progress: Progress<'_>,
) -> Result<Vec<Enterprise>, Vec<RegistryError>> {
    import_csv_from(
        (enterprises.0, Src::Text(strip_bom(enterprises.1))),
        measures.map(|(name, t)| (name, Src::Text(strip_bom(t)))),
        opts,
        progress,
    )?
    .into_enterprises()
}

/// [`import_csv`] from texts in memory or files.
fn import_csv_from(
    enterprises: (&str, Src<'_>),
    measures: Option<(&str, Src<'_>)>,
    opts: &ImportOptions<'_>,
    progress: Progress<'_>,
) -> Result<PackedList, Vec<RegistryError>> {
    let e_text = enterprises.1;
    let m_text = measures.map(|(_, t)| t);
    let mut files = vec![enterprises];
    files.extend(measures);
    let mut ctx = Ctx {
        files,
        errors: Vec::new(),
        opts: Some(*opts),
    };
    let total = e_text.lines() + m_text.map_or(0, |t| t.lines());
    let mut done = 0usize;
    let mut tick = |n: usize| {
        done += n;
        if done.is_multiple_of(4096) || done == total {
            progress(done.min(total), total);
        }
    };

    // Enterprises: one row each (room for all of them at once: growing by doubling would hold
    // the old and the new records side by side).
    let mut list = Builder::default();
    list.slots.reserve(e_text.lines());
    let enterprise_table = CsvTable::open(&mut ctx, 0, ENTERPRISE_COLUMNS, &["uscc", "name", "county", "industry_code"]);
    // Without readable enterprises, every line and measure would only add "not in enterprises.csv".
    let enterprises_readable = enterprise_table.is_some();
    if let Some(table) = enterprise_table {
        let mut rec = csv::StringRecord::new();
        let mut reader = table.reader(&mut ctx);
        loop {
            match reader.read_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    ctx.csv_error(0, &e);
                    break;
                }
            }
            tick(1);
            let Some(row) = table.row(&mut ctx, &rec) else { continue };
            let cells = EntCells {
                at: row.at(0),
                uscc: row.cell(E_USCC),
                uscc_override: row.get(E_OVERRIDE),
                permit_no: row.get(E_PERMIT),
                name: row.cell(E_NAME),
                county: row.cell(E_COUNTY),
                industry_code: row.cell(E_INDUSTRY),
                key_industry: row.get(E_KEY),
                grade: row.get(E_GRADE),
                grade_since: row.get(E_SINCE),
                grade_reason: row.get(E_REASON),
                exemption: row.get(E_EXEMPTION),
                exemption_load: row.get(E_EXEMPTION_LOAD),
                baseline: Species::ALL.map(|p| row.get(E_SPECIES + p.index())),
                contacts: vec![ContactCells {
                    at: row.at(0),
                    role: row.get(E_ROLE),
                    name: row.cell(E_CONTACT),
                    email: row.get(E_EMAIL),
                    phone: row.get(E_PHONE),
                }]
                .into_iter()
                .filter(|c| {
                    [c.role, c.name, c.email, c.phone]
                        .iter()
                        .any(|x| x.is_some_and(|x| !x.text.is_empty()))
                })
                .collect(),
                history: Vec::new(),
            };
            list.add(&mut ctx, &cells);
        }
    }

    // Lines and measures in one pass; a measure whose line comes later in the file waits for it.
    if m_text.is_some()
        && enterprises_readable
        && let Some(table) = CsvTable::open(&mut ctx, 1, MEASURE_COLUMNS, &["uscc", "record"])
    {
        let mut rec = csv::StringRecord::new();
        let mut reader = table.reader(&mut ctx);
        let mut waiting: Vec<(usize, csv::StringRecord)> = Vec::new();
        loop {
            match reader.read_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    ctx.csv_error(1, &e);
                    break;
                }
            }
            tick(1);
            let Some(row) = table.row(&mut ctx, &rec) else { continue };
            let Some(record) = row.get(M_RECORD) else {
                ctx.err(row.at(M_RECORD), "record is empty (line or measure)");
                continue;
            };
            let kind = match record.text {
                "line" => Record::Line,
                "measure" => Record::Measure,
                other => {
                    ctx.err(record.at, format!("record must be line or measure, got \"{other}\""));
                    continue;
                }
            };
            let Some(idx) = list.owner(&mut ctx, row.cell(M_USCC), row.at(M_USCC)) else {
                continue;
            };
            let unused = if kind == Record::Line { MEASURE_ONLY } else { LINE_ONLY };
            for col in unused {
                if let Some(c) = row.get(col) {
                    ctx.err(
                        c.at,
                        format!("column {} must be empty in a {} row", MEASURE_COLUMNS[col], record.text),
                    );
                }
            }
            if kind == Record::Line {
                let cells = LineCells {
                    at: row.at(0),
                    id: row.cell(M_LINE),
                    name: row.cell(M_NAME),
                    capacity: row.cell(M_CAPACITY),
                    unit: row.cell(M_UNIT),
                    eia: row.get(M_EIA),
                    permit: row.get(M_PERMIT),
                    last_year: row.get(M_LAST_YEAR),
                    contact: Some(ContactCells {
                        at: row.at(0),
                        role: None,
                        name: row.cell(M_CONTACT),
                        email: row.get(M_EMAIL),
                        phone: row.get(M_PHONE),
                    })
                    .filter(|c| [c.name, c.email, c.phone].iter().any(|x| x.is_some_and(|x| !x.text.is_empty()))),
                };
                list.add_line(&mut ctx, idx, &cells);
            } else if row.get(M_LINE).is_some_and(|l| list.lacks_line(idx, l.text)) {
                waiting.push((idx, rec.clone()));
            } else {
                list.add_measure(&mut ctx, idx, &measure_cells(&row));
            }
        }
        for (idx, rec) in &waiting {
            if let Some(row) = table.row_quiet(rec) {
                list.add_measure(&mut ctx, *idx, &measure_cells(&row));
            }
        }
    }
    progress(total, total);
    list.finish(ctx)
}

/// Imports a YAML list (`enterprises: [...]`, see the [module docs](super)).
pub fn import_yaml(
    file: &str,
    text: &str,
    opts: &ImportOptions<'_>,
    progress: Progress<'_>,
) -> Result<Vec<Enterprise>, Vec<RegistryError>> {
    import_yaml_packed(file, text, opts, progress)?.into_enterprises()
}

/// [`import_yaml`], the enterprises held packed.
fn import_yaml_packed(file: &str, text: &str, opts: &ImportOptions<'_>, progress: Progress<'_>) -> Result<PackedList, Vec<RegistryError>> {
    let raw: RawList = serde_saphyr::from_str(text).map_err(|e| vec![yaml_error(file, &e)])?;
    let mut ctx = Ctx {
        files: vec![(file, Src::Text(text))],
        errors: Vec::new(),
        opts: Some(*opts),
    };
    let total = raw.enterprises.len();
    let mut list = Builder::default();
    for (n, e) in raw.enterprises.iter().enumerate() {
        let at = yat(&e.referenced);
        let r = &e.value;
        let base = r.baseline.as_ref();
        let cells = EntCells {
            at,
            uscc: yr(&r.uscc),
            uscc_override: r.uscc_override.as_ref().and_then(y),
            permit_no: r.permit_no.as_ref().and_then(y),
            name: yr(&r.name),
            county: yr(&r.county),
            industry_code: yr(&r.industry_code),
            key_industry: r.key_industry.as_ref().and_then(y),
            grade: r.grade.as_ref().and_then(y),
            grade_since: r.grade_since.as_ref().and_then(y),
            grade_reason: r.grade_reason.as_ref().and_then(y),
            exemption: r.exemption.as_ref().and_then(|x| y(&x.kind)),
            exemption_load: r.exemption.as_ref().and_then(|x| y(&x.max_load_percent)),
            baseline: Species::ALL.map(|p| base.and_then(|b| b.get(p)).and_then(Option::as_ref).and_then(y)),
            contacts: r
                .contacts
                .iter()
                .map(|c| ContactCells {
                    at: yat(&c.referenced),
                    role: c.value.role.as_ref().and_then(y),
                    name: yr(&c.value.name),
                    email: c.value.email.as_ref().and_then(y),
                    phone: y(&c.value.phone),
                })
                .collect(),
            history: r
                .grade_history
                .iter()
                .map(|g| GradeCells {
                    at: yat(&g.referenced),
                    grade: yr(&g.value.grade),
                    since: g.value.since.as_ref().and_then(y),
                    reason: g.value.reason.as_ref().and_then(y),
                })
                .collect(),
        };
        let Some(idx) = list.add(&mut ctx, &cells) else { continue };
        for l in &r.lines {
            let v = &l.value;
            let cells = LineCells {
                at: yat(&l.referenced),
                id: yr(&v.id),
                name: yr(&v.name),
                capacity: yr(&v.capacity),
                unit: yr(&v.unit),
                eia: v.eia_capacity.as_ref().and_then(y),
                permit: v.permit_capacity.as_ref().and_then(y),
                last_year: v.last_year_output.as_ref().and_then(y),
                contact: v.contact.as_ref().map(|c| ContactCells {
                    at: yat(&c.referenced),
                    role: None,
                    name: yr(&c.value.name),
                    email: c.value.email.as_ref().and_then(y),
                    phone: y(&c.value.phone),
                }),
            };
            list.add_line(&mut ctx, idx, &cells);
        }
        for m in &r.measures {
            let v = &m.value;
            let red = v.reduction.as_ref();
            let cells = MeasureCells {
                at: yat(&m.referenced),
                line: v.line.as_ref().and_then(y),
                level: yr(&v.level),
                kind: yr(&v.measure),
                value: v.value.as_ref().and_then(y),
                process: v.process.as_ref().and_then(y),
                reduction: Species::ALL.map(|p| red.and_then(|b| b.get(p)).and_then(Option::as_ref).and_then(y)),
                note: v.note.as_ref().and_then(y),
            };
            list.add_measure(&mut ctx, idx, &cells);
        }
        if n % 1024 == 0 {
            progress(n, total);
        }
    }
    progress(total, total);
    list.finish(ctx)
}

// ---------------------------------------------------------------------------------------------
// Where a value came from
// ---------------------------------------------------------------------------------------------

/// A place in an input file. CSV places keep the record's byte offset and field index; the column
/// is worked out only when an error is reported.
#[derive(Debug, Clone, Copy)]
enum At {
    Csv { file: usize, line: u64, byte: usize, field: usize },
    Yaml { file: usize, line: u64, column: u64 },
}

/// A non-empty, trimmed cell with its place.
#[derive(Debug, Clone, Copy)]
struct C<'t> {
    text: &'t str,
    at: At,
}

struct Ctx<'a> {
    files: Vec<(&'a str, Src<'a>)>,
    errors: Vec<RegistryError>,
    /// `None` for small tables, which use no defaults or regions.
    opts: Option<ImportOptions<'a>>,
}

impl Ctx<'_> {
    fn err(&mut self, at: At, message: impl Into<String>) {
        let e = match at {
            At::Csv { file, line, byte, field } => {
                let (name, text) = self.files[file];
                RegistryError::at(name, line, text.column(byte, field), message)
            }
            At::Yaml { file, line, column } => RegistryError::at(self.files[file].0, line, column, message),
        };
        self.errors.push(e);
    }

    /// `file:line` of a place, for "first at …".
    fn place(&self, at: At) -> String {
        match at {
            At::Csv { file, line, .. } | At::Yaml { file, line, .. } => format!("{}:{line}", self.files[file].0),
        }
    }

    fn csv_error(&mut self, file: usize, e: &csv::Error) {
        let line = e.position().map_or(0, |p| p.line());
        let name = self.files[file].0;
        self.errors
            .push(RegistryError::at(name, line, 1, format!("not readable as CSV: {e}")));
    }
}

/// The cells of a measure row.
fn measure_cells<'r>(row: &CsvRow<'r>) -> MeasureCells<'r> {
    MeasureCells {
        at: row.at(0),
        line: row.get(M_LINE),
        level: row.cell(M_LEVEL),
        kind: row.cell(M_MEASURE),
        value: row.get(M_VALUE),
        process: row.get(M_PROCESS),
        reduction: Species::ALL.map(|p| row.get(M_SPECIES + p.index())),
        note: row.get(M_NOTE),
    }
}

/// The 1-based character column where field `field` of the record at `byte` starts.
fn csv_column(text: &str, byte: usize, field: usize) -> u64 {
    let Some(rest) = text.get(byte..) else { return 1 };
    let mut in_quotes = false;
    let mut current = 0;
    for (col, ch) in rest.chars().enumerate() {
        if current == field {
            return col as u64 + 1;
        }
        match ch {
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => current += 1,
            '\n' if !in_quotes => break,
            _ => {}
        }
    }
    1
}

/// The line (1-based) and byte offset of a CSV file's header: its first line that is neither
/// blank nor a `#` comment.
fn header_place(text: &str) -> (u64, usize) {
    let mut byte = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if !line.trim().is_empty() && !line.starts_with('#') {
            return (i as u64 + 1, byte);
        }
        byte += line.len();
    }
    (1, 0)
}

fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

fn count_lines(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count()
}

// ---------------------------------------------------------------------------------------------
// CSV tables
// ---------------------------------------------------------------------------------------------

/// The enterprises file's columns: the species' baselines (`so2`, `nox`, `pm`, `vocs`) from
/// [`E_SPECIES`] on.
const ENTERPRISE_COLUMNS: &[&str] = &columns_around_species::<{ E_PHONE + 1 }>(
    &[
        "uscc",
        "uscc_override",
        "permit_no",
        "name",
        "county",
        "industry_code",
        "key_industry",
        "grade",
        "grade_since",
        "grade_reason",
        "exemption",
        "exemption_max_load_percent",
    ],
    &["contact_role", "contact_name", "contact_email", "contact_phone"],
);
const E_USCC: usize = 0;
const E_OVERRIDE: usize = 1;
const E_PERMIT: usize = 2;
const E_NAME: usize = 3;
const E_COUNTY: usize = 4;
const E_INDUSTRY: usize = 5;
const E_KEY: usize = 6;
const E_GRADE: usize = 7;
const E_SINCE: usize = 8;
const E_REASON: usize = 9;
const E_EXEMPTION: usize = 10;
const E_EXEMPTION_LOAD: usize = 11;
/// The first species column; the species follow in [`Species::ALL`] order.
const E_SPECIES: usize = 12;
const E_ROLE: usize = E_SPECIES + Species::COUNT;
const E_CONTACT: usize = E_ROLE + 1;
const E_EMAIL: usize = E_ROLE + 2;
const E_PHONE: usize = E_ROLE + 3;

/// The enterprises file's header, in the order the generator writes it.
pub const ENTERPRISES_HEADER: &[&str] = ENTERPRISE_COLUMNS;

/// The measures file's columns: the species' reductions (`so2`, `nox`, `pm`, `vocs`) from
/// [`M_SPECIES`] on.
const MEASURE_COLUMNS: &[&str] = &columns_around_species::<{ M_NOTE + 1 }>(
    &[
        "uscc",
        "record",
        "line",
        "name",
        "capacity",
        "unit",
        "eia_capacity",
        "permit_capacity",
        "last_year_output",
        "contact_name",
        "contact_phone",
        "contact_email",
        "level",
        "measure",
        "value",
        "process",
    ],
    &["note"],
);
const M_USCC: usize = 0;
const M_RECORD: usize = 1;
const M_LINE: usize = 2;
const M_NAME: usize = 3;
const M_CAPACITY: usize = 4;
const M_UNIT: usize = 5;
const M_EIA: usize = 6;
const M_PERMIT: usize = 7;
const M_LAST_YEAR: usize = 8;
const M_CONTACT: usize = 9;
const M_PHONE: usize = 10;
const M_EMAIL: usize = 11;
const M_LEVEL: usize = 12;
const M_MEASURE: usize = 13;
const M_VALUE: usize = 14;
const M_PROCESS: usize = 15;
/// The first species column; the species follow in [`Species::ALL`] order.
const M_SPECIES: usize = 16;
const M_NOTE: usize = M_SPECIES + Species::COUNT;
/// The columns of line rows only (`name` … `contact_email`) and of measure rows only (`level` … `note`).
const LINE_ONLY: RangeInclusive<usize> = M_NAME..=M_EMAIL;
const MEASURE_ONLY: RangeInclusive<usize> = M_LEVEL..=M_NOTE;

/// The measures file's header, in the order the generator writes it.
pub const MEASURES_HEADER: &[&str] = MEASURE_COLUMNS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    Line,
    Measure,
}

/// A CSV file whose header has been read: where each known column is.
struct CsvTable {
    file: usize,
    /// Known column → position in the record.
    positions: Vec<Option<usize>>,
    width: usize,
}

struct CsvRow<'r> {
    table: &'r CsvTable,
    rec: &'r csv::StringRecord,
    line: u64,
    byte: usize,
}

impl<'r> CsvRow<'r> {
    /// The cell of a known column, `None` when the column is absent or the cell empty.
    fn get(&self, col: usize) -> Option<C<'r>> {
        self.cell(col).filter(|c| !c.text.is_empty())
    }

    /// The cell of a known column, possibly empty (for required values: the error points at it).
    fn cell(&self, col: usize) -> Option<C<'r>> {
        let pos = self.table.positions[col]?;
        let text = self.rec.get(pos)?;
        Some(C {
            text,
            at: self.at_pos(pos),
        })
    }

    /// The place of a known column's cell (the row start when the column is absent).
    fn at(&self, col: usize) -> At {
        self.at_pos(self.table.positions[col].unwrap_or(0))
    }

    fn at_pos(&self, field: usize) -> At {
        At::Csv {
            file: self.table.file,
            line: self.line,
            byte: self.byte,
            field,
        }
    }
}

impl CsvTable {
    fn reader<'t>(&self, ctx: &mut Ctx<'t>) -> csv::Reader<Box<dyn std::io::Read + 't>> {
        Self::reader_of(ctx, self.file)
    }

    /// A reader of file `file` of the context (reading nothing when it cannot be opened: the error
    /// is the context's).
    fn reader_of<'t>(ctx: &mut Ctx<'t>, file: usize) -> csv::Reader<Box<dyn std::io::Read + 't>> {
        let input: Box<dyn std::io::Read + 't> = match ctx.files[file] {
            (_, Src::Text(t)) => Box::new(t.as_bytes()),
            (name, Src::File(f)) => match f.open() {
                Ok(f) => Box::new(std::io::BufReader::with_capacity(1 << 16, f)),
                Err(e) => {
                    ctx.errors.push(RegistryError::at(name, 0, 0, format!("cannot read: {e}")));
                    Box::new(std::io::empty())
                }
            },
        };
        csv::ReaderBuilder::new()
            .has_headers(true)
            .comment(Some(b'#'))
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(input)
    }

    /// Reads the header: known columns only, no repeats, the required ones present.
    fn open(ctx: &mut Ctx<'_>, file: usize, known: &[&str], required: &[&str]) -> Option<CsvTable> {
        let text = ctx.files[file].1;
        let mut probe = CsvTable {
            file,
            positions: vec![None; known.len()],
            width: 0,
        };
        let mut reader = probe.reader(ctx);
        let header = match reader.headers() {
            Ok(h) => h.clone(),
            Err(e) => {
                ctx.csv_error(file, &e);
                return None;
            }
        };
        let (line, byte) = text.header_place();
        let before = ctx.errors.len();
        for (i, name) in header.iter().enumerate() {
            let at = At::Csv {
                file,
                line,
                byte,
                field: i,
            };
            match known.iter().position(|k| *k == name) {
                None => ctx.err(at, format!("unknown column \"{name}\" (columns: {})", known.join(", "))),
                Some(k) if probe.positions[k].is_some() => ctx.err(at, format!("column {name} appears twice")),
                Some(k) => probe.positions[k] = Some(i),
            }
        }
        for r in required {
            if let Some(k) = known.iter().position(|x| x == r)
                && probe.positions[k].is_none()
            {
                ctx.err(
                    At::Csv {
                        file,
                        line,
                        byte,
                        field: 0,
                    },
                    format!("missing column {r}"),
                );
            }
        }
        probe.width = header.len();
        (ctx.errors.len() == before).then_some(probe)
    }

    /// A record as a row, or `None` (with an error) when its field count is off.
    fn row<'r>(&'r self, ctx: &mut Ctx<'_>, rec: &'r csv::StringRecord) -> Option<CsvRow<'r>> {
        let row = self.row_quiet(rec)?;
        if rec.len() != self.width {
            ctx.err(
                row.at_pos(0),
                format!("the row has {} fields, the header {}", rec.len(), self.width),
            );
            return None;
        }
        Some(row)
    }

    /// Same as [`CsvTable::row`], without reporting (second passes).
    fn row_quiet<'r>(&'r self, rec: &'r csv::StringRecord) -> Option<CsvRow<'r>> {
        let pos = rec.position()?;
        (rec.len() == self.width).then_some(CsvRow {
            table: self,
            rec,
            line: pos.line(),
            byte: pos.byte() as usize,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// YAML as written
// ---------------------------------------------------------------------------------------------

type S = Spanned<String>;

fn yat(loc: &serde_saphyr::Location) -> At {
    At::Yaml {
        file: 0,
        line: loc.line(),
        column: loc.column(),
    }
}

/// An optional YAML value: `None` when empty.
fn y(s: &S) -> Option<C<'_>> {
    yr(s).filter(|c| !c.text.is_empty())
}

/// A required YAML value, possibly empty (the error then points at it).
fn yr(s: &S) -> Option<C<'_>> {
    Some(C {
        text: s.value.trim(),
        at: yat(&s.referenced),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    enterprises: Vec<Spanned<RawEnterprise>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnterprise {
    uscc: S,
    uscc_override: Option<S>,
    permit_no: Option<S>,
    name: S,
    county: S,
    industry_code: S,
    key_industry: Option<S>,
    grade: Option<S>,
    grade_since: Option<S>,
    grade_reason: Option<S>,
    #[serde(default)]
    grade_history: Vec<Spanned<RawGrade>>,
    exemption: Option<RawExemption>,
    baseline: Option<RawPer>,
    #[serde(default)]
    contacts: Vec<Spanned<RawContact>>,
    #[serde(default)]
    lines: Vec<Spanned<RawLine>>,
    #[serde(default)]
    measures: Vec<Spanned<RawMeasure>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrade {
    grade: S,
    since: Option<S>,
    reason: Option<S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExemption {
    kind: S,
    max_load_percent: S,
}

/// `{ so2: 0.5, nox: 1.2 }`: a value per species, any left out, no other keys.
type RawPer = PartialPerSpecies<Option<S>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContact {
    role: Option<S>,
    name: S,
    email: Option<S>,
    phone: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLineContact {
    name: S,
    email: Option<S>,
    phone: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    id: S,
    name: S,
    capacity: S,
    unit: S,
    eia_capacity: Option<S>,
    permit_capacity: Option<S>,
    last_year_output: Option<S>,
    contact: Option<Spanned<RawLineContact>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeasure {
    level: S,
    line: Option<S>,
    measure: S,
    value: Option<S>,
    process: Option<S>,
    reduction: Option<RawPer>,
    note: Option<S>,
}

// ---------------------------------------------------------------------------------------------
// Cells of one record, whatever the format
// ---------------------------------------------------------------------------------------------

struct EntCells<'t> {
    at: At,
    uscc: Option<C<'t>>,
    uscc_override: Option<C<'t>>,
    permit_no: Option<C<'t>>,
    name: Option<C<'t>>,
    county: Option<C<'t>>,
    industry_code: Option<C<'t>>,
    key_industry: Option<C<'t>>,
    grade: Option<C<'t>>,
    grade_since: Option<C<'t>>,
    grade_reason: Option<C<'t>>,
    exemption: Option<C<'t>>,
    exemption_load: Option<C<'t>>,
    baseline: [Option<C<'t>>; Species::COUNT],
    contacts: Vec<ContactCells<'t>>,
    history: Vec<GradeCells<'t>>,
}

struct ContactCells<'t> {
    at: At,
    role: Option<C<'t>>,
    name: Option<C<'t>>,
    email: Option<C<'t>>,
    phone: Option<C<'t>>,
}

struct GradeCells<'t> {
    at: At,
    grade: Option<C<'t>>,
    since: Option<C<'t>>,
    reason: Option<C<'t>>,
}

struct LineCells<'t> {
    at: At,
    id: Option<C<'t>>,
    name: Option<C<'t>>,
    capacity: Option<C<'t>>,
    unit: Option<C<'t>>,
    eia: Option<C<'t>>,
    permit: Option<C<'t>>,
    last_year: Option<C<'t>>,
    contact: Option<ContactCells<'t>>,
}

struct MeasureCells<'t> {
    at: At,
    line: Option<C<'t>>,
    level: Option<C<'t>>,
    kind: Option<C<'t>>,
    value: Option<C<'t>>,
    process: Option<C<'t>>,
    reduction: [Option<C<'t>>; Species::COUNT],
    note: Option<C<'t>>,
}

// ---------------------------------------------------------------------------------------------
// Building the list: one function per rule
// ---------------------------------------------------------------------------------------------

/// The enterprises built so far. An enterprise with an error is not built, but its code is
/// remembered so that its lines and measures do not also report "unknown enterprise".
///
/// Enterprises are held packed ([`Packs`]) but the one the rows are at ([`Builder::enterprise`]):
/// a national list takes a fraction of the room its records would.
#[derive(Default)]
struct Builder {
    packs: Packs,
    /// Per built enterprise, in file order: where it is packed (not up to date for the open one).
    slots: Vec<Slot>,
    /// The enterprise the rows are at, unpacked: (index, record).
    open: Option<(usize, Enterprise)>,
    /// The first failure of the packed list's temporary file.
    io_error: Option<std::io::Error>,
    first_at: Vec<At>,
    by_uscc: HashMap<Uscc, usize>,
    broken: HashSet<String>,
    /// Per enterprise: where each line was defined.
    line_at: Vec<Vec<At>>,
    /// Measures waiting for their line shares: (enterprise, measure index).
    implied: Vec<(usize, usize)>,
    /// The last owner found: rows of one enterprise usually follow each other.
    last_owner: Option<([u8; 18], usize)>,
}

impl Builder {
    /// Validates an enterprise record and adds it; returns its index when it was built.
    fn add(&mut self, ctx: &mut Ctx<'_>, c: &EntCells<'_>) -> Option<usize> {
        let before = ctx.errors.len();
        let uscc_override = c.uscc_override.map_or(Some(false), |o| flag(ctx, o));
        let uscc = required(ctx, c.uscc, c.at, "uscc").and_then(|u| credit_code(ctx, u, uscc_override.unwrap_or(false)));
        if let Some(u) = uscc
            && let Some(&first) = self.by_uscc.get(&u)
        {
            let msg = format!(
                "duplicate unified social credit code {u} (first at {})",
                ctx.place(self.first_at[first])
            );
            ctx.err(c.uscc.map_or(c.at, |x| x.at), msg);
            return None;
        }
        let permit = c.permit_no.and_then(|p| permit_no(ctx, p, uscc, uscc_override.unwrap_or(false)));
        let name = required(ctx, c.name, c.at, "name").and_then(|n| plain_text(ctx, n, "name"));
        let county = required(ctx, c.county, c.at, "county").and_then(|x| county(ctx, x));
        let industry = required(ctx, c.industry_code, c.at, "industry_code").and_then(|x| industry(ctx, x, c.key_industry));
        let grade = grade_record(ctx, c.grade, c.grade_since, c.grade_reason);
        let history: Vec<GradeRecord> = c
            .history
            .iter()
            .filter_map(|h| required(ctx, h.grade, h.at, "grade").and_then(|g| grade_record(ctx, Some(g), h.since, h.reason)))
            .collect();
        let exemption = exemption(ctx, c.exemption, c.exemption_load);
        let baseline = baseline(ctx, &c.baseline);
        let contacts: Vec<Contact> = c.contacts.iter().filter_map(|x| contact(ctx, x, ENTERPRISE_ROLE, None)).collect();
        if ctx.errors.len() > before {
            if let Some(u) = c.uscc {
                self.broken.insert(u.text.to_ascii_uppercase());
            }
            return None;
        }
        let (Some(uscc), Some(name), Some(county), Some(industry), Some(grade), Some(exemption), Some(baseline), Some(uscc_override)) =
            (uscc, name, county, industry, grade, exemption, baseline, uscc_override)
        else {
            return None;
        };
        self.close();
        let idx = self.slots.len();
        self.by_uscc.insert(uscc, idx);
        self.first_at.push(c.uscc.map_or(c.at, |x| x.at));
        self.line_at.push(Vec::new());
        self.slots.push(Slot {
            place: Place::default(),
            uscc,
            county,
            notifiable: false,
        });
        self.open = Some((
            idx,
            Enterprise {
                uscc,
                uscc_override,
                permit,
                name,
                county,
                industry,
                grade,
                grade_history: history,
                exemption,
                baseline,
                lines: Vec::new(),
                contacts,
                measures: Vec::new(),
            },
        ));
        Some(idx)
    }

    /// The enterprise at `idx`, unpacked (the one unpacked before is packed again); `None` when the
    /// temporary file failed (the import then fails with that error).
    fn enterprise(&mut self, idx: usize) -> Option<&mut Enterprise> {
        if self.open.as_ref().is_none_or(|(i, _)| *i != idx) {
            self.close();
            match self.packs.get(self.slots[idx].place) {
                Ok(e) => self.open = Some((idx, e)),
                Err(e) => {
                    self.io_error.get_or_insert(e);
                    return None;
                }
            }
        }
        self.open.as_mut().map(|(_, e)| e)
    }

    /// Packs the open enterprise (its vectors then take only the room they need).
    fn close(&mut self) {
        let Some((idx, e)) = self.open.take() else { return };
        match self.packs.put(&e) {
            Ok(place) => {
                let slot = &mut self.slots[idx];
                slot.place = place;
                slot.notifiable = !e.notify_emails().is_empty();
            }
            Err(err) => {
                self.io_error.get_or_insert(err);
            }
        }
        if let Some(at) = self.line_at.get_mut(idx) {
            at.shrink_to_fit();
        }
    }

    /// The enterprise a lines/measures row belongs to: it must be in the enterprises file.
    fn owner(&mut self, ctx: &mut Ctx<'_>, uscc: Option<C<'_>>, at: At) -> Option<usize> {
        let u = required(ctx, uscc, at, "uscc")?;
        if let Some((code, idx)) = self.last_owner
            && code == u.text.as_bytes()
        {
            return Some(idx);
        }
        if let Some(idx) = Uscc::parse_with_override(u.text)
            .ok()
            .and_then(|code| self.by_uscc.get(&code))
            .copied()
        {
            if let Ok(bytes) = <[u8; 18]>::try_from(u.text.as_bytes()) {
                self.last_owner = Some((bytes, idx));
            }
            return Some(idx);
        }
        if !self.broken.contains(&u.text.to_ascii_uppercase()) {
            let file = ctx.files[0].0;
            let name = Path::new(file)
                .file_name()
                .map_or(file.to_string(), |n| n.to_string_lossy().into_owned());
            ctx.err(u.at, format!("{} is not in {name}", u.text));
        }
        None
    }

    /// Whether a built enterprise has no line with this id (yet).
    fn lacks_line(&mut self, idx: usize, line: &str) -> bool {
        self.enterprise(idx).is_some_and(|e| e.line(line).is_none())
    }

    /// A line: an id unique within the enterprise, a name, a positive capacity and a unit;
    /// optional §3 figures ≥ 0 and an optional 工序责任人.
    fn add_line(&mut self, ctx: &mut Ctx<'_>, idx: usize, c: &LineCells<'_>) {
        let before = ctx.errors.len();
        let id = required(ctx, c.id, c.at, "line");
        if let Some(id) = id
            && let Some(pos) = self.enterprise(idx).and_then(|e| e.lines.iter().position(|l| l.id == id.text))
        {
            let msg = format!(
                "duplicate line {} of {} (first at {})",
                id.text,
                self.slots[idx].uscc,
                ctx.place(self.line_at[idx][pos])
            );
            ctx.err(id.at, msg);
        }
        let name = required(ctx, c.name, c.at, "name");
        let capacity = required(ctx, c.capacity, c.at, "capacity").and_then(|x| positive(ctx, x, "capacity"));
        let unit = required(ctx, c.unit, c.at, "unit");
        let figures = [c.eia, c.permit, c.last_year].map(|x| x.and_then(|x| positive(ctx, x, "capacity figure")));
        let line_id = id.map(|i| i.text.to_string());
        let person = c.contact.as_ref().and_then(|x| contact(ctx, x, LINE_ROLE, line_id.clone()));
        if ctx.errors.len() > before {
            return;
        }
        let (Some(id), Some(name), Some(capacity), Some(unit), Some(e)) = (id, name, capacity, unit, self.enterprise(idx)) else {
            return;
        };
        e.lines.push(Line {
            id: id.text.to_string(),
            name: name.text.to_string(),
            capacity,
            unit: unit.text.to_string(),
            limit_baseline: LimitBaseline {
                eia: figures[0],
                permit: figures[1],
                last_year: figures[2],
            },
        });
        e.contacts.extend(person);
        self.line_at[idx].push(id.at);
    }

    /// A measure: a known level, a line the enterprise has (or none), a kind with a fitting value
    /// (a limit at most 100 %), reductions in 0..=1.
    fn add_measure(&mut self, ctx: &mut Ctx<'_>, idx: usize, c: &MeasureCells<'_>) {
        let Some(e) = self.enterprise(idx) else { return };
        let before = ctx.errors.len();
        let level = required(ctx, c.level, c.at, "level").and_then(|l| level(ctx, l));
        let line = c.line.and_then(|l| line_of(ctx, l, e));
        let kind = required(ctx, c.kind, c.at, "measure").and_then(|k| match MeasureKind::parse(k.text, c.value.map(|v| v.text)) {
            Ok(kind) => Some(kind),
            Err(msg) => {
                let at = c.value.filter(|_| MeasureKind::IDS.contains(&k.text)).map_or(k.at, |v| v.at);
                ctx.err(at, msg);
                None
            }
        });
        let given = c.reduction.iter().any(Option::is_some);
        let mut reduction = PerSpecies::default();
        for (p, cell) in Species::ALL.into_iter().zip(c.reduction) {
            if let Some(v) = cell.and_then(|x| fraction(ctx, x, p)) {
                reduction[p] = v;
            }
        }
        if ctx.errors.len() > before {
            return;
        }
        let (Some(level), Some(kind)) = (level, kind) else {
            return;
        };
        let implied = !given;
        if implied {
            reduction = PerSpecies::splat(kind.implied_fraction().unwrap_or(0.0));
        }
        let m = e.measures.len();
        e.measures.push(Measure {
            level: level.into(),
            line: line.map(str::to_string),
            kind,
            process: c.process.map(|p| p.text.to_string()),
            reduction,
            note: c.note.map_or(String::new(), |n| n.text.to_string()),
        });
        if implied {
            self.implied.push((idx, m));
        }
    }

    /// Final checks, then the enterprises (packed) or every error.
    fn finish(mut self, mut ctx: Ctx<'_>) -> Result<PackedList, Vec<RegistryError>> {
        // Implied reductions of line measures count only the line's share of the enterprise.
        for (idx, m) in std::mem::take(&mut self.implied) {
            let Some(e) = self.enterprise(idx) else { continue };
            if let Some(line) = e.measures[m].line.clone() {
                let share = line_share(e, &line);
                e.measures[m].reduction = e.measures[m].reduction.map(|x| x * share);
            }
        }
        self.close();
        if let Some(e) = self.io_error.take() {
            ctx.errors.push(packs_error(&e));
        }
        for (idx, slot) in self.slots.iter().enumerate() {
            if !slot.notifiable {
                notifiable(&mut ctx, &slot.uscc, self.first_at[idx]);
            }
        }
        if ctx.errors.is_empty() {
            Ok(PackedList {
                packs: self.packs,
                slots: self.slots,
            })
        } else {
            Err(ctx.errors)
        }
    }
}

/// A line's share of the enterprise: its capacity over the total when all lines share a unit,
/// else one over the number of lines.
fn line_share(e: &Enterprise, line: &str) -> f64 {
    let Some(l) = e.line(line) else { return 1.0 };
    let same_unit = e.lines.iter().all(|x| x.unit == l.unit);
    let total: f64 = e.lines.iter().map(|x| x.capacity).sum();
    if same_unit && total > 0.0 {
        l.capacity / total
    } else {
        1.0 / e.lines.len() as f64
    }
}

/// A required value must be present and not empty.
fn required<'t>(ctx: &mut Ctx<'_>, cell: Option<C<'t>>, row: At, what: &str) -> Option<C<'t>> {
    match cell {
        Some(c) if !c.text.is_empty() => Some(c),
        Some(c) => {
            ctx.err(c.at, format!("{what} is empty"));
            None
        }
        None => {
            ctx.err(row, format!("{what} is empty"));
            None
        }
    }
}

/// A name as shown on notices and the 公示牌: one line, no control characters (a newline inside a
/// quoted CSV cell would otherwise run into the next record's place in every listing).
fn plain_text(ctx: &mut Ctx<'_>, c: C<'_>, what: &str) -> Option<String> {
    match c.text.chars().find(|ch| ch.is_control()) {
        Some(ch) => {
            ctx.err(
                c.at,
                format!(
                    "{what} contains a control character (U+{:04X}); write it on one line",
                    u32::from(ch)
                ),
            );
            None
        }
        None => Some(c.text.to_string()),
    }
}

/// A yes/no flag: `1`/`0`, `true`/`false`, `yes`/`no`.
fn flag(ctx: &mut Ctx<'_>, c: C<'_>) -> Option<bool> {
    match c.text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Some(true),
        "0" | "false" | "no" => Some(false),
        _ => {
            ctx.err(c.at, format!("uscc_override must be 1 or 0, got \"{}\"", c.text));
            None
        }
    }
}

/// The credit code passes GB 32100, checksum included unless overridden.
fn credit_code(ctx: &mut Ctx<'_>, c: C<'_>, overridden: bool) -> Option<Uscc> {
    let parsed = if overridden {
        Uscc::parse_with_override(c.text)
    } else {
        Uscc::parse(c.text)
    };
    parsed.map_err(|e| ctx.err(c.at, e.to_string())).ok()
}

/// The permit number is HJ 608-shaped and belongs to this enterprise.
fn permit_no(ctx: &mut Ctx<'_>, c: C<'_>, uscc: Option<Uscc>, overridden: bool) -> Option<PermitNo> {
    let parsed = if overridden {
        PermitNo::parse_with_override(c.text)
    } else {
        PermitNo::parse(c.text)
    };
    match parsed {
        Err(e) => {
            ctx.err(c.at, e.to_string());
            None
        }
        Ok(p) => match uscc {
            Some(u) if p.uscc() != u => {
                ctx.err(c.at, format!("permit number {p} belongs to {}, not to {u}", p.uscc()));
                None
            }
            _ => Some(p),
        },
    }
}

/// The county is a county-level code, in the region table when there is one (retired codes are
/// resolved to their successors).
fn county(ctx: &mut Ctx<'_>, c: C<'_>) -> Option<RegionCode> {
    let code = match RegionCode::parse(c.text) {
        Ok(code) => code,
        Err(e) => {
            ctx.err(c.at, e.to_string());
            return None;
        }
    };
    let code = match ctx.opts.and_then(|o| o.regions) {
        None => code,
        Some(regions) => match regions.resolve(code) {
            Some(current) => current,
            None => {
                ctx.err(c.at, format!("unknown county {code} (not in the region table)"));
                return None;
            }
        },
    };
    if code.tier() != Tier::County {
        ctx.err(c.at, format!("county {code} is a {}, not a county-level region", code.tier()));
        return None;
    }
    Some(code)
}

/// A 4-digit industry class and, if given, a key-industry id known to the defaults.
fn industry(ctx: &mut Ctx<'_>, code: C<'_>, key: Option<C<'_>>) -> Option<Industry> {
    let parsed = IndustryCode::parse(code.text).map_err(|m| ctx.err(code.at, m)).ok();
    let defaults = ctx.opts.map(|o| o.defaults)?;
    let key = match key {
        None => None,
        Some(k) if defaults.industry(k.text).is_some() => Some(k.text.to_string()),
        Some(k) => {
            let known: Vec<&str> = defaults.industries.iter().map(|i| i.id.as_str()).collect();
            ctx.err(k.at, format!("unknown key industry \"{}\" (known: {})", k.text, known.join(", ")));
            return None;
        }
    };
    Some(Industry { code: parsed?, key })
}

/// A grade in the set (empty = ungraded), an effective date `YYYY-MM-DD`, a reason.
fn grade_record(ctx: &mut Ctx<'_>, grade: Option<C<'_>>, since: Option<C<'_>>, reason: Option<C<'_>>) -> Option<GradeRecord> {
    let g = match grade {
        None => Some(Grade::Ungraded),
        Some(c) => Grade::parse(c.text).map_err(|e| ctx.err(c.at, e.to_string())).ok(),
    };
    let since = match since {
        None => Some(None),
        Some(c) => match NaiveDate::parse_from_str(c.text, "%Y-%m-%d") {
            Ok(d) => Some(Some(d)),
            Err(_) => {
                ctx.err(c.at, format!("date \"{}\" must be YYYY-MM-DD", c.text));
                None
            }
        },
    };
    Some(GradeRecord {
        grade: g?,
        since: since?,
        reason: reason.map_or(String::new(), |r| r.text.to_string()),
    })
}

/// A 保障类 exemption has a known kind and a capped load in (0, 100]; both or neither.
fn exemption(ctx: &mut Ctx<'_>, kind: Option<C<'_>>, load: Option<C<'_>>) -> Option<Option<Exemption>> {
    match (kind, load) {
        (None, None) => Some(None),
        (Some(k), None) => {
            ctx.err(k.at, format!("exemption {} needs exemption_max_load_percent", k.text));
            None
        }
        (None, Some(l)) => {
            ctx.err(l.at, "exemption_max_load_percent is given without an exemption kind");
            None
        }
        (Some(k), Some(l)) => {
            let kind = ExemptionKind::parse(k.text).map_err(|m| ctx.err(k.at, m)).ok();
            let load = number(ctx, l, "exemption_max_load_percent").and_then(|x| {
                if x > 0.0 && x <= 100.0 {
                    Some(x)
                } else {
                    ctx.err(
                        l.at,
                        format!("exemption_max_load_percent {} must be above 0 and at most 100", l.text),
                    );
                    None
                }
            });
            Some(Some(Exemption {
                kind: kind?,
                max_load_percent: load?,
            }))
        }
    }
}

/// Baseline emissions are numbers ≥ 0 (t/day); empty is 0.
fn baseline(ctx: &mut Ctx<'_>, cells: &[Option<C<'_>>; Species::COUNT]) -> Option<PerSpecies> {
    let mut out = PerSpecies::default();
    let mut ok = true;
    for (p, cell) in Species::ALL.into_iter().zip(cells) {
        let Some(c) = cell else { continue };
        match number(ctx, *c, p.id()) {
            Some(x) if x >= 0.0 => out[p] = x,
            Some(_) => {
                ctx.err(c.at, format!("{} baseline {} must be at least 0 (t/day)", p.id(), c.text));
                ok = false;
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// A contact has a name and a phone; its email, if any, is an address.
fn contact(ctx: &mut Ctx<'_>, c: &ContactCells<'_>, default_role: &str, line: Option<String>) -> Option<Contact> {
    let name = required(ctx, c.name, c.at, "contact_name");
    let phone = match c.phone {
        None => {
            ctx.err(
                name.map_or(c.at, |n| n.at),
                format!("contact {} has no phone", name.map_or("", |n| n.text)),
            );
            None
        }
        Some(p) => Phone::parse(p.text).map_err(|m| ctx.err(p.at, m)).ok(),
    };
    let email = match c.email {
        None => Some(None),
        Some(e) => EmailAddress::parse(e.text).map(Some).map_err(|m| ctx.err(e.at, m)).ok(),
    };
    Some(Contact {
        role: c.role.map_or(default_role.to_string(), |r| r.text.to_string()),
        name: name?.text.to_string(),
        email: email?,
        phone: phone?,
        line,
    })
}

/// Every enterprise can be notified: at least one contact has an email (the caller knows whether
/// one has).
fn notifiable(ctx: &mut Ctx<'_>, uscc: &Uscc, at: At) {
    ctx.err(at, format!("{uscc} has no contact with an email, so it could not be notified"));
}

/// A level id of the defaults.
fn level(ctx: &mut Ctx<'_>, c: C<'_>) -> Option<String> {
    let defaults = ctx.opts.map(|o| o.defaults)?;
    if defaults.level(c.text).is_some() {
        Some(c.text.to_string())
    } else {
        let msg = format!("unknown level \"{}\" (levels: {})", c.text, defaults.level_ids().join(", "));
        ctx.err(c.at, msg);
        None
    }
}

/// A measure's line is one the enterprise has.
fn line_of<'t>(ctx: &mut Ctx<'_>, c: C<'t>, e: &Enterprise) -> Option<&'t str> {
    if e.line(c.text).is_some() {
        return Some(c.text);
    }
    let lines: Vec<&str> = e.lines.iter().map(|l| l.id.as_str()).collect();
    let known = if lines.is_empty() {
        "it has no lines".to_string()
    } else {
        format!("its lines: {}", lines.join(", "))
    };
    ctx.err(
        c.at,
        format!("measure for line {}, which {} does not have ({known})", c.text, e.uscc),
    );
    None
}

/// A reduction is a fraction of the baseline in 0..=1.
fn fraction(ctx: &mut Ctx<'_>, c: C<'_>, p: Species) -> Option<f64> {
    let x = number(ctx, c, p.id())?;
    if (0.0..=1.0).contains(&x) {
        Some(x)
    } else {
        ctx.err(
            c.at,
            format!("{} reduction {} must be a fraction from 0 to 1 of the baseline", p.id(), c.text),
        );
        None
    }
}

fn positive(ctx: &mut Ctx<'_>, c: C<'_>, what: &str) -> Option<f64> {
    let x = number(ctx, c, what)?;
    if x > 0.0 {
        Some(x)
    } else {
        ctx.err(c.at, format!("{what} {} must be above 0", c.text));
        None
    }
}

fn number(ctx: &mut Ctx<'_>, c: C<'_>, what: &str) -> Option<f64> {
    match c.text.parse::<f64>() {
        Ok(x) if x.is_finite() => Some(x),
        _ => {
            ctx.err(c.at, format!("{what} \"{}\" is not a number", c.text));
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Small tables (permit register, whole-society emissions)
// ---------------------------------------------------------------------------------------------

/// A row of a small CSV table: its line and its cells (trimmed, `None` when the column is absent),
/// each with its 1-based column.
pub(crate) struct TableRow {
    pub line: u64,
    pub cells: Vec<Option<(String, u64)>>,
}

impl TableRow {
    /// A non-empty cell.
    pub fn get(&self, col: usize) -> Option<&str> {
        self.cells[col].as_ref().map(|(t, _)| t.as_str()).filter(|t| !t.is_empty())
    }

    /// An error at a cell (column 1 when the column is absent).
    pub fn err(&self, file: &str, col: usize, message: impl Into<String>) -> RegistryError {
        RegistryError::at(file, self.line, self.cells[col].as_ref().map_or(1, |(_, c)| *c), message)
    }
}

/// Reads a small CSV table with the same rules as the list files (comments, header with known
/// columns in any order, required columns, field counts).
pub(crate) fn read_table(file: &str, text: &str, known: &[&str], required: &[&str]) -> Result<Vec<TableRow>, Vec<RegistryError>> {
    let text = strip_bom(text);
    let mut ctx = Ctx {
        files: vec![(file, Src::Text(text))],
        errors: Vec::new(),
        opts: None,
    };
    let Some(table) = CsvTable::open(&mut ctx, 0, known, required) else {
        return Err(ctx.errors);
    };
    let mut reader = table.reader(&mut ctx);
    let mut rec = csv::StringRecord::new();
    let mut rows = Vec::new();
    loop {
        match reader.read_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                ctx.csv_error(0, &e);
                break;
            }
        }
        let Some(row) = table.row(&mut ctx, &rec) else { continue };
        let cells = (0..known.len())
            .map(|k| {
                row.cell(k).map(|c| {
                    let col = match c.at {
                        At::Csv { byte, field, .. } => csv_column(text, byte, field),
                        At::Yaml { column, .. } => column,
                    };
                    (c.text.to_string(), col)
                })
            })
            .collect();
        rows.push(TableRow { line: row.line, cells });
    }
    if ctx.errors.is_empty() { Ok(rows) } else { Err(ctx.errors) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::shanxi_defaults;

    fn opts() -> ImportOptions<'static> {
        ImportOptions {
            defaults: shanxi_defaults(),
            regions: Some(Regions::shanxi()),
        }
    }

    const E_HEAD: &str = "uscc,name,county,industry_code,key_industry,grade,so2,nox,pm,vocs,contact_name,contact_email,contact_phone\n";

    #[test]
    fn the_column_headers_and_positions_are_the_same_as_ever() {
        assert_eq!(
            ENTERPRISE_COLUMNS.join(","),
            "uscc,uscc_override,permit_no,name,county,industry_code,key_industry,grade,grade_since,grade_reason,exemption,\
             exemption_max_load_percent,so2,nox,pm,vocs,contact_role,contact_name,contact_email,contact_phone"
        );
        assert_eq!(
            MEASURE_COLUMNS.join(","),
            "uscc,record,line,name,capacity,unit,eia_capacity,permit_capacity,last_year_output,contact_name,contact_phone,\
             contact_email,level,measure,value,process,so2,nox,pm,vocs,note"
        );
        let named = |cols: &[&str], pos: &[usize]| pos.iter().map(|i| cols[*i].to_string()).collect::<Vec<_>>().join(",");
        assert_eq!(
            named(
                ENTERPRISE_COLUMNS,
                &[E_EXEMPTION_LOAD, E_SPECIES, E_ROLE, E_CONTACT, E_EMAIL, E_PHONE]
            ),
            "exemption_max_load_percent,so2,contact_role,contact_name,contact_email,contact_phone"
        );
        assert_eq!(
            named(MEASURE_COLUMNS, &[M_EMAIL, M_LEVEL, M_PROCESS, M_SPECIES, M_NOTE]),
            "contact_email,level,process,so2,note"
        );
        assert_eq!((LINE_ONLY.count(), MEASURE_ONLY.count()), (9, 9));
    }

    fn ent(uscc: &str, grade: &str) -> String {
        format!(
            "{uscc},孝义市鹏飞焦化有限公司,141181,2521,coking,{grade},0.5,1.2,0.3,0.4,王建国,wangjianguo@pengfei.example.cn,13812345678\n"
        )
    }

    fn run(e: &str, m: Option<&str>) -> Result<Vec<Enterprise>, Vec<String>> {
        import_csv(("e.csv", e), m.map(|m| ("m.csv", m)), &opts(), &mut |_, _| {})
            .map_err(|es| es.iter().map(ToString::to_string).collect())
    }

    fn code(org: &str) -> String {
        Uscc::from_parts("91", "141181", org).unwrap().to_string()
    }

    #[test]
    fn a_small_csv_list_imports_with_lines_and_measures() {
        let u = code("MA0K3T7W");
        let e = format!("# comment\n{E_HEAD}{}", ent(&u, "B"));
        let m = format!(
            "uscc,record,line,name,capacity,unit,level,measure,value,so2,nox,pm,vocs\n\
             {u},measure,L2,,,,orange,stop,,,,,\n\
             {u},line,L1,1#焦炉,3000,t/d,,,,,,,\n\
             {u},line,L2,2#焦炉,1000,t/d,,,,,,,\n\
             {u},measure,L1,,,,yellow,extend_coking_hours,28,0.2,0.2,0.2,0.2\n"
        );
        let list = run(&e, Some(&m)).unwrap();
        let ent = &list[0];
        assert_eq!((ent.lines.len(), ent.measures.len()), (2, 2));
        // The implied reduction of stopping L2 is its share of capacity: 1000 / 4000.
        let stop = ent.measures.iter().find(|m| m.level == "orange").unwrap();
        assert_eq!(stop.reduction, PerSpecies::splat(0.25));
        assert_eq!(ent.responsible().unwrap().name, "王建国");
    }

    #[test]
    fn csv_errors_point_at_line_and_column_and_all_are_reported() {
        let good = code("MA0K3T7W");
        let e = format!("{E_HEAD}{}{}", ent("91140000110014814X", "B"), ent(&good, "E"));
        let errors = run(&e, None).unwrap_err();
        assert_eq!(
            errors,
            [
                "e.csv:2:1: unified social credit code 91140000110014814X fails the GB 32100 check: the check character should be P, not X (set uscc_override for a legal pilot code)",
                "e.csv:3:51: unknown grade \"E\" (expected one of A+, A, B, B-, C, D, 引领性, 非引领性, 未分级)",
            ]
        );
    }

    #[test]
    fn quoted_cells_keep_their_columns() {
        let u = code("MA0K3T7W");
        let e =
            format!("{E_HEAD}{u},\"鹏飞焦化,有限公司\",149999,2521,coking,B,0.5,1.2,0.3,0.4,王建国,wang@pengfei.example.cn,13812345678\n");
        assert_eq!(
            run(&e, None).unwrap_err(),
            ["e.csv:2:32: unknown county 149999 (not in the region table)"]
        );
    }

    #[test]
    fn a_version_carries_grade_history_and_the_diff_lists_every_change() {
        let a = code("MA0K3T7W");
        let b = code("MA0K3T8X");
        let c = code("16356268");
        let t0 = DateTime::parse_from_rfc3339("2025-10-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let v1 = ListVersion::new(run(&format!("{E_HEAD}{}{}", ent(&a, "C"), ent(&b, "B")), None).unwrap(), None, t0);
        let e2 = format!(
            "uscc,name,county,industry_code,key_industry,grade,grade_since,grade_reason,so2,nox,pm,vocs,contact_name,contact_email,contact_phone\n\
            {a},孝义市鹏飞焦化有限公司,141181,2521,coking,B,2026-01-15,创A升B,0.5,1.2,0.3,0.4,王建国,wangjianguo@pengfei.example.cn,13812345678\n\
            {c},孝义市新建焦化有限公司,141181,2521,coking,C,,,0.5,1.2,0.3,0.4,李娜,lina@xinjian.example.cn,13912345678\n"
        );
        let v2 = ListVersion::new(run(&e2, None).unwrap(), Some(&v1), t0);
        assert_eq!((v1.version, v2.version), (1, 2));
        assert_ne!(v1.digest, v2.digest);
        let d = diff(&v1, &v2);
        let mut added = vec![Uscc::parse(&c).unwrap()];
        added.sort();
        assert_eq!(d.added, added);
        assert_eq!(d.removed, [Uscc::parse(&b).unwrap()]);
        assert_eq!(d.changed.len(), 1);
        assert_eq!(d.changed[0].fields, ["grade"]);
        assert_eq!(d.grade_changes.len(), 1);
        let g = &d.grade_changes[0];
        assert_eq!(
            (g.from, g.to, g.effective, g.reason.as_str()),
            (Grade::C, Grade::B, NaiveDate::from_ymd_opt(2026, 1, 15), "创A升B")
        );
        let moved = v2.get(&Uscc::parse(&a).unwrap()).unwrap();
        assert_eq!(moved.grade_history.iter().map(|g| g.grade).collect::<Vec<_>>(), [Grade::C]);
        assert!(diff(&v2, &v2).is_empty());
    }

    #[test]
    fn yaml_lists_import_with_the_same_rules() {
        let u = code("MA0K3T7W");
        let y = format!(
            "enterprises:\n  - uscc: {u}\n    name: 孝义市鹏飞焦化有限公司\n    county: \"141181\"\n    industry_code: \"2521\"\n    key_industry: coking\n    grade: B\n    grade_history:\n      - {{ grade: C, since: 2023-10-01, reason: 年度评级 }}\n    baseline: {{ so2: 0.5, nox: 1.2 }}\n    contacts:\n      - {{ name: 王建国, email: wang@pengfei.example.cn, phone: \"13812345678\" }}\n    lines:\n      - {{ id: L1, name: 1#焦炉, capacity: 3000, unit: t/d, contact: {{ name: 李强, phone: \"13712345678\" }} }}\n    measures:\n      - {{ level: red, line: L1, measure: extend_coking_hours, value: 48 }}\n      - {{ level: red, line: L9, measure: stop }}\n"
        );
        let errors = import_yaml("l.yaml", &y, &opts(), &mut |_, _| {}).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [format!(
                "l.yaml:17:29: measure for line L9, which {u} does not have (its lines: L1)"
            )]
        );
        let ok = y.replace("      - { level: red, line: L9, measure: stop }\n", "");
        let list = import_yaml("l.yaml", &ok, &opts(), &mut |_, _| {}).unwrap();
        assert_eq!(list[0].grade_history[0].grade, Grade::C);
        assert_eq!(list[0].contacts.len(), 2);
        assert_eq!(list[0].measures[0].reduction, PerSpecies::default());
    }

    #[test]
    fn files_read_as_they_are_parsed_give_what_their_texts_give() {
        let dir = tempfile::tempdir().unwrap();
        let u = code("MA0K3T7W");
        let good = format!("\u{feff}# comment\n{E_HEAD}{}", ent(&u, "B"));
        let bad = format!("# comment\n{E_HEAD}{}{}", ent(&u, "B"), ent(&code("MA0K3T8X"), "E"));
        let m = format!("uscc,record,line,name,capacity,unit\n{u},line,L1,1#焦炉,3000,t/d\n");
        for (i, e) in [good, bad].iter().enumerate() {
            let (ep, mp) = (dir.path().join(format!("e{i}.csv")), dir.path().join(format!("m{i}.csv")));
            std::fs::write(&ep, e).unwrap();
            std::fs::write(&mp, &m).unwrap();
            let (en, mn) = (ep.display().to_string(), mp.display().to_string());
            let from_files = read_paths(&[ep, mp], &opts(), &mut |_, _| {});
            let from_texts = import_csv((&en, e), Some((&mn, &m)), &opts(), &mut |_, _| {});
            let show =
                |r: Result<Vec<Enterprise>, Vec<RegistryError>>| r.map_err(|es| es.iter().map(ToString::to_string).collect::<Vec<_>>());
            assert_eq!(show(from_files), show(from_texts));
        }
        let latin1 = dir.path().join("latin1.csv");
        std::fs::write(&latin1, b"uscc,name\n91,caf\xe9\n").unwrap();
        let errors = read_paths(std::slice::from_ref(&latin1), &opts(), &mut |_, _| {}).unwrap_err();
        assert_eq!(
            errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [RegistryError::at(
                latin1.display().to_string(),
                0,
                0,
                "cannot read: stream did not contain valid UTF-8"
            )
            .to_string()]
        );
    }

    /// Runs `f` with every packed enterprise going to the temporary file (none kept in memory).
    fn spilling<T>(f: impl FnOnce() -> T) -> T {
        SPILL_FROM.with(|c| c.set(0));
        let out = f();
        SPILL_FROM.with(|c| c.set(SPILL_FROM_BYTES));
        out
    }

    #[test]
    fn rows_far_from_their_enterprise_import_the_same_whether_the_list_is_held_in_memory_or_in_a_file() {
        let (a, b, c) = (code("MA0K3T7W"), code("MA0K3T8X"), code("16356268"));
        let e = format!("{E_HEAD}{}{}{}", ent(&a, "B"), ent(&b, "C"), ent(&c, "A"));
        // Rows of each enterprise far apart and out of order: a measure before its line, the
        // rows coming back to an enterprise after the others'.
        let m = format!(
            "uscc,record,line,name,capacity,unit,level,measure,value,so2,nox,pm,vocs\n\
             {a},measure,L2,,,,orange,stop,,,,,\n\
             {c},line,L1,1#窑,500,t/d,,,,,,,\n\
             {a},line,L1,1#焦炉,3000,t/d,,,,,,,\n\
             {b},measure,,,,,yellow,limit_percent,30,0.1,0.1,0.1,0.1\n\
             {c},measure,L1,,,,red,stop,,,,,\n\
             {a},line,L2,2#焦炉,1000,t/d,,,,,,,\n\
             {b},line,L1,1#炉,10,t/d,,,,,,,\n\
             {a},measure,L1,,,,yellow,extend_coking_hours,28,0.2,0.2,0.2,0.2\n"
        );
        let in_memory = run(&e, Some(&m)).unwrap();
        let in_file = spilling(|| run(&e, Some(&m))).unwrap();
        assert_eq!(in_memory, in_file);
        let first = &in_file[0];
        assert_eq!((first.lines.len(), first.contacts.len(), first.measures.len()), (2, 1, 2));
        // The measure that came before its line waited for it, and gets the line's share of capacity.
        assert_eq!(first.measures[1].level, "orange");
        assert_eq!(first.measures[1].reduction, PerSpecies::splat(0.25));
        // Errors in later rows name the same file, line and column either way.
        let bad = format!("{m}{b},measure,L9,,,,red,stop,,,,,\n");
        let expected = [format!("m.csv:10:28: measure for line L9, which {b} does not have (its lines: L1)")];
        assert_eq!(run(&e, Some(&bad)).unwrap_err(), expected);
        assert_eq!(spilling(|| run(&e, Some(&bad))).unwrap_err(), expected);
    }

    #[test]
    fn a_packed_list_stages_the_version_and_diff_a_whole_list_gives() {
        let (a, b, c) = (code("MA0K3T7W"), code("MA0K3T8X"), code("16356268"));
        let t0 = DateTime::parse_from_rfc3339("2025-10-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let packed = |e: &str| {
            let text = strip_bom(e);
            import_csv_from(("e.csv", Src::Text(text)), None, &opts(), &mut |_, _| {}).unwrap()
        };
        let e1 = format!("{E_HEAD}{}{}", ent(&a, "C"), ent(&b, "B"));
        let e2 = format!("{E_HEAD}{}{}", ent(&c, "A"), ent(&a, "B"));
        let v1 = ListVersion::new(run(&e1, None).unwrap(), None, t0);
        let v2 = ListVersion::new(run(&e2, None).unwrap(), Some(&v1), t0);
        for spill in [false, true] {
            let stage = |e: &str, p: Option<&Previous>| {
                let f = || packed(e).stage(p, t0).unwrap();
                if spill { spilling(f) } else { f() }
            };
            let (s1, d1) = stage(&e1, None);
            assert_eq!((s1.version, s1.digest.as_str()), (1, v1.digest.as_str()));
            assert_eq!(
                d1,
                ListDiff {
                    to_version: 1,
                    ..diff_enterprises(&[], &v1.enterprises)
                }
            );
            let previous = Previous::of(&v1);
            let (s2, d2) = stage(&e2, Some(&previous));
            assert_eq!(d2, diff_after(&previous, &v2));
            assert_eq!((d2.added.len(), d2.removed.len(), d2.grade_changes.len()), (1, 1, 1));
            // The grade history carried over is in the version staged, as in the whole one.
            assert_eq!(s2.get(&Uscc::parse(&a).unwrap()).unwrap().unwrap().grade_history.len(), 1);
            assert_eq!(s2.into_version().unwrap(), v2);
        }
    }

    #[test]
    fn every_seed_enterprise_packs_and_unpacks_to_itself() {
        let list = read_paths(&[PathBuf::from("seeds/registry")], &opts(), &mut |_, _| {}).unwrap();
        assert!(list.iter().any(|e| e.exemption.is_some()) && list.iter().any(|e| e.permit.is_some()));
        for e in &list {
            let mut bytes = Vec::new();
            e.pack(&mut bytes);
            assert_eq!(Enterprise::unpack(&bytes).as_ref(), Some(e));
            assert_eq!(Enterprise::unpack(&bytes[..bytes.len() - 1]), None);
        }
    }

    #[test]
    fn progress_reaches_the_total() {
        let u = code("MA0K3T7W");
        let mut last = (0, 0);
        import_csv(("e.csv", &format!("{E_HEAD}{}", ent(&u, "B"))), None, &opts(), &mut |d, t| {
            last = (d, t)
        })
        .unwrap();
        assert_eq!(last.0, last.1);
    }
}
