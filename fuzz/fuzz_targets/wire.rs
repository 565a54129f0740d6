//! Request headers come from anyone who can reach the daemon's port, response headers from any
//! server a handle names: decoding is an error or a value that encodes back to the same
//! bytes, never a panic. (A `LOCATE` answer and a listing page have targets of their own.)
#![no_main]

use byref_protocol::{Header, REQUEST_LEN, RESPONSE_LEN, Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(head) = data.first_chunk::<REQUEST_LEN>() {
        // The limit on bodies, from the bytes after the header (a server's --max-object).
        let limit = data[REQUEST_LEN..]
            .first_chunk::<8>()
            .map_or(u64::MAX, |b| u64::from_le_bytes(*b));
        if let Ok(header) = Header::decode(head, limit) {
            if let Request::Put(put) = &header.request {
                assert!(put.length <= limit);
            }
            assert_eq!(&header.encode(), head);
        }
    }
    if let Some(head) = data.first_chunk::<RESPONSE_LEN>()
        && let Ok(response) = Response::decode(head)
    {
        assert_eq!(&response.encode(), head);
    }
});
