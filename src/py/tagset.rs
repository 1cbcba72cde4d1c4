//! `TagSet`: argument handling, GIL release and error mapping around `core::tagset`.

use std::path::PathBuf;
use std::sync::RwLock;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::key::PyKey;
use super::keyed::{bulk_contains, now_unix, parse_canon, parse_prf, tag_one, Tagging};
use super::lock::{self, maybe_detach, read_nogil, with_write, ReadMany};
use super::results::{PyAddReport, PyEstimate};
use super::sections::{from_bytes_one, reduce_one, save_one, to_bytes_one, Loaded, SectionObject};
use super::values::extract_column;
use crate::core::estimate::Estimate;
use crate::core::format::{PayloadRef, SectionRef};
use crate::core::key::{key_id_hex, KeyId};
use crate::core::keyed as core_keyed;
use crate::core::tagset::{tag64, TagSet};

// ---- TagSet ------------------------------------------------------------------------------

pub(crate) struct TagState {
    pub(crate) set: TagSet,
    pub(crate) created: u64,
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
    pub(crate) keyed: Tagging,
    pub(crate) state: RwLock<TagState>,
}

impl PyTagSet {
    pub(crate) fn from_parts(keyed: Tagging, set: TagSet, created: u64) -> PyTagSet {
        PyTagSet {
            keyed,
            state: RwLock::new(TagState { set, created }),
        }
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

impl SectionObject for PyTagSet {
    const NAME: &'static str = "TagSet";
    const WHAT: &'static str = "this tag set";

    fn keyed(&self) -> &Tagging {
        &self.keyed
    }

    fn section_ref<R>(&self, f: impl FnOnce(SectionRef<'_>, u64) -> R) -> R {
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

    fn from_loaded(o: Loaded) -> Option<Self> {
        match o {
            Loaded::Tags(x) => Some(x),
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
        Ok(PyTagSet::from_parts(
            Tagging::from_key(parse_canon(kind, canon_version)?, parse_prf(prf)?, &key),
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
            core_keyed::tags_of(kind, &prf, &col.parts)
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
            |st, canon, prf, col| core_keyed::set_contains(&st.set, canon, prf, &col.parts),
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
        let (e, n, hits, eps) = py.detach(|| {
            core_keyed::set_count_in(&read_nogil(&self.state).set, kind, &prf, &col.parts)
        });
        Ok((e.into(), n, hits, eps))
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
        other.cast::<PyTagSet>().is_ok_and(|o| {
            let o = o.get();
            o.keyed.meta() == self.keyed.meta()
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
