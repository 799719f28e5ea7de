//! The journal of quick jobs on the embedded file: an append-only file beside it
//! (`{store}.journal`, 0600) that makes a batch of such jobs durable with one write and one
//! `fdatasync`, so that the redb commit of that batch can skip its own fsyncs.
//!
//! Why: a redb commit that is durable costs ~0.9 ms on this machine (quick repair makes it two-phase:
//! two fsyncs and the allocator state), a non-durable one ~50 µs. An acknowledgement is a few hundred
//! bytes; with 64 enterprises acknowledging at once, the durable commit was the writer's whole time
//! (`bench_ack`: writer busy 95 %, 25 acknowledgements per commit).
//!
//! How, and what it guarantees:
//!
//! - A job submitted with a record ([`super::Store::write_journaled`]) says how to redo it: the record
//!   holds the request as received, and redoing it decides again (idempotent: a step recorded
//!   already changes nothing).
//! - A batch whose jobs all carry records appends the records of the jobs that succeeded (one write,
//!   one `fdatasync`), then commits without durability. Its callers are answered after both: what
//!   they were told is recorded is in the journal on disk, and visible to every read.
//! - Any durable commit (any other batch, and a checkpoint [`CHECKPOINT_AFTER`] after the first
//!   record, or once the journal holds [`CHECKPOINT_BYTES`]) makes everything before it
//!   durable in redb; the journal is then emptied.
//! - After a crash (or after the file was reopened following a disk fault) redb is back at its last
//!   durable commit, and the records since are redone by the daemon before it serves
//!   ([`super::Store::replay_journal`]). Until then the journal is only read, never emptied or
//!   appended to: a command that opens the store in between (`hazeflow check`) leaves it as it is.
//! - A record is framed as `[length u32][crc32 u32][bytes]`; a torn record at the end (the process
//!   died in the middle of its write, so nobody was answered) is ignored and cut off.
//!
//! The PostgreSQL backend has no journal: its commits are durable as they are.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The longest a journaled record waits for the durable commit that empties the journal, unless
/// `HAZEFLOW_STORE_CHECKPOINT_MS` says otherwise (read once; the crash test sets it high, so that
/// what it acknowledges is in the journal only when it kills the daemon).
pub(crate) const CHECKPOINT_AFTER: Duration = Duration::from_millis(250);

fn checkpoint_after() -> Duration {
    static AFTER: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *AFTER.get_or_init(|| {
        std::env::var("HAZEFLOW_STORE_CHECKPOINT_MS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map_or(CHECKPOINT_AFTER, Duration::from_millis)
    })
}

/// The journal's size at which the next batch commits durably (and empties it).
pub(crate) const CHECKPOINT_BYTES: u64 = 8 << 20;

/// The longest record taken (an acknowledgement is well under 4 KiB).
const MAX_RECORD: u32 = 1 << 20;

/// The journal file.
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    /// Bytes in the file.
    len: u64,
    /// When the oldest record not yet made durable in redb was appended.
    since: Option<Instant>,
}

/// The journal's path for a store file.
pub(crate) fn path_for(store: &Path) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(".journal");
    store.with_file_name(name)
}

