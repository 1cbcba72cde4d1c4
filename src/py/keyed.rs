//! What the BloomIndex and TagSet bindings share: parsing kind / version / PRF arguments,
//! bulk `contains` with the GIL released, the rejected-values warning, and `in`.

use std::sync::RwLock;

use numpy::PyArray1;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::error::{PyCoreError, RejectedValuesWarning};
use super::lock::with_read;
use super::values::{extract_column, Column};
use crate::core::bulk::{tally, Item};
use crate::core::canon::{Canon, Kind, Reason};
use crate::core::keyed::{Meta, Tagging};
use crate::core::prf::{PrfId, ALL_PRFS};
use crate::core::Error;

/// The code `add(hold=...)` gives a valid value it was asked to hold back (never a reason).
pub use crate::core::keyed::HELD;

pub fn parse_kind(kind: &str) -> PyResult<Kind> {
    Kind::from_name(kind).ok_or_else(|| {
        let names: Vec<&str> = crate::core::canon::ALL_KINDS
            .iter()
            .map(|k| k.name())
            .collect();
        PyCoreError(Error::Invalid(format!(
            "unknown identifier kind {kind:?}; kinds are {}",
            names.join(", ")
        )))
        .into()
    })
}

/// A PRF by name ("hmac-sha256", "hmac-sm3"), or the error naming those there are.
pub fn parse_prf(name: &str) -> PyResult<PrfId> {
    PrfId::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = ALL_PRFS.iter().map(|p| p.name()).collect();
        PyCoreError(Error::Invalid(format!(
            "unknown PRF {name:?}; PRFs are {}",
            names.join(", ")
        )))
        .into()
    })
}

/// `kind` at `version` (None: the newest), or the error naming the versions there are.
pub fn parse_canon(kind: &str, version: Option<u16>) -> PyResult<Canon> {
    Canon::new(parse_kind(kind)?, version).map_err(|e| PyCoreError(Error::Invalid(e)).into())
}

/// `contains` for any keyed structure: `probe` tags and tests the values under the read lock
/// (the GIL released for large inputs), then the bool array comes back (and the reason codes
/// if asked, else a warning counting the values that could not be used).
pub(crate) fn bulk_contains<'py, S: Send + Sync>(
    py: Python<'py>,
    state: &RwLock<S>,
    values: &Bound<'py, PyAny>,
    reasons: bool,
    probe: impl Fn(&S, &Column) -> crate::core::Result<(Vec<bool>, Vec<u8>)> + Send + Sync,
) -> PyResult<Bound<'py, PyAny>> {
    let col = extract_column(values)?;
    let (hits, codes) =
        with_read(py, col.len(), state, |st| probe(st, &col)).map_err(PyCoreError)?;
    let hits = PyArray1::from_vec(py, hits).into_any();
    if reasons {
        let codes = PyArray1::from_vec(py, codes).into_any();
        return Ok((hits, codes).into_pyobject(py)?.into_any());
    }
    warn_rejected(py, &codes)?;
    Ok(hits)
}

pub(crate) fn warn_rejected(py: Python<'_>, codes: &[u8]) -> PyResult<()> {
    let mut counts = [0u64; 256];
    tally(codes, &mut counts);
    let bad: Vec<String> = (1..=255u8)
        .filter(|&c| counts[usize::from(c)] > 0)
        .filter_map(|c| {
            Reason::from_code(c).map(|r| format!("{} {}", counts[usize::from(c)], r.name()))
        })
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    let msg = format!(
        "{} of {} values could not be used and count as not found ({}); pass reasons=True to get them per value",
        codes.iter().filter(|&&c| c != 0).count(),
        codes.len(),
        bad.join(", ")
    );
    PyErr::warn(
        py,
        &py.get_type::<RejectedValuesWarning>(),
        &std::ffi::CString::new(msg).unwrap_or_default(),
        2,
    )
}

/// Canonicalise and tag one Python value (for `in`); None when it cannot be used. Anything
/// but str or bytes is a TypeError, not a silent "not found": `12345 in index` has already
/// lost the leading zeros and the type of what the caller meant.
pub(crate) fn tag_one(tagging: &Tagging, value: &Bound<'_, PyAny>) -> PyResult<Option<[u8; 32]>> {
    let tag = if let Ok(s) = value.cast::<PyString>() {
        // a str that is not UTF-8 (lone surrogates) is not an identifier
        tagging.tag_one(s.to_str().map_or(Item::NotText, Item::Str), "`in`")
    } else if let Ok(b) = value.cast::<PyBytes>() {
        tagging.tag_one(Item::Bytes(b.as_bytes()), "`in`")
    } else {
        return Err(PyTypeError::new_err(format!(
            "`in` takes a str or bytes identifier, not {}",
            value.get_type().name()?
        )));
    };
    Ok(tag.map_err(PyCoreError)?)
}

/// Every one of `metas` compatible with the first: one key, kind, PRF and version.
pub(crate) fn check_all(metas: impl IntoIterator<Item = Meta>) -> PyResult<()> {
    let mut metas = metas.into_iter();
    if let Some(first) = metas.next() {
        for m in metas {
            first.check_compatible(&m).map_err(PyCoreError)?;
        }
    }
    Ok(())
}
