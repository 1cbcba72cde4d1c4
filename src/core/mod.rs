//! The pure-Rust core: no PyO3 types. Everything here is tested by `cargo test` alone.

pub mod bloom;
pub mod bulk;
pub mod canon;
pub mod csvout;
pub mod eliasfano;
pub mod error;
pub mod estimate;
pub mod files;
pub mod format;
pub mod jsonl;
pub mod key;
pub mod keyed;
pub mod link;
pub mod merge;
pub mod prf;
pub mod psi;
mod sha_x16;
mod sha_x2;
pub mod split;
pub mod tagset;
pub mod text;

pub use error::{Error, Result};
