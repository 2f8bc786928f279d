//! DOL parser and filler: never panics, never allocates for a length the
//! card supplied beyond the bounds (entry ≤ 255, total ≤ 252), and a filled
//! DOL is exactly as long as the entries ask. Run: `cargo +nightly fuzz run
//! dol` in `hal/fuzz`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hal::emv::fuzz_dol(data);
});
