//! Multipart Package#3 (Appendix F): `ResponseBody::decode` never panics
//! under any of a few Content-Types, and what it reads encodes and decodes
//! back to the same response.
#![no_main]

use dm_core::multipart::ResponseBody;
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [&str; 6] = [
    "multipart/form-data; boundary=simple_boundary",
    "multipart/form-data; boundary=b",
    "Multipart/Form-Data; charset=utf-8; boundary=\"dm2-boundary\"",
    "application/vnd.oma.dm.response+json",
    "multipart/form-data",
    "text/plain",
];

fuzz_target!(|data: &[u8]| {
    let Some((selector, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(*selector) % CONTENT_TYPES.len()];
    if let Ok(response) = ResponseBody::decode(content_type, body) {
        let (ct, bytes) = response.encode();
        let again = ResponseBody::decode(&ct, &bytes).unwrap_or_else(|e| {
            panic!(
                "{response:?} encoded as {:?} unreadable: {e}",
                String::from_utf8_lossy(&bytes)
            )
        });
        assert_eq!(again, response);
    }
});
