//! A handle comes from whoever pickled it: decoding any bytes is an error or a handle that
//! encodes back to the same bytes, never a panic or an allocation the bytes did not earn.
#![no_main]

use byref_core::Handle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(handle) = Handle::decode(data) {
        let again = handle.encode();
        let back = Handle::decode(&again).expect("an encoded handle decodes");
        assert_eq!(back.encode(), again);
    }
});
