//! The undo log of one write job: what each of its writes replaced, so that a job that returns an error
//! can be taken back inside the batch's open transaction (redb cannot make a savepoint in a dirty
//! transaction, and the other jobs of the batch must still commit).
//!
//! Every write records the value it replaced, as redb's `insert` and `remove` return it (no extra
//! read): an entry per key, with the old bytes or "absent". Writes that do not change the value record
//! nothing. To stay small on bulk paths, consecutive fresh items of a numbered run coalesce into one
//! range, and consecutive documents of one collection share one entry whose keys are packed into a
//! single string. Undoing applies the entries in reverse order.
//!
//! The documents' values before are kept in memory up to [`IN_MEMORY_BYTES`], then in a temporary
//! file (a list import that removes hundreds of thousands of enterprises replaces a gigabyte of
//! them); the file is made as the list import's ([`crate::registry::import`]): in `TMPDIR`, 0600,
//! its name removed at once. Should the file fail, values stay in memory.

use std::os::unix::fs::FileExt;

use crate::store::port::{Key, OwnedKey, Table};

/// Bytes of documents' values before kept in memory; past them, in the log's file.
const IN_MEMORY_BYTES: usize = 64 << 20;

/// What a job wrote, oldest first.
pub(super) struct UndoLog {
    entries: Vec<Entry>,
    /// Documents' values before held in memory, in bytes.
    in_memory: usize,
    /// How many bytes may be held in memory.
    limit: usize,
    /// The file of the values past the limit, and its length.
    file: Option<(std::fs::File, u64)>,
}

impl Default for UndoLog {
    fn default() -> UndoLog {
        UndoLog::with_limit(IN_MEMORY_BYTES)
    }
}

/// A document's value before: in memory, or at a place of the log's file.
pub(super) enum Kept {
    Memory(Vec<u8>),
    File { at: u64, len: usize },
}

/// One write to take back. `Option<Vec<u8>>`: the value before, `None` when the key was absent.
pub(super) enum Entry {
    Row(Table, OwnedKey, Option<Vec<u8>>),
    Docs(Box<DocRun>),
    /// An item that existed, with its value before.
    Item(u64, u32, Vec<u8>),
    /// Items `first..=last` of a run, all absent before.
    FreshItems {
        batch: u64,
        first: u32,
        last: u32,
    },
}

/// Consecutive document writes in one collection.
pub(super) struct DocRun {
    collection: String,
    /// The keys, concatenated.
    keys: String,
    /// Where each key ends in `keys`.
    ends: Vec<u32>,
    /// (index in the run, value before) for the keys that existed, by index.
    old: Vec<(u32, Kept)>,
}

impl DocRun {
    fn key(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.keys[start..self.ends[i] as usize]
    }
}

impl UndoLog {
    /// A log that holds up to `limit` bytes of documents' values in memory.
    pub(super) fn with_limit(limit: usize) -> UndoLog {
        UndoLog {
            entries: Vec::new(),
            in_memory: 0,
            limit,
            file: None,
        }
    }

    /// Keeps a document's value before: in memory within the limit, else in the file.
    fn keep(&mut self, v: Vec<u8>) -> Kept {
        if self.in_memory + v.len() > self.limit {
            if self.file.is_none() {
                self.file = tempfile::tempfile().ok().map(|f| (f, 0));
            }
            if let Some((f, len)) = self.file.as_mut()
                && f.write_all_at(&v, *len).is_ok()
            {
                let kept = Kept::File { at: *len, len: v.len() };
                *len += v.len() as u64;
                return kept;
            }
        }
        self.in_memory += v.len();
        Kept::Memory(v)
    }

    /// A kept value, read back.
    fn read(&self, kept: Kept) -> std::io::Result<Vec<u8>> {
        match kept {
            Kept::Memory(v) => Ok(v),
            Kept::File { at, len } => {
                let mut v = vec![0; len];
                match &self.file {
                    Some((f, _)) => f.read_exact_at(&mut v, at)?,
                    None => return Err(std::io::Error::other("the undo log has no file")),
                }
                Ok(v)
            }
        }
    }

    /// A write of `key`; `before` is the value it replaced (`None`: the key was absent).
    pub(super) fn push(&mut self, table: Table, key: Key<'_>, before: Option<Vec<u8>>) {
        match (table, key) {
            (Table::Docs, Key::Doc(c, k)) => self.doc(c, k, before),
            (Table::Items, Key::Item(b, i)) => self.item(b, i, before),
            _ => self.entries.push(Entry::Row(table, OwnedKey::of(key), before)),
        }
    }

    /// A document write (or removal) of `collection`/`key`; `before` is the value it replaced.
    fn doc(&mut self, collection: &str, key: &str, before: Option<Vec<u8>>) {
        // A run holds up to 4 GiB of keys (offsets are `u32`); past that, a new one starts.
        let fits = |r: &DocRun| {
            r.collection == collection && u32::try_from(r.keys.len() + key.len()).is_ok() && u32::try_from(r.ends.len()).is_ok()
        };
        if !matches!(self.entries.last(), Some(Entry::Docs(r)) if fits(r)) {
            self.entries.push(Entry::Docs(Box::new(DocRun {
                collection: collection.to_string(),
                keys: String::new(),
                ends: Vec::new(),
                old: Vec::new(),
            })));
        }
        let before = before.map(|v| self.keep(v));
        if let Some(Entry::Docs(run)) = self.entries.last_mut() {
            run.keys.push_str(key);
            if let Some(v) = before {
                run.old.push((run.ends.len() as u32, v));
            }
            run.ends.push(run.keys.len() as u32);
        }
    }

