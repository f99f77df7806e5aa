#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| prottrans_fuzz::spiece_model(
    prottrans_fuzz::scratch(),
    data
));
