//! Package#3 parser (spec 7.2.1.3): never panics; what it reads is written
//! in the `{"sc": N, "URI": [...]}` form and read back unchanged.
#![no_main]

use dm_core::Package3;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Package3::parse(data) {
        let written = p.to_vec();
        let again = Package3::parse(&written).unwrap_or_else(|e| {
            panic!(
                "{:?} rewritten unreadable: {e}",
                String::from_utf8_lossy(&written)
            )
        });
        assert_eq!(again, p);
    }
});
