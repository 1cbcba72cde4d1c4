//! `BloomIndex`, `TagSet`, `Estimate` and `AddReport`: argument handling, GIL release and
//! error mapping around the core. No algorithm lives here.

use std::path::PathBuf;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use numpy::PyArray1;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use super::error::{key_mismatch, key_mismatch_between, PyCoreError, RejectedValuesWarning};
use super::key::PyKey;
use super::lock::{
    self, maybe_detach, read_nogil, with_read, with_write, write_and_read, ReadMany,
};
use super::values::{extract_column, Column};
use crate::core::bloom::{self, Bloom};
use crate::core::bulk::{tag_chunks, tally};
use crate::core::canon::{Canon, Kind, Reason};
use crate::core::estimate::{self, Estimate};
use crate::core::format::{self, Artefact, Payload, PayloadRef, Section, SectionRef};
use crate::core::key::{key_id_hex, KeyId, Prf};
use crate::core::prf::{PrfId, ALL_PRFS};
use crate::core::tagset::{tag64, TagSet};
use crate::core::Error;

/// The code `add(hold=...)` gives a valid value it was asked to hold back (never a reason).
pub const HELD: u8 = 255;

// The PRF slot is held only to clone or set it, never across a wait, so taking it with the
// GIL held cannot deadlock; object state goes through `super::lock`.
fn prf_read(l: &RwLock<Option<Prf>>) -> RwLockReadGuard<'_, Option<Prf>> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}
fn prf_write(l: &RwLock<Option<Prf>>) -> RwLockWriteGuard<'_, Option<Prf>> {
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

