//! BER-TLV parser: never panics on any input, and whatever it accepts encodes and
//! parses back to the same objects. Run: `cargo +nightly fuzz run tlv` in `hal/fuzz`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hal::emv::tlv::fuzz_roundtrip(data);
});
