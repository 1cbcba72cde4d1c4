//! The one error type of the core. The binding layer maps each variant to a Python exception
//! (`src/py/error.rs`); nothing here knows about Python.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum Error {
    /// A file or byte string is not a valid pi_match artefact; the text names the problem.
    #[error("{0}")]
    Format(String),
    /// Two artefacts, or an artefact and a key, were made with different keys.
    #[error(
        "key mismatch: {what} was made with key id {expected}, but {other} has key id {found}"
    )]
    KeyMismatch {
        what: String,
        expected: String,
        /// What has the other key id: "the key given", or another artefact.
        other: String,
        found: String,
    },
    /// Two artefacts cannot be combined (different kind, canonicaliser version or layout).
    #[error("incompatible artefacts: {0}")]
    Incompatible(String),
    /// The operation needs the key (adding or testing values), and none was given.
    #[error("{0} needs the key: load the index with key=... or call attach_key(key)")]
    KeyRequired(String),
    /// Bad argument from the caller (unknown kind, impossible capacity, bad key text...).
    #[error("{0}")]
    Invalid(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: IoErrorEq,
    },
}

/// `std::io::Error` is not `PartialEq`; keep the kind and text so errors compare in tests.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{text}")]
pub struct IoErrorEq {
    pub kind: std::io::ErrorKind,
    pub text: String,
}

impl Error {
    pub fn io(context: impl Into<String>, e: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source: IoErrorEq {
                kind: e.kind(),
                text: e.to_string(),
            },
        }
    }
    pub fn format(msg: impl Into<String>) -> Self {
        Error::Format(msg.into())
    }
}

pub type Result<T> = std::result::Result<T, Error>;
