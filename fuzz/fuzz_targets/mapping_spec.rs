#![no_main]
//! See `readthrough::fuzzing::mapping_spec` for the property checked.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| readthrough::fuzzing::mapping_spec(data));
