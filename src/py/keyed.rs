//! What a BloomIndex and a TagSet share: kind, canonicaliser version, PRF and key id
//! (`Tagging`), and the tagging loops around the core that both call with the GIL released.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use numpy::PyArray1;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::error::{key_mismatch, PyCoreError, RejectedValuesWarning};
use super::key::PyKey;
use super::lock::with_read;
use super::values::{extract_column, Column};
use crate::core::bulk::tally;
use crate::core::canon::{Canon, Kind, Reason};
use crate::core::key::{key_id_hex, KeyId, Prf};
use crate::core::keyed::Meta;
use crate::core::prf::{PrfId, ALL_PRFS};
use crate::core::Error;

/// The code `add(hold=...)` gives a valid value it was asked to hold back (never a reason).
pub use crate::core::keyed::HELD;

// The PRF slot is held only to clone or set it, never across a wait, so taking it with the
// GIL held cannot deadlock; object state goes through `super::lock`.
pub(crate) fn prf_read(l: &RwLock<Option<Prf>>) -> RwLockReadGuard<'_, Option<Prf>> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}
pub(crate) fn prf_write(l: &RwLock<Option<Prf>>) -> RwLockWriteGuard<'_, Option<Prf>> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

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

/// How an object's values are tagged: its kind and canonicaliser version, its PRF and the key
/// id it was made with (together the core's `Meta`), and, when the caller supplied the key, the
/// PRF itself.
pub struct Tagging {
    pub kind: Kind,
    pub version: u16,
    pub key_id: KeyId,
    pub prf_id: PrfId,
    prf: RwLock<Option<Prf>>,
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

impl Tagging {
    pub(crate) fn new(
        canon: Canon,
        prf_id: PrfId,
        key_id: KeyId,
        key: Option<&PyKey>,
    ) -> PyResult<Tagging> {
        let k = Tagging {
            kind: canon.kind,
            version: canon.version,
            key_id,
            prf_id,
            prf: RwLock::new(None),
        };
        if let Some(key) = key {
            k.attach(key, "this artefact")?;
        }
        Ok(k)
    }

    pub(crate) fn from_key(canon: Canon, prf_id: PrfId, key: &PyKey) -> Tagging {
        Tagging {
            kind: canon.kind,
            version: canon.version,
            key_id: *key.inner.id(),
            prf_id,
            prf: RwLock::new(Some(key.inner.prf_with(canon.kind, canon.version, prf_id))),
        }
    }

    pub fn canon(&self) -> Canon {
        Canon {
            kind: self.kind,
            version: self.version,
        }
    }

    /// The same kind, version and key id, with the PRF of either parent (a union's result).
    pub(crate) fn joined(&self, other: &Tagging) -> Tagging {
        Tagging {
            kind: self.kind,
            version: self.version,
            key_id: self.key_id,
            prf_id: self.prf_id,
            prf: RwLock::new(self.prf_opt().or_else(|| other.prf_opt())),
        }
    }

    pub(crate) fn attach(&self, key: &PyKey, what: &str) -> PyResult<()> {
        if key.inner.id() != &self.key_id {
            return Err(key_mismatch(what, &self.key_id, key.inner.id()));
        }
        *prf_write(&self.prf) = Some(key.inner.prf_with(self.kind, self.version, self.prf_id));
        Ok(())
    }

    pub(crate) fn prf(&self, op: &str) -> PyResult<Prf> {
        prf_read(&self.prf).clone().ok_or_else(|| {
            PyCoreError(Error::KeyRequired(format!(
                "{op} on an index loaded without its key (key id {})",
                key_id_hex(&self.key_id)
            )))
            .into()
        })
    }

    pub(crate) fn has_key(&self) -> bool {
        prf_read(&self.prf).is_some()
    }

    pub(crate) fn prf_opt(&self) -> Option<Prf> {
        prf_read(&self.prf).clone()
    }

    /// What the object is made under.
    pub(crate) fn meta(&self) -> Meta {
        Meta {
            kind: self.kind,
            version: self.version,
            prf: self.prf_id,
            key_id: self.key_id,
        }
    }

    /// Two artefacts may be combined only with one key, kind, PRF and canonicaliser version
    /// (`core::keyed::Meta`).
    pub(crate) fn check_compatible(&self, other: &Tagging) -> PyResult<()> {
        self.meta()
            .check_compatible(&other.meta())
            .map_err(|e| PyCoreError(e).into())
    }
}

/// `contains` for any keyed structure: tag the values with the GIL released, let `probe` fill
/// the hits of each chunk, then return the bool array (and the reason codes if asked, else a
/// warning counting the values that could not be used).
pub(crate) fn bulk_contains<'py, S: Send + Sync>(
    py: Python<'py>,
    keyed: &Tagging,
    state: &RwLock<S>,
    values: &Bound<'py, PyAny>,
    reasons: bool,
    probe: impl Fn(&S, Canon, &Prf, &Column) -> (Vec<bool>, Vec<u8>) + Send + Sync,
) -> PyResult<Bound<'py, PyAny>> {
    let col = extract_column(values)?;
    let prf = keyed.prf("contains")?;
    let kind = keyed.canon();
    let (hits, codes) = with_read(py, col.len(), state, |st| probe(st, kind, &prf, &col));
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
pub(crate) fn tag_one(
    canon: Canon,
    prf: &Prf,
    value: &Bound<'_, PyAny>,
) -> PyResult<Option<[u8; 32]>> {
    let (mut out, mut scratch) = (String::new(), String::new());
    let ok = if let Ok(s) = value.cast::<PyString>() {
        s.to_str()
            .is_ok_and(|s| canon.canonicalize_into(s, &mut out, &mut scratch).is_ok())
    } else if let Ok(b) = value.cast::<PyBytes>() {
        canon
            .canonicalize_bytes_into(b.as_bytes(), &mut out, &mut scratch)
            .is_ok()
    } else {
        return Err(PyTypeError::new_err(format!(
            "`in` takes a str or bytes identifier, not {}",
            value.get_type().name()?
        )));
    };
    Ok(ok.then(|| prf.tag(out.as_bytes())))
}
