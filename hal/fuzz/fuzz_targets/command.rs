//! A command event's data parsed into a command (`proto::wire::parse_command`,
//! what the agent runs on every `event: command`): never panics; an accepted
//! command re-encodes and parses back to itself. Run: `cargo +nightly fuzz
//! run command` in `hal/fuzz`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    proto::wire::fuzz_parse_command(data);
});
