#![no_main]
//! See `readthrough::fuzzing::codec` for the property checked.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| readthrough::fuzzing::codec(data));
