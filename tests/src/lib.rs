//! End-to-end tests of the workspace live in `tests/`; this crate has no
//! library code of its own.
