//! PN532 frame decoder: never panics, never loops, on any byte stream.
//! Run: `cargo +nightly fuzz run pn532_frame` in `hal/fuzz`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hal::pn532::frame::fuzz_decode(data);
});