impl Journal {
    /// Opens (or creates, 0600) the journal beside the store file, and reads the records it holds
    /// (the whole ones; a torn tail is cut off).
    pub(crate) fn open(store: &Path) -> std::io::Result<(Journal, Vec<Vec<u8>>)> {
        let path = path_for(store);
        let mut file = match std::fs::OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::config::create_new_private(&path)?;
                std::fs::OpenOptions::new().read(true).write(true).open(&path)?
            }
            Err(e) => return Err(e),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (records, whole) = parse(&bytes);
        if whole < bytes.len() as u64 {
            tracing::warn!(
                journal = %path.display(),
                cut = bytes.len() as u64 - whole,
                "the journal ends with a torn record (the process stopped while writing it; nobody was answered); cutting it off"
            );
            file.set_len(whole)?;
            file.sync_data()?;
        }
        let since = (!records.is_empty()).then(Instant::now);
        Ok((
            Journal {
                path,
                file,
                len: whole,
                since,
            },
            records,
        ))
    }

    /// The records in the file now.
    pub(crate) fn records(&mut self) -> std::io::Result<Vec<Vec<u8>>> {
        let mut bytes = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        let mut f = File::open(&self.path)?;
        f.read_to_end(&mut bytes)?;
        Ok(parse(&bytes).0)
    }

    /// Appends records with one write and one `fdatasync`. On failure the file is cut back to what
    /// it held, and nothing of the records counts.
    pub(crate) fn append(&mut self, records: &[&[u8]]) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(records.iter().map(|r| r.len() + 8).sum());
        for r in records {
            let len = u32::try_from(r.len())
                .ok()
                .filter(|l| *l <= MAX_RECORD)
                .ok_or_else(|| std::io::Error::other(format!("a journal record of {} bytes is too large", r.len())))?;
            buf.extend_from_slice(&len.to_le_bytes());
            buf.extend_from_slice(&crc32fast::hash(r).to_le_bytes());
            buf.extend_from_slice(r);
        }
        let written = std::os::unix::fs::FileExt::write_all_at(&self.file, &buf, self.len).and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += buf.len() as u64;
        self.since.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Empties the journal once redb holds everything in it durably. A failure is only logged: the
    /// records are redone at the next start, which changes nothing that is recorded already.
    pub(crate) fn clear(&mut self) {
        if self.len == 0 {
            return;
        }
        match self.file.set_len(0).and_then(|()| self.file.flush()) {
            Ok(()) => {
                self.len = 0;
                self.since = None;
            }
            Err(e) => {
                tracing::warn!(journal = %self.path.display(), error = %e, "cannot empty the journal; its records are redone at the next start")
            }
        }
    }

    /// Whether the next batch should commit durably: the oldest record waited long enough, or the
    /// journal grew large.
    pub(crate) fn due(&self) -> bool {
        self.len >= CHECKPOINT_BYTES || self.since.is_some_and(|s| s.elapsed() >= checkpoint_after())
    }

    /// How long until [`Journal::due`] by time; `None` when it holds nothing.
    pub(crate) fn due_in(&self) -> Option<Duration> {
        self.since.map(|s| checkpoint_after().saturating_sub(s.elapsed()))
    }

    /// Whether it holds records.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes in the file.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Cuts the file back to `len` bytes: the records appended for a commit that then failed (its
    /// callers were told so) are not redone.
    pub(crate) fn cut_to(&mut self, len: u64) {
        if len >= self.len {
            return;
        }
        match self.file.set_len(len).and_then(|()| self.file.sync_data()) {
            Ok(()) => {
                self.len = len;
                if len == 0 {
                    self.since = None;
                }
            }
            Err(e) => {
                tracing::error!(journal = %self.path.display(), error = %e, "cannot cut back the records of a failed commit; they are redone at the next start")
            }
        }
    }
}

/// The whole records at the start of `bytes`, and how many bytes they take.
fn parse(bytes: &[u8]) -> (Vec<Vec<u8>>, u64) {
    let mut records = Vec::new();
    let mut at = 0usize;
    while bytes.len() - at >= 8 {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default());
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap_or_default());
        let start = at + 8;
        let Some(end) = start.checked_add(len as usize).filter(|e| *e <= bytes.len() && len <= MAX_RECORD) else {
            break;
        };
        let r = &bytes[start..end];
        if crc32fast::hash(r) != crc {
            break;
        }
        records.push(r.to_vec());
        at = end;
    }
    (records, at as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_a_reopen_and_a_torn_tail_is_cut_off() {
        let dir = tempfile::TempDir::new().expect("a folder");
        let store = dir.path().join("hazeflow.redb");
        let (mut j, found) = Journal::open(&store).expect("opens");
        assert!(found.is_empty() && j.is_empty());
        j.append(&[b"first", b"second"]).expect("appended");
        j.append(&[b"third"]).expect("appended");
        drop(j);
        // A torn fourth record: its header and half its bytes.
        let path = path_for(&store);
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("opens");
        f.write_all(&20u32.to_le_bytes()).expect("written");
        f.write_all(&crc32fast::hash(b"fourth record, twenty").to_le_bytes())
            .expect("written");
        f.write_all(b"fourth").expect("written");
        drop(f);
        let (mut j, found) = Journal::open(&store).expect("opens");
        assert_eq!(found, [b"first".to_vec(), b"second".to_vec(), b"third".to_vec()]);
        assert_eq!(
            std::fs::metadata(&path).expect("there").len(),
            3 * 8 + 5 + 6 + 5,
            "the torn tail is cut off"
        );
        assert_eq!(std::fs::metadata(&path).expect("there").permissions().mode() & 0o777, 0o600);
        j.append(&[b"fifth"]).expect("appended after the cut");
        assert_eq!(j.records().expect("read").len(), 4);
        j.clear();
        assert!(j.is_empty());
        assert!(Journal::open(&store).expect("opens").1.is_empty());
    }

    #[test]
    fn a_record_with_a_wrong_checksum_ends_the_journal() {
        let mut bytes = Vec::new();
        for (r, ok) in [(&b"one"[..], true), (&b"two"[..], false), (&b"three"[..], true)] {
            bytes.extend_from_slice(&(r.len() as u32).to_le_bytes());
            let crc = crc32fast::hash(r) ^ u32::from(!ok);
            bytes.extend_from_slice(&crc.to_le_bytes());
            bytes.extend_from_slice(r);
        }
        let (records, whole) = parse(&bytes);
        assert_eq!(records, [b"one".to_vec()]);
        assert_eq!(whole, 11);
    }

    use std::os::unix::fs::PermissionsExt;
}
