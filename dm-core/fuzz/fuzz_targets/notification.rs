//! Package#0 decoder (spec 7.1.1): never panics; what it accepts encodes
//! and decodes back to the same notification; verify never panics.
#![no_main]

use dm_core::notification::{self, Notification};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = notification::verify(data, b"secret", b"auth");
    if let Ok(n) = Notification::decode(data) {
        let bytes = n
            .encode()
            .unwrap_or_else(|e| panic!("{n:?} decoded but does not encode: {e}"));
        assert_eq!(Notification::decode(&bytes), Ok(n));
    }
});
