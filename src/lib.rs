//! pi_match: privacy-preserving breach matching.
//!
//! `core` holds the algorithms (canonicalisers, keyed PRF, split-block Bloom index, exact tag
//! sets, estimators, the artefact format) with no Python types, so `cargo test` needs no
//! libpython. `py` (cargo feature `python`) holds the PyO3 bindings that maturin builds into
//! `pi_match._core`.

pub mod core;

#[cfg(feature = "python")]
mod py;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