/// What every keyed artefact shares: its kind and canonicaliser version, the key id it was
/// made with, and (when the caller supplied the key) the PRF.
pub struct Keyed {
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

impl Keyed {
    fn new(canon: Canon, prf_id: PrfId, key_id: KeyId, key: Option<&PyKey>) -> PyResult<Keyed> {
        let k = Keyed {
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

    fn from_key(canon: Canon, prf_id: PrfId, key: &PyKey) -> Keyed {
        Keyed {
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
    fn joined(&self, other: &Keyed) -> Keyed {
        Keyed {
            kind: self.kind,
            version: self.version,
            key_id: self.key_id,
            prf_id: self.prf_id,
            prf: RwLock::new(self.prf_opt().or_else(|| other.prf_opt())),
        }
    }

    fn attach(&self, key: &PyKey, what: &str) -> PyResult<()> {
        if key.inner.id() != &self.key_id {
            return Err(key_mismatch(what, &self.key_id, key.inner.id()));
        }
        *prf_write(&self.prf) = Some(key.inner.prf_with(self.kind, self.version, self.prf_id));
        Ok(())
    }

    fn prf(&self, op: &str) -> PyResult<Prf> {
        prf_read(&self.prf).clone().ok_or_else(|| {
            PyCoreError(Error::KeyRequired(format!(
                "{op} on an index loaded without its key (key id {})",
                key_id_hex(&self.key_id)
            )))
            .into()
        })
    }

    fn has_key(&self) -> bool {
        prf_read(&self.prf).is_some()
    }

    fn prf_opt(&self) -> Option<Prf> {
        prf_read(&self.prf).clone()
    }

    /// Two artefacts may be combined only with one key, kind and canonicaliser version.
    fn check_compatible(&self, other: &Keyed) -> PyResult<()> {
        if self.key_id != other.key_id {
            return Err(key_mismatch_between(
                "one artefact",
                &self.key_id,
                "the other",
                &other.key_id,
            ));
        }
        if self.kind != other.kind {
            return Err(PyCoreError(Error::Incompatible(format!(
                "one holds {} and the other {}",
                self.kind.name(),
                other.kind.name()
            )))
            .into());
        }
        if self.prf_id != other.prf_id {
            return Err(PyCoreError(Error::Incompatible(format!(
                "one was made with the PRF {} and the other with {}; tags of different PRFs \
                 never match: build both with the same prf",
                self.prf_id.name(),
                other.prf_id.name()
            )))
            .into());
        }
        if self.version != other.version {
            return Err(PyCoreError(Error::Incompatible(format!(
                "one was made with {} canonicaliser version {} and the other with version {}; \
                 rebuild one with canon_version={} (--canon-version {})",
                self.kind.name(),
                self.version,
                other.version,
                self.version.min(other.version),
                self.version.min(other.version)
            )))
            .into());
        }
        Ok(())
    }
}

/// Tag every value of the column; `on_valid(i, tag)` for each usable one. Returns the reason
/// codes (0 = used) for all values, in order.
fn for_each_tag(
    kind: Canon,
    prf: &Prf,
    col: &Column,
    mut on_chunk: impl FnMut(usize, &[u8], &[[u8; 32]]),
) -> Vec<u8> {
    let mut codes = Vec::with_capacity(col.len());
    let mut base = 0;
    for part in &col.parts {
        tag_chunks(kind, prf, part, |start, c, t| {
            on_chunk(base + start, c, t);
            codes.extend_from_slice(c);
        });
        base += crate::core::bulk::Values::len(part);
    }
    codes
}

/// `contains` for any keyed structure: tag the values with the GIL released, let `probe` fill
/// the hits of each chunk, then return the bool array (and the reason codes if asked, else a
/// warning counting the values that could not be used).
fn bulk_contains<'py, S: Send + Sync>(
    py: Python<'py>,
    keyed: &Keyed,
    state: &RwLock<S>,
    values: &Bound<'py, PyAny>,
    reasons: bool,
    probe: impl Fn(&S, &[[u8; 32]], &[u8], &mut [bool]) + Send + Sync,
) -> PyResult<Bound<'py, PyAny>> {
    let col = extract_column(values)?;
    let prf = keyed.prf("contains")?;
    let kind = keyed.canon();
    let (hits, codes) = with_read(py, col.len(), state, |st| {
        let mut hits = vec![false; col.len()];
        let codes = for_each_tag(kind, &prf, &col, |start, c, t| {
            probe(st, t, c, &mut hits[start..start + c.len()]);
        });
        (hits, codes)
    });
    let hits = PyArray1::from_vec(py, hits).into_any();
    if reasons {
        let codes = PyArray1::from_vec(py, codes).into_any();
        return Ok((hits, codes).into_pyobject(py)?.into_any());
    }
    warn_rejected(py, &codes)?;
    Ok(hits)
}

/// The 64-bit tags of the values whose code is 0.
fn push_valid_tag64(out: &mut Vec<u64>, codes: &[u8], tags: &[[u8; 32]]) {
    out.extend(
        codes
            .iter()
            .zip(tags)
            .filter(|(c, _)| **c == 0)
            .map(|(_, t)| tag64(t)),
    );
}

fn warn_rejected(py: Python<'_>, codes: &[u8]) -> PyResult<()> {
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
fn tag_one(canon: Canon, prf: &Prf, value: &Bound<'_, PyAny>) -> PyResult<Option<[u8; 32]>> {
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

// ---- Estimate ----------------------------------------------------------------------------

type EstimateArgs = (f64, f64, f64, String);

/// A count with its 95 % interval and how it was obtained.
///
/// >>> Estimate(10.0, 8.0, 12.0, "bloom_popcount")
/// Estimate(value=10.0, low=8.0, high=12.0, method='bloom_popcount')
#[pyclass(name = "Estimate", module = "pi_match._core", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyEstimate {
    #[pyo3(get)]
    value: f64,
    #[pyo3(get)]
    low: f64,
    #[pyo3(get)]
    high: f64,
    #[pyo3(get)]
    method: String,
}

impl From<Estimate> for PyEstimate {
    fn from(e: Estimate) -> Self {
        PyEstimate {
            value: e.value,
            low: e.low,
            high: e.high,
            method: e.method.to_string(),
        }
    }
}

#[pymethods]
impl PyEstimate {
    #[new]
    fn new(value: f64, low: f64, high: f64, method: String) -> PyEstimate {
        PyEstimate {
            value,
            low,
            high,
            method,
        }
    }

    /// True when low == value == high came from exact sets.
    #[getter]
    fn exact(&self) -> bool {
        self.method == "exact"
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("value", self.value)?;
        d.set_item("low", self.low)?;
        d.set_item("high", self.high)?;
        d.set_item("method", &self.method)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Estimate(value={:?}, low={:?}, high={:?}, method='{}')",
            self.value, self.low, self.high, self.method
        )
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, EstimateArgs)> {
        let s = slf.get();
        Ok((
            slf.get_type().into_any(),
            (s.value, s.low, s.high, s.method.clone()),
        ))
    }
}

// ---- AddReport ---------------------------------------------------------------------------

/// What `add` did with each value: how many were used, missing (empty or a placeholder) or
/// rejected, by reason, and the reason code of every value (`pi_match.REASONS[code]`).
#[pyclass(name = "AddReport", module = "pi_match._core", frozen)]
pub struct PyAddReport {
    counts: Box<[u64; 256]>,
    codes: Py<PyArray1<u8>>,
}

impl PyAddReport {
    fn new(py: Python<'_>, codes: Vec<u8>) -> PyAddReport {
        let mut counts = Box::new([0u64; 256]);
        tally(&codes, &mut counts);
        PyAddReport {
            counts,
            codes: PyArray1::from_vec(py, codes).unbind(),
        }
    }

    fn sum(&self, pred: impl Fn(Reason) -> bool) -> u64 {
        (1..=255u8)
            .filter_map(Reason::from_code)
            .filter(|r| pred(*r))
            .map(|r| self.counts[usize::from(r.code())])
            .sum()
    }
}

#[pymethods]
impl PyAddReport {
    /// Values given.
    #[getter]
    fn rows(&self) -> u64 {
        self.counts.iter().sum()
    }
    /// Values canonicalised and added (repeats included).
    #[getter]
    fn valid(&self) -> u64 {
        self.counts[0]
    }
    /// Same as `valid`.
    #[getter]
    fn added(&self) -> u64 {
        self.counts[0]
    }
    /// Empty values and placeholders (`-`, `NULL`, `\N`...): absent, not invalid.
    #[getter]
    fn missing(&self) -> u64 {
        self.sum(Reason::is_missing)
    }
    /// Values present but invalid.
    #[getter]
    fn rejected(&self) -> u64 {
        self.sum(|r| !r.is_missing())
    }
    /// Invalid values by reason name.
    #[getter]
    fn rejected_by_reason<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.by(py, |r| !r.is_missing())
    }
    /// Missing values by reason name (`empty`, `placeholder`).
    #[getter]
    fn missing_by_reason<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.by(py, Reason::is_missing)
    }
    /// Reason code per value, 0 where the value was used.
    #[getter]
    fn codes<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u8>> {
        self.codes.bind(py).clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "AddReport(rows={}, valid={}, missing={}, rejected={})",
            self.rows(),
            self.valid(),
            self.missing(),
            self.rejected()
        )
    }
}

