//! The undo log of one write job: what each of its writes replaced, so that a job that returns an error
//! can be taken back inside the batch's open transaction (redb cannot make a savepoint in a dirty
//! transaction, and the other jobs of the batch must still commit).
//!
//! Every write of [`super::Tx`] records the value it replaced, as redb's `insert` and `remove` return
//! it (no extra read): an entry per key, with the old bytes or "absent". Writes that do not change the
//! value record nothing. To stay small on bulk paths, consecutive fresh items of a numbered run
//! coalesce into one range, and consecutive documents of one collection share one entry whose keys are
//! packed into a single string. Undoing applies the entries in reverse order.

use std::borrow::Borrow;

use redb::{AccessGuard, TableDefinition, WriteTransaction};

use super::keys::*;

/// What a job wrote, oldest first.
#[derive(Default)]
pub(super) struct UndoLog {
    entries: Vec<Entry>,
}

/// The tables keyed by a sequence number.
#[derive(Clone, Copy)]
pub(super) enum SeqTable {
    Events,
    Consultations,
}

/// The tables keyed by an id.
#[derive(Clone, Copy)]
pub(super) enum NamedTable {
    Forecasts,
    Warnings,
    Directives,
}

/// One write to take back. `Option<Vec<u8>>`: the value before, `None` when the key was absent.
pub(super) enum Entry {
    Seq(SeqTable, u64, Option<Vec<u8>>),
    Named(NamedTable, String, Option<Vec<u8>>),
    RegionState(u32, Option<Vec<u8>>),
    Latest(u32, Option<String>),
    /// A history index key that was absent.
    WarningEvent(String, u64),
    Counter(String, Option<u64>),
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

/// What an insert replaced, as the log needs it: `None` when the value did not change (nothing to
/// undo), `Some(None)` when the key was absent, `Some(Some(old))` otherwise.
pub(super) fn replaced(old: Option<AccessGuard<'_, &'static [u8]>>, new: &[u8]) -> Option<Option<Vec<u8>>> {
    match old {
        None => Some(None),
        Some(g) if g.value() == new => None,
        Some(g) => Some(Some(g.value().to_vec())),
    }
}

impl UndoLog {
    /// Adds an entry.
    pub(super) fn push(&mut self, e: Entry) {
        self.entries.push(e);
    }

    /// A document write (or removal) of `collection`/`key`; `before` is the value it replaced.
    pub(super) fn doc(&mut self, collection: &str, key: &str, before: Option<Vec<u8>>) {
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
    pub(super) fn item(&mut self, batch: u64, index: u32, before: Option<Vec<u8>>) {
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
            Entry::Seq(_, _, o) | Entry::RegionState(_, o) => o.as_ref().map_or(0, Vec::capacity),
            Entry::Named(_, k, o) => k.capacity() + o.as_ref().map_or(0, Vec::capacity),
            Entry::Latest(_, o) => o.as_ref().map_or(0, String::capacity),
            Entry::WarningEvent(k, _) | Entry::Counter(k, _) => k.capacity(),
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

    /// Takes every write back, newest first.
    pub(super) fn apply(self, txn: &WriteTransaction) -> Result<(), String> {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        for e in self.entries.into_iter().rev() {
            match e {
                Entry::Seq(t, k, old) => {
                    let def = match t {
                        SeqTable::Events => EVENTS,
                        SeqTable::Consultations => CONSULTATIONS,
                    };
                    restore(txn, def, k, old.as_deref())?;
                }
                Entry::Named(t, k, old) => {
                    let def = match t {
                        NamedTable::Forecasts => FORECASTS,
                        NamedTable::Warnings => WARNINGS,
                        NamedTable::Directives => DIRECTIVES,
                    };
                    restore(txn, def, k.as_str(), old.as_deref())?;
                }
                Entry::RegionState(k, old) => restore(txn, REGION_STATES, k, old.as_deref())?,
                Entry::Latest(k, old) => {
                    let mut t = txn.open_table(LATEST).map_err(|e| err(&e))?;
                    match old {
                        Some(v) => t.insert(k, v.as_str()).map(drop),
                        None => t.remove(k).map(drop),
                    }
                    .map_err(|e| err(&e))?;
                }
                Entry::WarningEvent(id, seq) => {
                    let mut t = txn.open_table(WARNING_EVENTS).map_err(|e| err(&e))?;
                    t.remove((id.as_str(), seq)).map(drop).map_err(|e| err(&e))?;
                }
                Entry::Counter(name, old) => {
                    let mut t = txn.open_table(COUNTERS).map_err(|e| err(&e))?;
                    match old {
                        Some(v) => t.insert(name.as_str(), v).map(drop),
                        None => t.remove(name.as_str()).map(drop),
                    }
                    .map_err(|e| err(&e))?;
                }
                Entry::Docs(mut run) => {
                    let mut t = txn.open_table(DOCS).map_err(|e| err(&e))?;
                    let c = run.collection.as_str();
                    for i in (0..run.ends.len()).rev() {
                        let before = match run.old.last() {
                            Some((j, _)) if *j as usize == i => run.old.pop().map(|(_, v)| v),
                            _ => None,
                        };
                        let key = run.key(i);
                        match before {
                            Some(v) => t.insert((c, key), v.as_slice()).map(drop),
                            None => t.remove((c, key)).map(drop),
                        }
                        .map_err(|e| err(&e))?;
                    }
                }
                Entry::Item(batch, index, old) => restore(txn, ITEMS, (batch, index), Some(&old))?,
                Entry::FreshItems { batch, first, last } => {
                    let mut t = txn.open_table(ITEMS).map_err(|e| err(&e))?;
                    t.retain_in((batch, first)..=(batch, last), |_, _| false).map_err(|e| err(&e))?;
                }
            }
        }
        Ok(())
    }
}

/// Puts `old` back at `key` (removes the key when it was absent).
fn restore<'k, K: redb::Key + 'static>(
    txn: &WriteTransaction,
    def: TableDefinition<K, &'static [u8]>,
    key: impl Borrow<K::SelfType<'k>>,
    old: Option<&[u8]>,
) -> Result<(), String> {
    let mut t = txn.open_table(def).map_err(|e| e.to_string())?;
    match old {
        Some(v) => t.insert(key, v).map(drop),
        None => t.remove(key).map(drop),
    }
    .map_err(|e| e.to_string())
}
