//! The undo log of one write job: what each of its writes replaced, so that a job that returns an error
//! can be taken back inside the batch's open transaction (redb cannot make a savepoint in a dirty
//! transaction, and the other jobs of the batch must still commit).
//!
//! Every write records the value it replaced, as redb's `insert` and `remove` return it (no extra
//! read): an entry per key, with the old bytes or "absent". Writes that do not change the value record
//! nothing. To stay small on bulk paths, consecutive fresh items of a numbered run coalesce into one
//! range, and consecutive documents of one collection share one entry whose keys are packed into a
//! single string. Undoing applies the entries in reverse order.

use crate::store::port::{Key, OwnedKey, Table};

/// What a job wrote, oldest first.
#[derive(Default)]
pub(super) struct UndoLog {
    entries: Vec<Entry>,
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
    old: Vec<(u32, Vec<u8>)>,
}

impl DocRun {
    fn key(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.keys[start..self.ends[i] as usize]
    }
}

impl UndoLog {
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
                    + r.old.capacity() * size_of::<(u32, Vec<u8>)>()
                    + r.old.iter().map(|(_, v)| v.capacity()).sum::<usize>()
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

    /// Every write to take back, newest first: the key and the value to put back (`None`: remove).
    pub(super) fn into_writes(self) -> Vec<(Table, OwnedKey, Option<Vec<u8>>)> {
        let mut out = Vec::new();
        for e in self.entries.into_iter().rev() {
            match e {
                Entry::Row(t, k, old) => out.push((t, k, old)),
                Entry::Docs(mut run) => {
                    for i in (0..run.ends.len()).rev() {
                        let before = match run.old.last() {
                            Some((j, _)) if *j as usize == i => run.old.pop().map(|(_, v)| v),
                            _ => None,
                        };
                        out.push((Table::Docs, OwnedKey::Doc(run.collection.clone(), run.key(i).to_string()), before));
                    }
                }
                Entry::Item(batch, index, old) => out.push((Table::Items, OwnedKey::Item(batch, index), Some(old))),
                Entry::FreshItems { batch, first, last } => {
                    for i in (first..=last).rev() {
                        out.push((Table::Items, OwnedKey::Item(batch, i), None));
                    }
                }
            }
        }
        out
    }
}
