//! ClientURI parser (spec 6.1.1): never panics, and whatever it accepts
//! prints back to a string that parses to the same value.
#![no_main]

use dm_core::ClientUri;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(uri) = text.parse::<ClientUri>() {
        let printed = uri.to_string();
        let again: ClientUri = printed
            .parse()
            .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}: {e}"));
        assert_eq!(again, uri, "{text:?} printed as {printed:?}");
    }
});