impl PyAddReport {
    fn by<'py>(
        &self,
        py: Python<'py>,
        pred: impl Fn(Reason) -> bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for r in (1..=255u8)
            .filter_map(Reason::from_code)
            .filter(|r| pred(*r))
        {
            let n = self.counts[usize::from(r.code())];
            if n > 0 {
                d.set_item(r.name(), n)?;
            }
        }
        Ok(d)
    }
}

// ---- BloomIndex --------------------------------------------------------------------------

struct BloomState {
    bloom: Bloom,
    items: u64,
    created: u64,
}

/// A keyed split-block Bloom index of one identifier kind.
///
/// >>> key = Key.from_bytes(bytes(range(32)))
/// >>> idx = BloomIndex(key, "cn_mobile", capacity=1000)
/// >>> idx.add(["138 0013 8000", "+86 139-0000-0000", "12345"]).valid
/// 2
/// >>> "13800138000" in idx
/// True
#[pyclass(name = "BloomIndex", module = "pi_match._core", frozen)]
pub struct PyBloomIndex {
    keyed: Keyed,
    state: RwLock<BloomState>,
}

impl PyBloomIndex {
    fn from_parts(keyed: Keyed, bloom: Bloom, items: u64, created: u64) -> PyBloomIndex {
        PyBloomIndex {
            keyed,
            state: RwLock::new(BloomState {
                bloom,
                items,
                created,
            }),
        }
    }

    /// `f` on this object as a section to write. Call without the GIL (it waits for the lock).
    pub fn section_ref<R>(&self, f: impl FnOnce(SectionRef<'_>, u64) -> R) -> R {
        let st = read_nogil(&self.state);
        f(
            SectionRef {
                kind: self.keyed.kind,
                canon_version: self.keyed.version,
                prf: self.keyed.prf_id,
                items: st.items,
                payload: PayloadRef::Bloom(&st.bloom),
            },
            st.created,
        )
    }

    pub fn raw_key_id(&self) -> KeyId {
        self.keyed.key_id
    }
}

#[pymethods]
impl PyBloomIndex {
    /// An empty index for `capacity` distinct values of `kind` at false-positive rate `fpr`.
    #[new]
    #[pyo3(signature = (key, kind, *, capacity, fpr = 1e-6, canon_version = None, prf = "hmac-sha256"))]
    fn new(
        key: PyRef<'_, PyKey>,
        kind: &str,
        capacity: u64,
        fpr: f64,
        canon_version: Option<u16>,
        prf: &str,
    ) -> PyResult<PyBloomIndex> {
        let kind = parse_canon(kind, canon_version)?;
        let prf = parse_prf(prf)?;
        let bloom = Bloom::with_capacity(capacity, fpr).map_err(PyCoreError)?;
        Ok(PyBloomIndex::from_parts(
            Keyed::from_key(kind, prf, &key),
            bloom,
            0,
            now_unix(),
        ))
    }

    /// Canonicalise, tag and insert `values` (a list of str, a numpy array of str/bytes, or
    /// an Arrow array / chunked array). Invalid values are skipped and reported. With
    /// `tag_set=` (a TagSet of the same key and kind) the same tags go into it too, so an
    /// exact set costs no second pass of canonicalising and hashing. With `hold=` (a numpy
    /// bool array, one per value) the marked values that are valid are not inserted but get
    /// code `HELD` (255, in none of the report's counts): the caller decides them later, as
    /// `pi-match build` does for values that may be Excel's rounding.
    #[pyo3(signature = (values, *, tag_set = None, hold = None))]
    fn add(
        &self,
        py: Python<'_>,
        values: &Bound<'_, PyAny>,
        tag_set: Option<PyRef<'_, PyTagSet>>,
        hold: Option<numpy::PyReadonlyArray1<'_, bool>>,
    ) -> PyResult<PyAddReport> {
        let col = extract_column(values)?;
        let prf = self.keyed.prf("add")?;
        if let Some(t) = &tag_set {
            self.keyed.check_compatible(&t.keyed)?;
        }
        let hold = match &hold {
            Some(h) => Some(
                h.as_slice()
                    .map_err(|e| PyCoreError(Error::Invalid(e.to_string())))?,
            ),
            None => None,
        };
        if hold.is_some_and(|h| h.len() != col.len()) {
            return Err(PyCoreError(Error::Invalid(format!(
                "hold has {} flags for {} values",
                hold.map_or(0, <[bool]>::len),
                col.len()
            )))
            .into());
        }
        let tag_set: Option<&PyTagSet> = tag_set.as_deref();
        let kind = self.keyed.canon();
        let (codes, exact) = with_write(py, col.len(), &self.state, |st| {
            let mut valid = 0u64;
            let mut exact = Vec::new();
            let mut held = Vec::new();
            let codes = for_each_tag(kind, &prf, &col, |start, c, t| {
                let c = match hold {
                    Some(h) if h[start..start + c.len()].contains(&true) => {
                        held.clear();
                        held.extend(
                            c.iter()
                                .zip(&h[start..start + c.len()])
                                .map(|(&code, &hold)| if hold && code == 0 { HELD } else { code }),
                        );
                        &held[..]
                    }
                    _ => c,
                };
                st.bloom.insert_tags_where(t, c);
                valid += c.iter().filter(|&&c| c == 0).count() as u64;
                if tag_set.is_some() {
                    push_valid_tag64(&mut exact, c, t);
                }
            });
            st.items += valid;
            let mut codes = codes;
            if let Some(h) = hold {
                for (code, &hold) in codes.iter_mut().zip(h) {
                    if hold && *code == 0 {
                        *code = HELD;
                    }
                }
            }
            (codes, exact)
        });
        // The index's lock is released before the tag set's is taken: never two at once.
        if let Some(ts) = tag_set {
            with_write(py, exact.len(), &ts.state, |t| t.set.extend(exact));
        }
        Ok(PyAddReport::new(py, codes))
    }

