//! Fuzz target: see boxwright::fuzzing::inventory (the corpus replays in tests/fuzz_corpus.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| boxwright::fuzzing::inventory(data));
