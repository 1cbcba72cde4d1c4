//! `TagSet`: argument handling, GIL release and error mapping around the core's
//! `KeyedTagSet`.

use std::path::PathBuf;
use std::sync::RwLock;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::error::PyCoreError;
use super::key::PyKey;
use super::keyed::{bulk_contains, parse_canon, parse_prf, tag_one};
use super::lock::{self, maybe_detach, with_read, with_write, ReadMany};
use super::results::{PyAddReport, PyEstimate};
use super::section::{
    from_bytes_one, reduce_one, same_object, save_one, to_bytes_one, SectionObject,
};
use super::values::extract_column;
use crate::core::estimate::Estimate;
use crate::core::key::key_id_hex;
use crate::core::keyed::{KeyedTagSet, Meta, Structure};

// ---- TagSet ------------------------------------------------------------------------------

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
    /// What the set is made under: a copy of `state`'s, which never changes.
    pub(crate) meta: Meta,
    pub(crate) state: RwLock<KeyedTagSet>,
}

impl From<KeyedTagSet> for PyTagSet {
    fn from(k: KeyedTagSet) -> PyTagSet {
        PyTagSet {
            meta: k.meta(),
            state: RwLock::new(k),
        }
    }
}

impl PyTagSet {
    fn combine(
        &self,
        py: Python<'_>,
        other: &PyTagSet,
        op: fn(&KeyedTagSet, &KeyedTagSet) -> crate::core::Result<KeyedTagSet>,
    ) -> PyResult<PyTagSet> {
        self.meta
            .check_compatible(&other.meta)
            .map_err(PyCoreError)?;
        let set = py.detach(|| {
            let g = ReadMany::take(&[&self.state, &other.state]);
            op(g.get(0), g.get(1))
        });
        Ok(set.map_err(PyCoreError)?.into())
    }
}

impl SectionObject for PyTagSet {
    type Core = KeyedTagSet;
    const NAME: &'static str = "TagSet";
    const WHAT: &'static str = "this tag set";

    fn meta(&self) -> Meta {
        self.meta
    }

    fn state(&self) -> &RwLock<KeyedTagSet> {
        &self.state
    }

    fn from_structure(s: Structure) -> Option<Self> {
        match s {
            Structure::Tags(x) => Some(x.into()),
            _ => None,
        }
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
        let canon = parse_canon(kind, canon_version)?;
        Ok(KeyedTagSet::new(&key.inner, canon, parse_prf(prf)?).into())
    }

    /// Canonicalise, tag and add `values` (as for `BloomIndex.add`).
    fn add(&self, py: Python<'_>, values: &Bound<'_, PyAny>) -> PyResult<PyAddReport> {
        let col = extract_column(values)?;
        // Tags are made outside the lock (from a copy of the tagging): the lock guards only
        // the merge, so threads adding to one set tag in parallel.
        let tagging = lock::read(py, &self.state).tagging.clone();
        let (codes, new) =
            maybe_detach(py, col.len(), || tagging.tags_of(&col.parts)).map_err(PyCoreError)?;
        with_write(py, new.len(), &self.state, |st| st.merge(new));
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
        bulk_contains(py, &self.state, values, reasons, |st, col| {
            st.contains(&col.parts)
        })
    }

    fn __contains__(&self, value: &Bound<'_, PyAny>) -> PyResult<bool> {
        let st = lock::read(value.py(), &self.state);
        Ok(tag_one(&st.tagging, value)?.is_some_and(|t| st.contains_tag(&t)))
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
        let c = with_read(py, col.len(), &self.state, |st| st.count_in(&col.parts))
            .map_err(PyCoreError)?;
        Ok((c.estimate.into(), c.probed, c.hits, c.fpr))
    }

    /// The exact count as an Estimate (low == value == high).
    fn estimate_count(&self, py: Python<'_>) -> PyEstimate {
        Estimate::exact(lock::read(py, &self.state).set.len() as u64).into()
    }

    fn intersection(&self, py: Python<'_>, other: PyRef<'_, PyTagSet>) -> PyResult<PyTagSet> {
        self.combine(py, &other, KeyedTagSet::intersection)
    }

    fn union(&self, py: Python<'_>, other: PyRef<'_, PyTagSet>) -> PyResult<PyTagSet> {
        self.combine(py, &other, KeyedTagSet::union)
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
        self.give_key(key.py(), &key)
    }

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
    fn from_bytes(data: &[u8], key: Option<PyRef<'_, PyKey>>) -> PyResult<PyTagSet> {
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
            .cast::<PyTagSet>()
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
    fn created(&self, py: Python<'_>) -> u64 {
        lock::read(py, &self.state).created
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let st = lock::read(py, &self.state);
        format!(
            "TagSet(kind='{}', key_id='{}', len={}{})",
            self.meta.kind.name(),
            key_id_hex(&self.meta.key_id),
            st.len(),
            if st.tagging.has_key() { "" } else { ", no key" }
        )
    }
}