    /// An item write; `before` is the value it replaced (`None`: the key was absent).
    fn item(&mut self, batch: u64, index: u32, before: Option<Vec<u8>>) {
        match before {
            Some(v) => self.entries.push(Entry::Item(batch, index, v)),
            None => {
                if let Some(Entry::FreshItems { batch: b, last, .. }) = self.entries.last_mut()
                    && *b == batch
                    && last.checked_add(1) == Some(index)
                {
                    *last = index;
                    return;
                }
                self.entries.push(Entry::FreshItems {
                    batch,
                    first: index,
                    last: index,
                });
            }
        }
    }

    /// Heap bytes held (approximately): what a job's log costs in memory.
    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        let own = |e: &Entry| match e {
            Entry::Row(_, k, o) => {
                let key = match k {
                    OwnedKey::Name(n) => n.capacity(),
                    OwnedKey::WarningEvent(n, _) => n.capacity(),
                    OwnedKey::Doc(c, n) => c.capacity() + n.capacity(),
                    _ => 0,
                };
                key + o.as_ref().map_or(0, Vec::capacity)
            }
            Entry::Docs(r) => {
                size_of::<DocRun>()
                    + r.collection.capacity()
                    + r.keys.capacity()
                    + r.ends.capacity() * size_of::<u32>()
                    + r.old.capacity() * size_of::<(u32, Kept)>()
                    + r.old
                        .iter()
                        .map(|(_, v)| match v {
                            Kept::Memory(v) => v.capacity(),
                            Kept::File { .. } => 0,
                        })
                        .sum::<usize>()
            }
            Entry::Item(_, _, v) => v.capacity(),
            Entry::FreshItems { .. } => 0,
        };
        self.entries.capacity() * size_of::<Entry>() + self.entries.iter().map(own).sum::<usize>()
    }

    /// Number of entries.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Takes back every write, newest first: `set` puts back the value before (`None`: removes
    /// the key). Values kept in the file are read back one at a time.
    pub(super) fn undo<E>(
        mut self,
        mut set: impl FnMut(Table, Key<'_>, Option<&[u8]>) -> Result<(), E>,
        io: impl Fn(std::io::Error) -> E,
    ) -> Result<(), E> {
        let entries = std::mem::take(&mut self.entries);
        for e in entries.into_iter().rev() {
            match e {
                Entry::Row(t, k, old) => set(t, k.key(), old.as_deref())?,
                Entry::Docs(mut run) => {
                    for i in (0..run.ends.len()).rev() {
                        let before = match run.old.last() {
                            Some((j, _)) if *j as usize == i => run.old.pop().map(|(_, v)| self.read(v)).transpose().map_err(&io)?,
                            _ => None,
                        };
                        set(Table::Docs, Key::Doc(&run.collection, run.key(i)), before.as_deref())?;
                    }
                }
                Entry::Item(batch, index, old) => set(Table::Items, Key::Item(batch, index), Some(&old))?,
                Entry::FreshItems { batch, first, last } => {
                    for i in (first..=last).rev() {
                        set(Table::Items, Key::Item(batch, i), None)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_past_the_limit_are_kept_in_a_file_and_undone_the_same() {
        let undo_all = |log: UndoLog| {
            let mut out: Vec<(String, Option<Vec<u8>>)> = Vec::new();
            log.undo::<std::io::Error>(
                |_, key, before| {
                    if let Key::Doc(_, k) = key {
                        out.push((k.to_string(), before.map(<[u8]>::to_vec)));
                    }
                    Ok(())
                },
                |e| e,
            )
            .unwrap();
            out
        };
        let fill = |log: &mut UndoLog| {
            for i in 0..100u32 {
                let before = (i % 3 != 0).then(|| format!("value {i} before").into_bytes());
                log.push(Table::Docs, Key::Doc("enterprises", &format!("k{i:03}")), before);
            }
        };
        let (mut in_memory, mut in_file) = (UndoLog::default(), UndoLog::with_limit(100));
        fill(&mut in_memory);
        fill(&mut in_file);
        assert!(in_memory.file.is_none());
        assert!(in_file.file.as_ref().is_some_and(|(_, len)| *len > 0) && in_file.in_memory <= 100);
        assert!(in_file.heap_bytes() < in_memory.heap_bytes());
        let undone = undo_all(in_file);
        assert_eq!(undone, undo_all(in_memory));
        assert_eq!(undone[0], ("k099".to_string(), None));
        assert_eq!(undone[1], ("k098".to_string(), Some(b"value 98 before".to_vec())));
        assert_eq!(undone[3], ("k096".to_string(), None));
    }
}
