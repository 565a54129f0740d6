//! How a proxy that holds its value travels when pickled (the rule `byref.proxy` states): a
//! proxy's pickle is what it stands for *now*.
//!
//! The caller works out whether the value is unchanged (the proxy may hand on its handle, and
//! the value still has the handle's key) and how large its frame is; this decides. Python
//! carries out the two cases that need its objects (inline, stored again).

/// Values whose frame is smaller than this travel inline when a proxy pickles as its value;
/// larger ones are stored again (content addressing makes an unchanged value cost one hash
/// and no write).
pub const INLINE_MAX: u64 = 1 << 20;

/// What a proxy holding its value pickles as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Travel {
    /// Its own handle. `last`: the handle is released on resolve, so it travels this once;
    /// the proxy travels as its value from then on.
    OwnHandle {
        /// Whether this is the handle's only time.
        last: bool,
    },
    /// The value itself, inside the pickle.
    Inline,
    /// The value, stored again in the handle's store, as a fresh handle.
    StoredAgain,
}

/// What a proxy holding its value pickles as: `unchanged` if it may hand on its handle and
/// the value still hashes to the handle's key; `evict` if the handle is released on resolve;
/// `frame_len` the bytes of the value's frame.
pub fn how_a_value_travels(unchanged: bool, evict: bool, frame_len: u64) -> Travel {
    if unchanged {
        Travel::OwnHandle { last: evict }
    } else if frame_len < INLINE_MAX {
        Travel::Inline
    } else {
        Travel::StoredAgain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_values_send_their_handle_and_changed_ones_their_bytes() {
        assert_eq!(
            how_a_value_travels(true, true, u64::MAX),
            Travel::OwnHandle { last: true }
        );
        assert_eq!(
            how_a_value_travels(true, false, 0),
            Travel::OwnHandle { last: false }
        );
        assert_eq!(
            how_a_value_travels(false, false, INLINE_MAX - 1),
            Travel::Inline
        );
        assert_eq!(
            how_a_value_travels(false, true, INLINE_MAX),
            Travel::StoredAgain
        );
    }
}