    /// Test every value: a numpy bool array. Values that cannot be canonicalised are False;
    /// a `RejectedValuesWarning` counts them, or `reasons=True` returns
    /// `(hits, reason_codes)` instead.
    #[pyo3(signature = (values, *, reasons = false))]
    fn contains<'py>(
        &self,
        py: Python<'py>,
        values: &Bound<'py, PyAny>,
        reasons: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        bulk_contains(
            py,
            &self.keyed,
            &self.state,
            values,
            reasons,
            |st, t, c, out| {
                st.bloom.contains_where(t, c, out);
            },
        )
    }

    fn __contains__(&self, value: &Bound<'_, PyAny>) -> PyResult<bool> {
        let prf = self.keyed.prf("`in`")?;
        Ok(tag_one(self.keyed.canon(), &prf, value)?
            .is_some_and(|t| lock::read(value.py(), &self.state).bloom.contains_tag(&t)))
    }

    /// How many of the distinct valid `values` are in this index, corrected for false
    /// positives: `(estimate, distinct_probed, hits, fpr)`.
    fn count_in(
        &self,
        py: Python<'_>,
        values: &Bound<'_, PyAny>,
    ) -> PyResult<(PyEstimate, u64, u64, f64)> {
        let col = extract_column(values)?;
        let prf = self.keyed.prf("count_in")?;
        let kind = self.keyed.canon();
        Ok(with_read(py, col.len(), &self.state, |st| {
            let mut tags: Vec<[u8; 32]> = Vec::new();
            for_each_tag(kind, &prf, &col, |_, c, t| {
                tags.extend(c.iter().zip(t).filter(|(c, _)| **c == 0).map(|(_, t)| *t));
            });
            tags.sort_unstable();
            tags.dedup();
            let codes = vec![0u8; tags.len()];
            let mut hit = vec![false; tags.len()];
            st.bloom.contains_where(&tags, &codes, &mut hit);
            let hits = hit.iter().filter(|&&h| h).count() as u64;
            let eps = st.bloom.fill_fpr();
            let n = tags.len() as u64;
            (estimate::probe_count(n, hits, eps).into(), n, hits, eps)
        }))
    }

    /// Distinct values in the index, estimated from the share of set bits, with its 95 %
    /// interval.
    fn estimate_count(&self, py: Python<'_>) -> PyEstimate {
        py.detach(|| estimate::bloom_count(&read_nogil(&self.state).bloom).into())
    }

    /// The expected false-positive rate of a lookup once `n` distinct values are in the index
    /// (default: the current estimate).
    #[pyo3(signature = (n = None))]
    fn expected_fpr(&self, py: Python<'_>, n: Option<f64>) -> f64 {
        let n = n.unwrap_or_else(|| self.estimate_count(py).value);
        let st = lock::read(py, &self.state);
        bloom::expected_fpr(n, st.bloom.log2_blocks(), st.bloom.blocks_per_key())
    }

    /// Union with another index of the same key, kind and layout (the larger is folded to the
    /// smaller size first). The result has the key if either input had it.
    fn union(&self, py: Python<'_>, other: PyRef<'_, PyBloomIndex>) -> PyResult<PyBloomIndex> {
        self.keyed.check_compatible(&other.keyed)?;
        let other: &PyBloomIndex = &other;
        let (bloom, items) = py.detach(|| {
            let g = ReadMany::take(&[&self.state, &other.state]);
            let (a, b) = (g.get(0), g.get(1));
            (a.bloom.union(&b.bloom), a.items + b.items)
        });
        let bloom = bloom.map_err(PyCoreError)?;
        let keyed = self.keyed.joined(&other.keyed);
        Ok(PyBloomIndex::from_parts(keyed, bloom, items, now_unix()))
    }

