//! A stored object's frame is read back from a store others may write to: parsing any bytes
//! is an error or a layout whose every section lies inside the frame, never a panic.
#![no_main]

use byref_core::{Key, Layout, frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = Key::from_bytes([0; 32]);
    if let Ok(layout) = Layout::parse(data, "fuzz", &key) {
        assert!(layout.stream.end <= data.len());
        for buffer in &layout.buffers {
            assert!(buffer.start <= buffer.end && buffer.end <= data.len());
        }
    }
    // Reading range by range: the header's length from its first bytes, then the prefix.
    let need = frame::header_len(data).min(data.len());
    let _ = Layout::parse_prefix(&data[..need], data.len() as u64, "fuzz", &key);
});
