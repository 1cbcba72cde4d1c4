//! `BloomIndex`: argument handling, GIL release and error mapping around the core's
//! `KeyedBloom`.

use std::path::PathBuf;
use std::sync::RwLock;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::error::PyCoreError;
use super::key::PyKey;
use super::keyed::{bulk_contains, parse_canon, parse_prf, tag_one};
use super::lock::{self, read_nogil, with_read, with_write, write_and_read, ReadMany};
use super::results::{PyAddReport, PyEstimate};
use super::section::{
    from_bytes_one, reduce_one, same_object, save_one, to_bytes_one, SectionObject,
};
use super::tagset::PyTagSet;
use super::values::extract_column;
use crate::core::key::key_id_hex;
use crate::core::keyed::{Holds, KeyedBloom, Meta, Structure};
use crate::core::Error;

// ---- BloomIndex --------------------------------------------------------------------------

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
    /// What the index is made under: a copy of `state`'s, which never changes, so that
    /// getters and compatibility checks need no lock.
    pub(crate) meta: Meta,
    pub(crate) state: RwLock<KeyedBloom>,
}

impl From<KeyedBloom> for PyBloomIndex {
    fn from(k: KeyedBloom) -> PyBloomIndex {
        PyBloomIndex {
            meta: k.meta(),
            state: RwLock::new(k),
        }
    }
}

impl SectionObject for PyBloomIndex {
    type Core = KeyedBloom;
    const NAME: &'static str = "BloomIndex";
    const WHAT: &'static str = "this index";

    fn meta(&self) -> Meta {
        self.meta
    }

    fn state(&self) -> &RwLock<KeyedBloom> {
        &self.state
    }

    fn from_structure(s: Structure) -> Option<Self> {
        match s {
            Structure::Bloom(x) => Some(x.into()),
            _ => None,
        }
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
        let canon = parse_canon(kind, canon_version)?;
        let prf = parse_prf(prf)?;
        Ok(KeyedBloom::new(&key.inner, canon, prf, capacity, fpr)
            .map_err(PyCoreError)?
            .into())
    }

    /// Canonicalise, tag and insert `values` (a list of str, a numpy array of str/bytes, or
    /// an Arrow array / chunked array). Invalid values are skipped and reported. With
    /// `tag_set=` (a TagSet of the same key and kind) the same tags go into it too, so an
    /// exact set costs no second pass of canonicalising and hashing. With `hold=` (a numpy
    /// bool array, one per value) the marked values that are valid are not inserted but get
    /// code `HELD` (255, in none of the report's counts): the caller decides them later, as
    /// `pi-match build` does for values that may be Excel's rounding. `hold_excel_rounded=True`
    /// holds the valid values of the shape `excel_rounded_shape` marks the same way, told in
    /// the tagging tasks (no pass of its own over the values).
    #[pyo3(signature = (values, *, tag_set = None, hold = None, hold_excel_rounded = false))]
    fn add(
        &self,
        py: Python<'_>,
        values: &Bound<'_, PyAny>,
        tag_set: Option<PyRef<'_, PyTagSet>>,
        hold: Option<numpy::PyReadonlyArray1<'_, bool>>,
        hold_excel_rounded: bool,
    ) -> PyResult<PyAddReport> {
        let col = extract_column(values)?;
        if let Some(t) = &tag_set {
            self.meta.check_compatible(&t.meta).map_err(PyCoreError)?;
        }
        let hold = match &hold {
            Some(h) => Some(
                h.as_slice()
                    .map_err(|e| PyCoreError(Error::Invalid(e.to_string())))?,
            ),
            None => None,
        };
        let tag_set: Option<&PyTagSet> = tag_set.as_deref();
        let want_tags64 = tag_set.is_some();
        let added = with_write(py, col.len(), &self.state, |st| {
            let holds = Holds {
                marked: hold,
                excel_rounded: hold_excel_rounded,
            };
            st.add(&col.parts, holds, want_tags64)
        })
        .map_err(PyCoreError)?;
        let (codes, exact) = (added.codes, added.tags64);
        // The index's lock is released before the tag set's is taken: never two at once.
        if let Some(ts) = tag_set {
            with_write(py, exact.len(), &ts.state, |t| t.merge(exact));
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
        bulk_contains(py, &self.state, values, reasons, |st, col| {
            st.contains(&col.parts)
        })
    }

    fn __contains__(&self, value: &Bound<'_, PyAny>) -> PyResult<bool> {
        let st = lock::read(value.py(), &self.state);
        Ok(tag_one(&st.tagging, value)?.is_some_and(|t| st.contains_tag(&t)))
    }

    /// How many of the distinct valid `values` are in this index, corrected for false
    /// positives: `(estimate, distinct_probed, hits, fpr)`.
    fn count_in(
        &self,
        py: Python<'_>,
        values: &Bound<'_, PyAny>,
    ) -> PyResult<(PyEstimate, u64, u64, f64)> {
        let col = extract_column(values)?;
        let c = with_read(py, col.len(), &self.state, |st| st.count_in(&col.parts))
            .map_err(PyCoreError)?;
        Ok((c.estimate.into(), c.probed, c.hits, c.fpr))
    }

    /// Distinct values in the index, estimated from the share of set bits, with its 95 %
    /// interval.
    fn estimate_count(&self, py: Python<'_>) -> PyEstimate {
        py.detach(|| read_nogil(&self.state).estimate_count().into())
    }

    /// The expected false-positive rate of a lookup once `n` distinct values are in the index
    /// (default: the current estimate).
    #[pyo3(signature = (n = None))]
    fn expected_fpr(&self, py: Python<'_>, n: Option<f64>) -> f64 {
        let n = n.unwrap_or_else(|| self.estimate_count(py).value);
        lock::read(py, &self.state).expected_fpr(n)
    }

    /// Union with another index of the same key, kind and layout (the larger is folded to the
    /// smaller size first). The result has the key if either input had it.
    fn union(&self, py: Python<'_>, other: PyRef<'_, PyBloomIndex>) -> PyResult<PyBloomIndex> {
        self.meta
            .check_compatible(&other.meta)
            .map_err(PyCoreError)?;
        let other: &PyBloomIndex = &other;
        let u = py.detach(|| {
            let g = ReadMany::take(&[&self.state, &other.state]);
            g.get(0).union(g.get(1))
        });
        Ok(u.map_err(PyCoreError)?.into())
    }

    fn __or__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        match other.cast::<PyBloomIndex>() {
            Ok(o) => Ok(Py::new(py, self.union(py, o.borrow())?)?.into_any()),
            Err(_) => Ok(py.NotImplemented()),
        }
    }