    fn __or__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        match other.cast::<PyBloomIndex>() {
            Ok(o) => Ok(Py::new(py, self.union(py, o.borrow())?)?.into_any()),
            Err(_) => Ok(py.NotImplemented()),
        }
    }

    /// Union `other` into this index in place (`a |= b`): no new memory when the sizes match.
    fn update(&self, py: Python<'_>, other: PyRef<'_, PyBloomIndex>) -> PyResult<()> {
        self.keyed.check_compatible(&other.keyed)?;
        let other: &PyBloomIndex = &other;
        if std::ptr::eq(self, other) {
            return Ok(()); // a ∪ a = a (and one lock cannot be held twice)
        }
        py.detach(|| {
            let (mut st, o) = write_and_read(&self.state, &other.state);
            st.items += o.items;
            st.bloom.union_in_place(&o.bloom)
        })
        .map_err(PyCoreError)?;
        Ok(())
    }

    fn __ior__(&self, py: Python<'_>, other: PyRef<'_, PyBloomIndex>) -> PyResult<()> {
        self.update(py, other)
    }

    /// Attach the key to an index loaded without one (checks the key id).
    fn attach_key(&self, key: PyRef<'_, PyKey>) -> PyResult<()> {
        self.keyed.attach(&key, "this index")
    }

    /// Write the index to `path` (atomically: a temporary file, then rename).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let kid = self.keyed.key_id;
        py.detach(|| self.section_ref(|s, created| format::save(&path, &kid, created, &[s])))
            .map_err(PyCoreError)?;
        Ok(())
    }

    /// The artefact file's bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let kid = self.keyed.key_id;
        let v = py
            .detach(|| self.section_ref(|s, created| format::to_bytes(&kid, created, &[s])))
            .map_err(PyCoreError)?;
        Ok(PyBytes::new(py, &v))
    }

    /// An index from `to_bytes()` output. Without `key` it can be counted, merged and
    /// compared; `add` and `contains` need the key.
    #[staticmethod]
    #[pyo3(signature = (data, *, key = None))]
    fn from_bytes(data: &[u8], key: Option<PyRef<'_, PyKey>>) -> PyResult<PyBloomIndex> {
        let art = Artefact::from_bytes(data).map_err(PyCoreError)?;
        match single(art, "BloomIndex")? {
            Obj::Bloom(b) => {
                if let Some(k) = key {
                    b.keyed.attach(&k, "this index")?;
                }
                Ok(b)
            }
            Obj::Tags(_) => Err(PyCoreError(Error::format(
                "these bytes hold a TagSet, not a BloomIndex; use TagSet.from_bytes or pi_match.load",
            ))
            .into()),
        }
    }

    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let f = py.import("pi_match._core")?.getattr("_restore")?;
        Ok((f, (self.to_bytes(py)?,)))
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyBloomIndex>().is_ok_and(|o| {
            let o = o.get();
            o.keyed.canon() == self.keyed.canon()
                && o.keyed.prf_id == self.keyed.prf_id
                && o.keyed.key_id == self.keyed.key_id
                && (std::ptr::eq(o, self)
                    || other.py().detach(|| {
                        let g = ReadMany::take(&[&o.state, &self.state]);
                        g.get(0).bloom == g.get(1).bloom
                    }))
        })
    }

    #[getter]
    fn kind(&self) -> &'static str {
        self.keyed.kind.name()
    }
    #[getter]
    fn key_id(&self) -> String {
        key_id_hex(&self.keyed.key_id)
    }
    #[getter]
    fn has_key(&self) -> bool {
        self.keyed.has_key()
    }
    #[getter]
    fn canon_version(&self) -> u16 {
        self.keyed.version
    }
    /// The PRF the tags are made with: "hmac-sha256" or "hmac-sm3".
    #[getter]
    fn prf(&self) -> &'static str {
        self.keyed.prf_id.name()
    }
    #[getter]
    fn num_blocks(&self, py: Python<'_>) -> u64 {
        lock::read(py, &self.state).bloom.num_blocks()
    }
    #[getter]
    fn blocks_per_key(&self, py: Python<'_>) -> u8 {
        lock::read(py, &self.state).bloom.blocks_per_key()
    }
    /// Size of the filter in bytes.
    #[getter]
    fn size_bytes(&self, py: Python<'_>) -> usize {
        lock::read(py, &self.state).bloom.byte_len()
    }
    /// Valid values added so far, repeats included.
    #[getter]
    fn items_added(&self, py: Python<'_>) -> u64 {
        lock::read(py, &self.state).items
    }
    /// Unix time the index was created.
    #[getter]
    fn created(&self, py: Python<'_>) -> u64 {
        lock::read(py, &self.state).created
    }
    /// Whether the filter is read in place from a memory-mapped file.
    #[getter]
    fn is_mapped(&self, py: Python<'_>) -> bool {
        lock::read(py, &self.state).bloom.is_mapped()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let st = lock::read(py, &self.state);
        format!(
            "BloomIndex(kind='{}', key_id='{}', blocks=2^{}, blocks_per_key={}, items_added={}{})",
            self.keyed.kind.name(),
            key_id_hex(&self.keyed.key_id),
            st.bloom.log2_blocks(),
            st.bloom.blocks_per_key(),
            st.items,
            if self.keyed.has_key() { "" } else { ", no key" }
        )
    }
}

// ---- TagSet ------------------------------------------------------------------------------

struct TagState {
    set: TagSet,
    created: u64,
}

