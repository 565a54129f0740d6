//! A same-host server's answer to `LOCATE` comes from whatever server a handle names:
//! decoding is an error or a value that encodes back to what decodes the same, never a panic.
#![no_main]

use byref_protocol::Location;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(location) = Location::decode(data) {
        assert_eq!(Location::decode(&location.encode()), Ok(location));
    }
});
