//! Moving a store from one backend to another (`hazeflow migrate`): every table copied through the
//! port in one batch of the target, then both compared row by row.

use super::port::{OwnedKey, Scan, Table};
use super::{Store, StoreError};

/// What a copy moved.
#[derive(Debug, Clone)]
pub struct CopySummary {
    /// Rows per table.
    pub tables: Vec<(&'static str, u64)>,
    /// Records of the event log.
    pub events: u64,
}

impl Store {
    /// Copies every table of `source` into this store, which must hold no event yet, in one
    /// transaction; then compares the two, table by table and row by row (the event log record by
    /// record). Nothing is written into a store that already has events.
    pub async fn copy_from(&self, source: &Store) -> Result<CopySummary, StoreError> {
        let held = self.read(|r| r.event_count())?;
        if held > 0 {
            return Err(StoreError::Refused(format!(
                "the target already holds {held} events: a store is moved only into an empty one"
            )));
        }
        let src = source.clone();
        let tables = self
            .write(move |tx| {
                src.read(|r| {
                    let mut out = Vec::new();
                    for table in Table::ALL {
                        out.push((table.name(), tx.copy_table(table, r.port())?));
                    }
                    Ok(out)
                })
            })
            .await?;
        let diffs = differences(source, self)?;
        if let Some(first) = diffs.first() {
            return Err(StoreError::Refused(format!(
                "the copy differs from its source in {} places, first: {first}",
                diffs.len()
            )));
        }
        let events = tables.iter().find(|(t, _)| *t == Table::Events.name()).map_or(0, |(_, n)| *n);
        Ok(CopySummary { tables, events })
    }
}

/// Where two stores differ (empty when every table holds the same rows).
pub fn differences(a: &Store, b: &Store) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for table in Table::ALL {
        let rows = |s: &Store| {
            s.read(|r| {
                let mut v: Vec<(OwnedKey, Vec<u8>)> = Vec::new();
                r.port().scan(table, Scan::All { rev: false }, usize::MAX, &mut |k, val| {
                    v.push((OwnedKey::of(k), val.to_vec()));
                    Ok(true)
                })?;
                Ok(v)
            })
        };
        let (left, right) = (rows(a)?, rows(b)?);
        if left.len() != right.len() {
            out.push(format!("{}: {} rows against {}", table.name(), left.len(), right.len()));
        }
        for (l, r) in left.iter().zip(&right) {
            if l != r {
                out.push(format!("{} at {:?}: the rows differ", table.name(), l.0));
                break;
            }
        }
    }
    Ok(out)
}