/// An exact set of 64-bit keyed tags of one identifier kind: exact counts, intersections and
/// unions among artefacts made with one key.
///
/// >>> key = Key.from_bytes(bytes(range(32)))
/// >>> a = TagSet(key, "email"); _ = a.add(["A@Example.com", "b@example.com"])
/// >>> b = TagSet(key, "email"); _ = b.add(["a@example.com "])
/// >>> len(a & b), len(a | b)
/// (1, 2)
#[pyclass(name = "TagSet", module = "pi_match._core", frozen)]
pub struct PyTagSet {
    keyed: Keyed,
    state: RwLock<TagState>,
}

impl PyTagSet {
    fn from_parts(keyed: Keyed, set: TagSet, created: u64) -> PyTagSet {
        PyTagSet {
            keyed,
            state: RwLock::new(TagState { set, created }),
        }
    }

    /// `f` on this object as a section to write. Call without the GIL (it waits for the lock).
    pub fn section_ref<R>(&self, f: impl FnOnce(SectionRef<'_>, u64) -> R) -> R {
        let st = read_nogil(&self.state);
        f(
            SectionRef {
                kind: self.keyed.kind,
                canon_version: self.keyed.version,
                prf: self.keyed.prf_id,
                items: st.set.len() as u64,
                payload: PayloadRef::Tags(&st.set),
            },
            st.created,
        )
    }

    pub fn raw_key_id(&self) -> KeyId {
        self.keyed.key_id
    }

    fn combine(
        &self,
        py: Python<'_>,
        other: &PyTagSet,
        op: fn(&TagSet, &TagSet) -> TagSet,
    ) -> PyResult<PyTagSet> {
        self.keyed.check_compatible(&other.keyed)?;
        let set = py.detach(|| {
            let g = ReadMany::take(&[&self.state, &other.state]);
            op(&g.get(0).set, &g.get(1).set)
        });
        let keyed = self.keyed.joined(&other.keyed);
        Ok(PyTagSet::from_parts(keyed, set, now_unix()))
    }
}

#[pymethods]
impl PyTagSet {
    #[new]
    #[pyo3(signature = (key, kind, *, canon_version = None, prf = "hmac-sha256"))]
    fn new(
        key: PyRef<'_, PyKey>,
        kind: &str,
        canon_version: Option<u16>,
        prf: &str,
    ) -> PyResult<PyTagSet> {
        Ok(PyTagSet::from_parts(
            Keyed::from_key(parse_canon(kind, canon_version)?, parse_prf(prf)?, &key),
            TagSet::new(),
            now_unix(),
        ))
    }

    /// Canonicalise, tag and add `values` (as for `BloomIndex.add`).
    fn add(&self, py: Python<'_>, values: &Bound<'_, PyAny>) -> PyResult<PyAddReport> {
        let col = extract_column(values)?;
        let prf = self.keyed.prf("add")?;
        let kind = self.keyed.canon();
        // Tags are made before the lock is taken: the lock guards only the merge.
        let (codes, new) = maybe_detach(py, col.len(), || {
            let mut new = Vec::with_capacity(col.len());
            let codes = for_each_tag(kind, &prf, &col, |_, c, t| push_valid_tag64(&mut new, c, t));
            (codes, new)
        });
        with_write(py, new.len(), &self.state, |st| st.set.extend(new));
        Ok(PyAddReport::new(py, codes))
    }

    /// As `BloomIndex.contains`, but exact.
    #[pyo3(signature = (values, *, reasons = false))]
    fn contains<'py>(
        &self,
        py: Python<'py>,
        values: &Bound<'py, PyAny>,
        reasons: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        bulk_contains(
            py,
            &self.keyed,
            &self.state,
            values,
            reasons,
            |st, t, c, out| {
                let set = &st.set;
                for ((tag, code), hit) in t.iter().zip(c).zip(out.iter_mut()) {
                    *hit = *code == 0 && set.contains(tag64(tag));
                }
            },
        )
    }

    fn __contains__(&self, value: &Bound<'_, PyAny>) -> PyResult<bool> {
        let prf = self.keyed.prf("`in`")?;
        Ok(tag_one(self.keyed.canon(), &prf, value)?
            .is_some_and(|t| lock::read(value.py(), &self.state).set.contains(tag64(&t))))
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        lock::read(py, &self.state).set.len()
    }

    /// As `BloomIndex.count_in`, exact: `(estimate, distinct_probed, hits, 0.0)`.
    fn count_in(
        &self,
        py: Python<'_>,
        values: &Bound<'_, PyAny>,
    ) -> PyResult<(PyEstimate, u64, u64, f64)> {
        let col = extract_column(values)?;
        let prf = self.keyed.prf("count_in")?;
        let kind = self.keyed.canon();
        Ok(py.detach(|| {
            let mut mine = Vec::new();
            for_each_tag(kind, &prf, &col, |_, c, t| {
                push_valid_tag64(&mut mine, c, t)
            });
            let mine = TagSet::from_unsorted(mine);
            let hits = mine.intersection_len(&read_nogil(&self.state).set) as u64;
            (Estimate::exact(hits).into(), mine.len() as u64, hits, 0.0)
        }))
    }

    /// The exact count as an Estimate (low == value == high).
    fn estimate_count(&self, py: Python<'_>) -> PyEstimate {
        Estimate::exact(lock::read(py, &self.state).set.len() as u64).into()
    }

    fn intersection(&self, py: Python<'_>, other: PyRef<'_, PyTagSet>) -> PyResult<PyTagSet> {
        self.combine(py, &other, TagSet::intersection)
    }

