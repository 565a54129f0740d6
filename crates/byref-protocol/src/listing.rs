//! Answers to `LIST`: a listing, page by page.

use byref_core::{Key, Listed, RefId};

use crate::{DecodeError, MAX_LISTING_PAGE};

/// One page of a `LIST` answer: objects in key order, after the key the request gave.
///
/// Encoded as a byte saying whether more pages follow (1) or not (0), then per object its key
/// (32 bytes), length (8), first 8 bytes (zeros if unknown: no frame starts so), number of
/// references `n` (4) and the `n` references (16 each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingPage {
    /// The objects.
    pub objects: Vec<Listed>,
    /// Whether the listing goes on after the last of them.
    pub more: bool,
}

/// Bytes before the first entry: the "more pages" flag.
const PAGE_HEAD: usize = 1;
/// An entry's fields before its references: key, length, first bytes, reference count.
const KEY: std::ops::Range<usize> = 0..32;
const LEN: std::ops::Range<usize> = KEY.end..KEY.end + 8;
const FIRST_BYTES: std::ops::Range<usize> = LEN.end..LEN.end + 8;
const COUNT: std::ops::Range<usize> = FIRST_BYTES.end..FIRST_BYTES.end + 4;
/// Bytes of a listed object before its references.
const ENTRY_HEAD: usize = COUNT.end;
/// Bytes of one reference.
const REF_LEN: usize = 16;
/// Most references listed per object: an entry of that many fills a page by itself. An
/// object with more (a quarter of a million) is listed with the first this many.
pub const MAX_REFERENCES_LISTED: usize =
    (MAX_LISTING_PAGE as usize - PAGE_HEAD - ENTRY_HEAD) / REF_LEN;

/// Bytes of one listed object with `n` references.
fn listed_len(n: usize) -> usize {
    ENTRY_HEAD + REF_LEN * n
}

impl ListingPage {
    /// The page after `after` (all keys, if `None`) of `objects` sorted by key: as many
    /// objects as fit in [`MAX_LISTING_PAGE`] bytes (at least one).
    pub fn after(objects: &[Listed], after: Option<&Key>) -> Self {
        let start = after.map_or(0, |a| objects.partition_point(|l| l.key <= *a));
        let mut size = PAGE_HEAD;
        let mut page = Vec::new();
        for listed in &objects[start..] {
            let n = listed.references.len().min(MAX_REFERENCES_LISTED);
            size += listed_len(n);
            if size as u64 > MAX_LISTING_PAGE && !page.is_empty() {
                break;
            }
            page.push(Listed {
                references: listed.references[..n].to_vec(),
                ..listed.clone()
            });
        }
        let more = start + page.len() < objects.len();
        ListingPage {
            objects: page,
            more,
        }
    }

    /// The page's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![u8::from(self.more)];
        for listed in &self.objects {
            out.extend_from_slice(listed.key.as_bytes());
            out.extend_from_slice(&listed.len.to_le_bytes());
            out.extend_from_slice(&listed.head.unwrap_or_default());
            out.extend_from_slice(&(listed.references.len() as u32).to_le_bytes());
            for reference in &listed.references {
                out.extend_from_slice(reference.as_bytes());
            }
        }
        out
    }

    /// Parses a page, at most [`MAX_LISTING_PAGE`] bytes; every count is checked against
    /// the bytes left before anything is allocated for it.
    pub fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        if data.len() as u64 > MAX_LISTING_PAGE {
            return Err(DecodeError(format!("listing page of {} bytes", data.len())));
        }
        let (&more, mut rest) = data
            .split_first()
            .ok_or_else(|| DecodeError("empty listing page".into()))?;
        if more > 1 {
            return Err(DecodeError(format!("listing page flag {more}")));
        }
        let mut objects = Vec::new();
        while !rest.is_empty() {
            let Some((head, tail)) = rest.split_first_chunk::<ENTRY_HEAD>() else {
                return Err(DecodeError("listing entry cut short".into()));
            };
            let n = u32::from_le_bytes(head[COUNT].try_into().expect("4 bytes")) as usize;
            let first: [u8; 8] = head[FIRST_BYTES].try_into().expect("8 bytes");
            if tail.len() / REF_LEN < n {
                return Err(DecodeError(format!(
                    "listing entry of {n} references in {} bytes",
                    tail.len()
                )));
            }
            let (references, tail) = tail.split_at(REF_LEN * n);
            objects.push(Listed {
                key: Key::from_bytes(head[KEY].try_into().expect("32 bytes")),
                len: u64::from_le_bytes(head[LEN].try_into().expect("8 bytes")),
                head: (first != [0; 8]).then_some(first),
                references: references
                    .chunks_exact(REF_LEN)
                    .map(|r| RefId::from_bytes(r.try_into().expect("16 bytes")))
                    .collect(),
            });
            rest = tail;
        }
        Ok(ListingPage {
            objects,
            more: more == 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_page_in_key_order_and_reject_lying_counts() {
        let mut objects: Vec<Listed> = (0..5u8)
            .map(|i| Listed {
                key: Key::of(&[i]),
                len: u64::from(i) * 1000,
                references: (0..i).map(|_| RefId::random()).collect(),
                head: (i % 2 == 0).then_some(*b"BYRF\x01\x01\0\0"),
            })
            .collect();
        objects.sort_by_key(|l| l.key);
        let first = ListingPage::after(&objects, None);
        assert_eq!(first.objects, objects);
        assert!(!first.more);
        let rest = ListingPage::after(&objects, Some(&objects[2].key));
        assert_eq!(rest.objects, objects[3..]);
        let bytes = first.encode();
        assert_eq!(ListingPage::decode(&bytes), Ok(first));
        let mut lying = ListingPage::after(&objects[..1], None).encode();
        lying[49..53].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(ListingPage::decode(&lying).is_err());
        for cut in 0..bytes.len() {
            let _ = ListingPage::decode(&bytes[..cut]);
        }
    }

    #[test]
    fn an_object_with_more_references_than_a_page_holds_is_listed_in_a_page_that_decodes() {
        let many = Listed {
            key: Key::of(b"popular"),
            len: 1,
            head: None,
            references: vec![RefId::from_bytes([1; REF_LEN]); MAX_REFERENCES_LISTED + 3],
        };
        let page = ListingPage::after(std::slice::from_ref(&many), None);
        assert_eq!(page.objects[0].references.len(), MAX_REFERENCES_LISTED);
        let bytes = page.encode();
        assert!(bytes.len() as u64 <= MAX_LISTING_PAGE);
        assert!(
            bytes.len() + REF_LEN > MAX_LISTING_PAGE as usize,
            "one more would not fit"
        );
        assert_eq!(ListingPage::decode(&bytes), Ok(page));
    }
}
