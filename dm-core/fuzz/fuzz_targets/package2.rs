//! Package#2 parser (spec 7.2.1.2): never panics; the commands it reads
//! are written and read back unchanged.
#![no_main]

use dm_core::Package2;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Package2::parse(data) {
        let written = p.to_vec();
        let again = Package2::parse(&written).unwrap_or_else(|e| {
            panic!(
                "{:?} rewritten unreadable: {e}",
                String::from_utf8_lossy(&written)
            )
        });
        let ok: Vec<_> = p.commands.into_iter().filter(Result::is_ok).collect();
        assert_eq!(again.commands, ok);
    }
});
