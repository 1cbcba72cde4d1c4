//! Python exceptions and the one mapping from core errors to them.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::PyErr;

use crate::core::Error;

pyo3::create_exception!(
    pi_match,
    PiMatchError,
    PyValueError,
    "Base class of pi_match's errors (a ValueError)."
);
pyo3::create_exception!(
    pi_match,
    FormatError,
    PiMatchError,
    "Bytes or a file that are not a valid pi_match artefact; the message names the problem."
);
pyo3::create_exception!(
    pi_match,
    KeyMismatchError,
    PiMatchError,
    "An artefact and a key, or two artefacts, made with different keys (both key ids named)."
);
pyo3::create_exception!(
    pi_match,
    IncompatibleError,
    KeyMismatchError,
    "Two artefacts of different identifier kinds, canonicaliser versions or layouts."
);
pyo3::create_exception!(
    pi_match,
    KeyRequiredError,
    PiMatchError,
    "Adding or testing values needs the key, and the artefact was loaded without one."
);

pub struct PyCoreError(pub Error);

impl From<Error> for PyCoreError {
    fn from(e: Error) -> Self {
        PyCoreError(e)
    }
}

impl From<PyCoreError> for PyErr {
    fn from(e: PyCoreError) -> PyErr {
        let msg = e.0.to_string();
        match e.0 {
            Error::Format(_) => FormatError::new_err(msg),
            Error::KeyMismatch { .. } => KeyMismatchError::new_err(msg),
            Error::Incompatible(_) => IncompatibleError::new_err(msg),
            Error::KeyRequired(_) => KeyRequiredError::new_err(msg),
            Error::Invalid(_) => PiMatchError::new_err(msg),
            // pyo3 maps io::Error kinds to the matching OSError subclass
            // (FileNotFoundError, PermissionError...), so callers can catch them as usual.
            Error::Io { source, context } => PyErr::from(std::io::Error::new(
                source.kind,
                format!("{context}: {}", source.text),
            )),
        }
    }
}

/// `KeyMismatchError` for `what`, made with key id `expected`, met with key id `found`.
/// `what` (made with `expected`) against a key given by the caller with id `found`.
pub fn key_mismatch(what: &str, expected: &[u8; 8], found: &[u8; 8]) -> PyErr {
    key_mismatch_between(what, expected, "the key given", found)
}

/// `what` (made with `expected`) against `other`, which has key id `found`.
pub fn key_mismatch_between(what: &str, expected: &[u8; 8], other: &str, found: &[u8; 8]) -> PyErr {
    use crate::core::key::key_id_hex;
    PyCoreError(Error::KeyMismatch {
        what: what.to_string(),
        other: other.to_string(),
        expected: key_id_hex(expected),
        found: key_id_hex(found),
    })
    .into()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("PiMatchError", py.get_type::<PiMatchError>())?;
    m.add("FormatError", py.get_type::<FormatError>())?;
    m.add("KeyMismatchError", py.get_type::<KeyMismatchError>())?;
    m.add("IncompatibleError", py.get_type::<IncompatibleError>())?;
    m.add("KeyRequiredError", py.get_type::<KeyRequiredError>())?;
    Ok(())
}

pyo3::create_exception!(
    pi_match,
    InsecureKeyFileWarning,
    pyo3::exceptions::PyUserWarning,
    "A key file that other users of this machine can read."
);
pyo3::create_exception!(
    pi_match,
    RejectedValuesWarning,
    pyo3::exceptions::PyUserWarning,
    "Some values could not be canonicalised and were treated as absent."
);

pub fn register_warnings(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add(
        "InsecureKeyFileWarning",
        py.get_type::<InsecureKeyFileWarning>(),
    )?;
    m.add(
        "RejectedValuesWarning",
        py.get_type::<RejectedValuesWarning>(),
    )?;
    Ok(())
}
