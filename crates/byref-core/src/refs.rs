//! The reference set of an object held in memory (the memory store, the daemon's memory tier).

use std::collections::HashSet;

use crate::{Error, Key, RefId, Result};

/// The live references of one object: it goes when the last is released.
#[derive(Debug, Clone, Default)]
pub struct RefSet(HashSet<RefId>);

impl RefSet {
    /// A set holding `first`.
    pub fn new(first: RefId) -> Self {
        RefSet(HashSet::from([first]))
    }

    /// Adds `reference` (adding one it holds changes nothing).
    pub fn add(&mut self, reference: RefId) {
        self.0.insert(reference);
    }

    /// Drops `reference`, or any one if `None`, as [`crate::Store::release`] does; returns
    /// whether none remain. [`Error::ReferenceGone`] if it is not held.
    pub fn release(&mut self, reference: Option<&RefId>, store: &str, key: &Key) -> Result<bool> {
        let removed = match reference.or_else(|| self.0.iter().next()).copied() {
            Some(r) => self.0.remove(&r),
            None => false,
        };
        if !removed {
            return Err(Error::ReferenceGone {
                store: store.to_owned(),
                key: *key,
            });
        }
        Ok(self.0.is_empty())
    }

    /// The references, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &RefId> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_each_reference_once_and_reports_the_last() {
        let key = Key::from_bytes([1; 32]);
        let (a, b) = (RefId::random(), RefId::random());
        let mut refs = RefSet::new(a);
        refs.add(b);
        refs.add(b);
        assert!(!refs.release(Some(&a), "s", &key).unwrap());
        assert!(matches!(
            refs.release(Some(&a), "s", &key),
            Err(Error::ReferenceGone { .. })
        ));
        assert!(refs.release(None, "s", &key).unwrap());
        assert!(refs.release(None, "s", &key).is_err());
    }
}
