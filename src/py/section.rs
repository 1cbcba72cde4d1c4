//! One BloomIndex or TagSet as one section of an artefact: the save, to_bytes, from_bytes,
//! pickling and key attaching both classes share, written once over `SectionObject`.

use std::path::PathBuf;
use std::sync::RwLock;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::error::PyCoreError;
use super::key::PyKey;
use super::lock;
use crate::core::format::{self, Artefact, SectionRef, WriteOptions};
use crate::core::key::KeyId;
use crate::core::keyed::{self, KeyedBloom, KeyedTagSet, Meta, Structure, Tagging};
use crate::core::Error;

/// What BloomIndex and TagSet share as sections of an artefact file: their save, to_bytes,
/// from_bytes and pickling are written once, here, over this trait.
pub(crate) trait SectionObject: Sized + Sync {
    /// The core structure the object holds behind its lock.
    type Core: CoreStructure + Send + Sync;
    /// The Python class name, for messages.
    const NAME: &'static str;
    /// "this index" / "this tag set", for key-mismatch messages.
    const WHAT: &'static str;
    /// What the object is made under (fixed for its life).
    fn meta(&self) -> Meta;
    fn state(&self) -> &RwLock<Self::Core>;
    /// The object holding `s`, when `s` is a structure of this class.
    fn from_structure(s: Structure) -> Option<Self>;

    /// `f` on the object as a section to write; call without the GIL (it waits for the lock).
    fn section_ref<R>(&self, f: impl FnOnce(SectionRef<'_>, u64) -> R) -> R {
        let st = lock::read_nogil(self.state());
        f(st.as_section(), st.created())
    }

    /// Give the key to an object loaded without it (the write lock taken as `super::lock`
    /// says); the error names the object when the key is another one.
    fn give_key(&self, py: Python<'_>, key: &PyKey) -> PyResult<()> {
        lock::write(py, self.state())
            .tagging_mut()
            .attach(&key.inner, Self::WHAT)
            .map_err(|e| PyCoreError(e).into())
    }
}

/// What the section code needs of a core keyed structure.
pub(crate) trait CoreStructure {
    fn tagging_mut(&mut self) -> &mut Tagging;
    fn as_section(&self) -> SectionRef<'_>;
    fn created(&self) -> u64;
    /// The same filter bits or the same tags.
    fn same_contents(&self, other: &Self) -> bool;
}

impl CoreStructure for KeyedBloom {
    fn tagging_mut(&mut self) -> &mut Tagging {
        &mut self.tagging
    }
    fn as_section(&self) -> SectionRef<'_> {
        KeyedBloom::as_section(self)
    }
    fn created(&self) -> u64 {
        self.created
    }
    fn same_contents(&self, other: &Self) -> bool {
        self.bloom == other.bloom
    }
}

impl CoreStructure for KeyedTagSet {
    fn tagging_mut(&mut self) -> &mut Tagging {
        &mut self.tagging
    }
    fn as_section(&self) -> SectionRef<'_> {
        KeyedTagSet::as_section(self)
    }
    fn created(&self) -> u64 {
        self.created
    }
    fn same_contents(&self, other: &Self) -> bool {
        self.set == other.set
    }
}

/// `f` on the object as the one section of an artefact, with its key id and write options;
/// call without the GIL.
fn as_artefact<T: SectionObject, R>(
    obj: &T,
    f: impl FnOnce(&KeyId, &[SectionRef<'_>], &WriteOptions<'_>) -> R,
) -> R {
    let kid = obj.meta().key_id;
    obj.section_ref(|s, created| {
        let opts = WriteOptions {
            created,
            ..WriteOptions::default()
        };
        f(&kid, &[s], &opts)
    })
}

/// Write one object as an artefact file (atomically, with the GIL released).
pub(crate) fn save_one<T: SectionObject>(py: Python<'_>, obj: &T, path: PathBuf) -> PyResult<()> {
    py.detach(|| as_artefact(obj, |kid, s, opts| format::save(&path, kid, s, opts)))
        .map_err(PyCoreError)?;
    Ok(())
}

/// One object's artefact bytes (built with the GIL released).
pub(crate) fn to_bytes_one<'py, T: SectionObject>(
    py: Python<'py>,
    obj: &T,
) -> PyResult<Bound<'py, PyBytes>> {
    let v = py
        .detach(|| as_artefact(obj, format::to_bytes))
        .map_err(PyCoreError)?;
    Ok(PyBytes::new(py, &v))
}

/// `a == b` for two objects of one class: the same meta and contents (read without the GIL,
/// both locks in the one order); an object always equals itself.
pub(crate) fn same_object<T: SectionObject>(py: Python<'_>, a: &T, b: &T) -> bool {
    a.meta() == b.meta()
        && (std::ptr::eq(a, b)
            || py.detach(|| {
                let g = lock::ReadMany::take(&[a.state(), b.state()]);
                g.get(0).same_contents(g.get(1))
            }))
}

/// The object held by artefact bytes of exactly one section of type `T`.
pub(crate) fn from_bytes_one<T: SectionObject>(
    data: &[u8],
    key: Option<PyRef<'_, PyKey>>,
) -> PyResult<T> {
    let art = Artefact::from_bytes(data).map_err(PyCoreError)?;
    let n = art.sections.len();
    if n != 1 {
        return Err(PyCoreError(Error::format(format!(
            "this artefact holds {n} sections, not one {}; use pi_match.load to get all of them",
            T::NAME
        )))
        .into());
    }
    let other = if T::NAME == "BloomIndex" {
        "TagSet"
    } else {
        "BloomIndex"
    };
    let one = keyed::structures(art, None)
        .map_err(PyCoreError)?
        .pop()
        .expect("one section");
    let obj = T::from_structure(one).ok_or_else(|| {
        PyErr::from(PyCoreError(Error::format(format!(
            "these bytes hold a {other}, not a {}; use {other}.from_bytes or pi_match.load",
            T::NAME
        ))))
    })?;
    if let Some(k) = key {
        obj.give_key(k.py(), &k)?;
    }
    Ok(obj)
}

type Reduced<'py> = (Bound<'py, PyAny>, (Bound<'py, PyBytes>,));

/// Pickling reuses the artefact bytes (never with the key).
pub(crate) fn reduce_one<'py, T: SectionObject>(
    py: Python<'py>,
    obj: &T,
) -> PyResult<Reduced<'py>> {
    let f = py.import("pi_match._core")?.getattr("_restore")?;
    Ok((f, (to_bytes_one(py, obj)?,)))
}
