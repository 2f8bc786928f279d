//! The command stream's SSE parser (`proto::sse`): never panics, never holds
//! a line or an event over its bound, and gives the same events however the
//! bytes are split into chunks. Run: `cargo +nightly fuzz run sse` in
//! `hal/fuzz`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    proto::sse::fuzz_parse(data);
});