    fn union(&self, py: Python<'_>, other: PyRef<'_, PyTagSet>) -> PyResult<PyTagSet> {
        self.combine(py, &other, TagSet::union)
    }

    fn __and__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        match other.cast::<PyTagSet>() {
            Ok(o) => Ok(Py::new(py, self.intersection(py, o.borrow())?)?.into_any()),
            Err(_) => Ok(py.NotImplemented()),
        }
    }

    fn __or__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        match other.cast::<PyTagSet>() {
            Ok(o) => Ok(Py::new(py, self.union(py, o.borrow())?)?.into_any()),
            Err(_) => Ok(py.NotImplemented()),
        }
    }

    fn attach_key(&self, key: PyRef<'_, PyKey>) -> PyResult<()> {
        self.keyed.attach(&key, "this tag set")
    }

    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let kid = self.keyed.key_id;
        py.detach(|| self.section_ref(|s, created| format::save(&path, &kid, created, &[s])))
            .map_err(PyCoreError)?;
        Ok(())
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let kid = self.keyed.key_id;
        let v = py
            .detach(|| self.section_ref(|s, created| format::to_bytes(&kid, created, &[s])))
            .map_err(PyCoreError)?;
        Ok(PyBytes::new(py, &v))
    }

    #[staticmethod]
    #[pyo3(signature = (data, *, key = None))]
    fn from_bytes(data: &[u8], key: Option<PyRef<'_, PyKey>>) -> PyResult<PyTagSet> {
        let art = Artefact::from_bytes(data).map_err(PyCoreError)?;
        match single(art, "TagSet")? {
            Obj::Tags(t) => {
                if let Some(k) = key {
                    t.keyed.attach(&k, "this tag set")?;
                }
                Ok(t)
            }
            Obj::Bloom(_) => Err(PyCoreError(Error::format(
                "these bytes hold a BloomIndex, not a TagSet; use BloomIndex.from_bytes or pi_match.load",
            ))
            .into()),
        }
    }

    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let f = py.import("pi_match._core")?.getattr("_restore")?;
        Ok((f, (self.to_bytes(py)?,)))
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyTagSet>().is_ok_and(|o| {
            let o = o.get();
            o.keyed.canon() == self.keyed.canon()
                && o.keyed.prf_id == self.keyed.prf_id
                && o.keyed.key_id == self.keyed.key_id
                && (std::ptr::eq(o, self)
                    || other.py().detach(|| {
                        let g = ReadMany::take(&[&o.state, &self.state]);
                        g.get(0).set == g.get(1).set
                    }))
        })
    }

    #[getter]
    fn kind(&self) -> &'static str {
        self.keyed.kind.name()
    }
    #[getter]
    fn key_id(&self) -> String {
        key_id_hex(&self.keyed.key_id)
    }
    #[getter]
    fn has_key(&self) -> bool {
        self.keyed.has_key()
    }
    #[getter]
    fn canon_version(&self) -> u16 {
        self.keyed.version
    }
    /// The PRF the tags are made with: "hmac-sha256" or "hmac-sm3".
    #[getter]
    fn prf(&self) -> &'static str {
        self.keyed.prf_id.name()
    }
    #[getter]
    fn created(&self, py: Python<'_>) -> u64 {
        lock::read(py, &self.state).created
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "TagSet(kind='{}', key_id='{}', len={}{})",
            self.keyed.kind.name(),
            key_id_hex(&self.keyed.key_id),
            lock::read(py, &self.state).set.len(),
            if self.keyed.has_key() { "" } else { ", no key" }
        )
    }
}

// ---- artefacts with several sections -----------------------------------------------------

pub enum Obj {
    Bloom(PyBloomIndex),
    Tags(PyTagSet),
}

pub fn objects(art: Artefact, key: Option<&PyKey>) -> PyResult<Vec<Obj>> {
    let kid = art.key_id;
    if let Some(k) = key {
        if k.inner.id() != &kid {
            return Err(key_mismatch("this artefact", &kid, k.inner.id()));
        }
    }
    art.sections
        .into_iter()
        .map(
            |Section {
                 kind,
                 canon_version,
                 prf,
                 items,
                 payload,
                 ..
             }| {
                let canon = Canon {
                    kind,
                    version: canon_version,
                };
                let keyed = Keyed::new(canon, prf, kid, key)?;
                Ok(match payload {
                    Payload::Bloom(b) => {
                        Obj::Bloom(PyBloomIndex::from_parts(keyed, b, items, art.created))
                    }
                    Payload::Tags(t) => Obj::Tags(PyTagSet::from_parts(keyed, t, art.created)),
                })
            },
        )
        .collect()
}

fn single(art: Artefact, want: &str) -> PyResult<Obj> {
    let n = art.sections.len();
    if n != 1 {
        return Err(PyCoreError(Error::format(format!(
            "this artefact holds {n} sections, not one {want}; use pi_match.load to get all of them"
        )))
        .into());
    }
    Ok(objects(art, None)?.pop().expect("one section"))
}

pub fn into_py(py: Python<'_>, o: Obj) -> PyResult<Py<PyAny>> {
    Ok(match o {
        Obj::Bloom(b) => Py::new(py, b)?.into_any(),
        Obj::Tags(t) => Py::new(py, t)?.into_any(),
    })
}

