#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| prottrans_fuzz::safetensors(
    prottrans_fuzz::scratch(),
    data
));
