#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mockimg_fuzz::config_tree(data);
});
