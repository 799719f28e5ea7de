//! How every list of the API pages: `?limit=N&after=CURSOR`, answered with the items and
//! `next_after`. Each list has a fixed order and a cursor per item (its key in that order: a region
//! code, an id, a sequence number); `after` is the cursor of the last item seen and the page holds
//! the items that follow it. `next_after` is the cursor of the page's last item when the page is full
//! (pass it as `after`; the next page may be empty), and `null` when no item follows. `limit` is 1 to
//! [`MAX_LIMIT`] (more is taken as the maximum; 0 or not a number is a 400); its default is the list's.

use serde::Deserialize;

use super::ApiError;

/// The largest page.
pub const MAX_LIMIT: usize = 1000;

/// The default page of the lists read from the store in pages (events, assignments, inspections).
pub const DEFAULT_LIMIT: usize = 100;

/// The default page of the lists that were whole before they paged (warnings, regions, directives,
/// playbooks, negotiated reductions): a province's whole list in one page, as before.
pub const WHOLE: usize = MAX_LIMIT;

/// `?limit=&after=` of a list without other filters.
#[derive(Debug, Default, Deserialize)]
pub struct Paging {
    /// Items per page.
    pub limit: Option<usize>,
    /// The cursor of the last item seen.
    pub after: Option<String>,
}

impl Paging {
    /// From the two parameters of a query that also has filters.
    pub fn new(limit: Option<usize>, after: Option<String>) -> Paging {
        Paging { limit, after }
    }

    /// The page size: `default` when not given, at most [`MAX_LIMIT`]; 0 is refused.
    pub fn limit(&self, default: usize) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(default),
            Some(0) => Err(ApiError::BadRequest(format!("limit: must be 1 to {MAX_LIMIT}"))),
            Some(n) => Ok(n.min(MAX_LIMIT)),
        }
    }

    /// The cursor, if any (an empty `after=` is none).
    pub fn after(&self) -> Option<&str> {
        self.after.as_deref().filter(|a| !a.is_empty())
    }

    /// A page of a list held whole: sorted by `key`, the items after the cursor, at most `limit`.
    pub fn page<T>(&self, mut items: Vec<T>, default: usize, key: impl Fn(&T) -> String) -> Result<Page<T>, ApiError> {
        let limit = self.limit(default)?;
        let mut keyed: Vec<(String, T)> = items.drain(..).map(|t| (key(&t), t)).collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let after = self.after();
        let mut rest = keyed.into_iter().filter(|(k, _)| after.is_none_or(|a| k.as_str() > a)).peekable();
        let mut out = Vec::new();
        let mut last = None;
        while out.len() < limit {
            let Some((k, t)) = rest.next() else { break };
            out.push(t);
            last = Some(k);
        }
        let next = if rest.peek().is_some() { last } else { None };
        Ok(Page { items: out, next })
    }
}

/// One page of a list.
#[derive(Debug)]
pub struct Page<T> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// The cursor to ask the next page with; `None` when no item follows.
    pub next: Option<String>,
}

/// `next_after` of a page of `len` items read `limit` at a time: the cursor of the last one when the
/// page is full, else none.
pub fn next_after<C>(len: usize, limit: usize, last: impl FnOnce() -> Option<C>) -> Option<C> {
    if len >= limit { last() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_held_whole_pages_in_key_order_and_says_when_nothing_follows() {
        let items = vec!["c", "a", "d", "b", "e"];
        let p = |limit, after: Option<&str>| {
            let page = Paging::new(limit, after.map(str::to_string))
                .page(items.clone(), 100, |s| s.to_string())
                .unwrap();
            (page.items, page.next)
        };
        assert_eq!(p(Some(2), None), (vec!["a", "b"], Some("b".to_string())));
        assert_eq!(p(Some(2), Some("b")), (vec!["c", "d"], Some("d".to_string())));
        assert_eq!(p(Some(2), Some("d")), (vec!["e"], None));
        assert_eq!(p(Some(3), Some("b")), (vec!["c", "d", "e"], None), "full, but nothing follows");
        assert_eq!(p(None, Some("bb")), (vec!["c", "d", "e"], None), "a cursor of an item gone since");
        assert_eq!(p(Some(5000), None).0.len(), 5);
        assert!(Paging::new(Some(0), None).limit(10).is_err());
        assert_eq!(Paging::new(Some(5000), None).limit(10).unwrap(), MAX_LIMIT);
    }
}
