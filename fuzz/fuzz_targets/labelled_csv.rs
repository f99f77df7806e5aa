#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| prottrans_fuzz::labelled_csv(
    prottrans_fuzz::scratch(),
    data
));
