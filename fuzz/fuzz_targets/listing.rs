//! A page of a listing comes from whatever server a handle or URL names: every count in it is
//! checked against the bytes left before anything is allocated; decoding is an error or a
//! page that encodes back to what decodes the same, never a panic.
#![no_main]

use byref_protocol::ListingPage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(page) = ListingPage::decode(data) {
        assert_eq!(ListingPage::decode(&page.encode()), Ok(page));
    }
});
