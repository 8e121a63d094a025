//! Fuzz target: see boxwright::fuzzing::recipe (the corpus replays in tests/fuzz_corpus.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| boxwright::fuzzing::recipe(data));
