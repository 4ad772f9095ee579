#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mockimg_fuzz::manifest(data);
});
