#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| prottrans_fuzz::pytorch(prottrans_fuzz::scratch(), data));
