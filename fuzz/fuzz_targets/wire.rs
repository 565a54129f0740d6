//! Request headers come from anyone who can reach the daemon's port, responses from any
//! server a handle names: decoding is an error or a value that encodes back to the same
//! bytes, never a panic.
#![no_main]

use byref_protocol::{ListingPage, Location, REQUEST_LEN, RESPONSE_LEN, Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(head) = data.first_chunk::<REQUEST_LEN>() {
        // The limit on bodies, from the bytes after the header (a server's --max-object).
        let limit = data[REQUEST_LEN..]
            .first_chunk::<8>()
            .map_or(u64::MAX, |b| u64::from_le_bytes(*b));
        if let Ok(request) = Request::decode(head, limit) {
            assert!(request.length <= limit);
            assert_eq!(&request.encode(), head);
        }
    }
    if let Some(head) = data.first_chunk::<RESPONSE_LEN>()
        && let Ok(response) = Response::decode(head)
    {
        assert_eq!(&response.encode(), head);
    }
    // A same-host server's answer to LOCATE.
    if let Ok(location) = Location::decode(data) {
        assert_eq!(Location::decode(&location.encode()), Ok(location));
    }
    // A server's page of a listing.
    if let Ok(page) = ListingPage::decode(data) {
        assert_eq!(ListingPage::decode(&page.encode()), Ok(page));
    }
});