    /// Union `other` into this index in place (`a |= b`): no new memory when the sizes match.
    fn update(&self, py: Python<'_>, other: PyRef<'_, PyBloomIndex>) -> PyResult<()> {
        self.meta
            .check_compatible(&other.meta)
            .map_err(PyCoreError)?;
        let other: &PyBloomIndex = &other;
        if std::ptr::eq(self, other) {
            return Ok(()); // a ∪ a = a (and one lock cannot be held twice)
        }
        py.detach(|| {
            let (mut st, o) = write_and_read(&self.state, &other.state);
            st.update(&o)
        })
        .map_err(PyCoreError)?;
        Ok(())
    }

    fn __ior__(&self, py: Python<'_>, other: PyRef<'_, PyBloomIndex>) -> PyResult<()> {
        self.update(py, other)
    }

    /// Attach the key to an index loaded without one (checks the key id).
    fn attach_key(&self, key: PyRef<'_, PyKey>) -> PyResult<()> {
        self.give_key(key.py(), &key)
    }

    /// Write the index to `path` (atomically: a temporary file, then rename).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        save_one(py, self, path)
    }

    /// The artefact file's bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        to_bytes_one(py, self)
    }

    /// An object from `to_bytes()` output. Without `key` it can be counted, merged and
    /// compared; `add` and `contains` need the key.
    #[staticmethod]
    #[pyo3(signature = (data, *, key = None))]
    fn from_bytes(data: &[u8], key: Option<PyRef<'_, PyKey>>) -> PyResult<PyBloomIndex> {
        from_bytes_one(data, key)
    }

    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        reduce_one(py, self)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyBloomIndex>()
            .is_ok_and(|o| same_object(other.py(), self, o.get()))
    }

    #[getter]
    fn kind(&self) -> &'static str {
        self.meta.kind.name()
    }
    #[getter]
    fn key_id(&self) -> String {
        key_id_hex(&self.meta.key_id)
    }
    #[getter]
    fn has_key(&self, py: Python<'_>) -> bool {
        lock::read(py, &self.state).tagging.has_key()
    }
    #[getter]
    fn canon_version(&self) -> u16 {
        self.meta.version
    }
    /// The PRF the tags are made with: "hmac-sha256" or "hmac-sm3".
    #[getter]
    fn prf(&self) -> &'static str {
        self.meta.prf.name()
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
            self.meta.kind.name(),
            key_id_hex(&self.meta.key_id),
            st.bloom.log2_blocks(),
            st.bloom.blocks_per_key(),
            st.items,
            if st.tagging.has_key() { "" } else { ", no key" }
        )
    }
}