/// `Σ coef · n̂(union of the indices in mask)` over indices of one key and kind, with its 95 %
/// interval (the engine behind `pi_match.count`).
#[pyfunction]
pub fn bloom_linear(
    py: Python<'_>,
    indices: Vec<PyRef<'_, PyBloomIndex>>,
    terms: Vec<(u64, f64)>,
    method: String,
) -> PyResult<PyEstimate> {
    check_all(indices.iter().map(|i| &i.keyed))?;
    if indices.is_empty() || indices.len() > 64 {
        return Err(
            PyCoreError(Error::Invalid("bloom_linear takes 1 to 64 indices".into())).into(),
        );
    }
    let method: &'static str = match method.as_str() {
        "bloom_union" => "bloom_union",
        "bloom_unique" => "bloom_unique",
        "bloom_in_two_or_more" => "bloom_in_two_or_more",
        "bloom_combination" => "bloom_combination",
        _ => "bloom_inclusion_exclusion",
    };
    let locks: Vec<&RwLock<BloomState>> = indices.iter().map(|i| &i.state).collect();
    let e = py.detach(|| {
        let g = ReadMany::take(&locks);
        let filters: Vec<&Bloom> = g.all().into_iter().map(|s| &s.bloom).collect();
        estimate::bloom_linear(&filters, &terms, method)
    });
    Ok(e.map_err(PyCoreError)?.into())
}

/// For tag sets of one key and kind: {membership bit mask: distinct tags with exactly that
/// membership}. Bit i stands for `sets[i]`.
#[pyfunction]
pub fn membership_counts(
    py: Python<'_>,
    sets: Vec<PyRef<'_, PyTagSet>>,
) -> PyResult<std::collections::HashMap<u64, u64>> {
    check_all(sets.iter().map(|s| &s.keyed))?;
    if sets.is_empty() || sets.len() > 64 {
        return Err(PyCoreError(Error::Invalid(
            "membership_counts takes 1 to 64 tag sets".into(),
        ))
        .into());
    }
    let locks: Vec<&RwLock<TagState>> = sets.iter().map(|s| &s.state).collect();
    Ok(py.detach(|| {
        let g = ReadMany::take(&locks);
        let refs: Vec<&TagSet> = g.all().into_iter().map(|s| &s.set).collect();
        crate::core::tagset::membership_counts(&refs)
    }))
}

fn check_all<'a>(mut keyed: impl Iterator<Item = &'a Keyed>) -> PyResult<()> {
    if let Some(first) = keyed.next() {
        for k in keyed {
            first.check_compatible(k)?;
        }
    }
    Ok(())
}

type TagsAndCodes<'py> = (Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u8>>);

/// Per-value 64-bit tags (0 where the value was rejected) and reason codes: what tag sets hold,
/// for callers that must keep row identity (the statutory report).
#[pyfunction]
#[pyo3(signature = (key, kind, values, canon_version = None))]
pub fn tag64_values<'py>(
    py: Python<'py>,
    key: PyRef<'_, PyKey>,
    kind: &str,
    values: &Bound<'py, PyAny>,
    canon_version: Option<u16>,
) -> PyResult<TagsAndCodes<'py>> {
    let kind = parse_canon(kind, canon_version)?;
    let col = extract_column(values)?;
    let prf = key.inner.prf_for(kind.kind, kind.version);
    let (tags, codes) = maybe_detach(py, col.len(), || {
        let mut tags = Vec::with_capacity(col.len());
        let codes = for_each_tag(kind, &prf, &col, |_, c, t| {
            tags.extend(
                c.iter()
                    .zip(t)
                    .map(|(c, t)| if *c == 0 { tag64(t) } else { 0 }),
            );
        });
        (tags, codes)
    });
    Ok((PyArray1::from_vec(py, tags), PyArray1::from_vec(py, codes)))
}

/// Overlap of two artefacts: inclusion–exclusion for Bloom indices, exact for tag sets.
#[pyfunction]
pub fn estimate_overlap(
    py: Python<'_>,
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
) -> PyResult<PyEstimate> {
    if let (Ok(a), Ok(b)) = (a.cast::<PyBloomIndex>(), b.cast::<PyBloomIndex>()) {
        let (a, b) = (a.get(), b.get());
        a.keyed.check_compatible(&b.keyed)?;
        let e = py.detach(|| {
            let g = ReadMany::take(&[&a.state, &b.state]);
            estimate::bloom_overlap(&g.get(0).bloom, &g.get(1).bloom)
        });
        return Ok(e.map_err(PyCoreError)?.into());
    }
    if let (Ok(a), Ok(b)) = (a.cast::<PyTagSet>(), b.cast::<PyTagSet>()) {
        let (a, b) = (a.get(), b.get());
        a.keyed.check_compatible(&b.keyed)?;
        let n = py.detach(|| {
            let g = ReadMany::take(&[&a.state, &b.state]);
            g.get(0).set.intersection_len(&g.get(1).set)
        });
        return Ok(Estimate::exact(n as u64).into());
    }
    Err(PyTypeError::new_err(format!(
        "estimate_overlap takes two BloomIndex or two TagSet objects, got {} and {}",
        a.get_type().name()?,
        b.get_type().name()?
    )))
}
