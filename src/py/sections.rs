//! Artefacts as Python objects: the sections of a loaded file turned into BloomIndex and
//! TagSet objects, and the save / to_bytes / pickle code both classes share.

use pyo3::prelude::*;

use std::path::PathBuf;

use pyo3::types::{PyBytes, PyList};

use super::bloom::PyBloomIndex;
use super::error::key_mismatch_between;
use super::error::{key_mismatch, PyCoreError};
use super::key::PyKey;
use super::lock;
use super::tagset::PyTagSet;
use crate::core::format::{
    self, Artefact, Payload, ReadOptions, Section, SectionRef, WriteOptions,
};
use crate::core::key::{key_id_hex, KeyId};
use crate::core::keyed::{now_unix, KeyedBloom, KeyedTagSet, Meta, Tagging};
use crate::core::Error;

// ---- artefacts with several sections -----------------------------------------------------

pub enum Loaded {
    Bloom(PyBloomIndex),
    Tags(PyTagSet),
}

pub fn objects(art: Artefact, key: Option<&PyKey>) -> PyResult<Vec<Loaded>> {
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
                let mut tagging = Tagging::without_key(Meta {
                    kind,
                    version: canon_version,
                    prf,
                    key_id: kid,
                });
                if let Some(k) = key {
                    tagging
                        .attach(&k.inner, "this artefact")
                        .map_err(PyCoreError)?;
                }
                Ok(match payload {
                    Payload::Bloom(bloom) => Loaded::Bloom(
                        KeyedBloom {
                            tagging,
                            bloom,
                            items,
                            created: art.created,
                        }
                        .into(),
                    ),
                    Payload::Tags(set) => Loaded::Tags(
                        KeyedTagSet {
                            tagging,
                            set,
                            created: art.created,
                        }
                        .into(),
                    ),
                })
            },
        )
        .collect()
}

pub(crate) fn single(art: Artefact, want: &str) -> PyResult<Loaded> {
    let n = art.sections.len();
    if n != 1 {
        return Err(PyCoreError(Error::format(format!(
            "this artefact holds {n} sections, not one {want}; use pi_match.load to get all of them"
        )))
        .into());
    }
    Ok(objects(art, None)?.pop().expect("one section"))
}

pub fn into_py(py: Python<'_>, o: Loaded) -> PyResult<Py<PyAny>> {
    Ok(match o {
        Loaded::Bloom(b) => Py::new(py, b)?.into_any(),
        Loaded::Tags(t) => Py::new(py, t)?.into_any(),
    })
}

/// What BloomIndex and TagSet share as sections of an artefact file: their save, to_bytes,
/// from_bytes and pickling are written once, here, over this trait.
pub(crate) trait SectionObject: Sized + Sync {
    /// The Python class name, for messages.
    const NAME: &'static str;
    /// "this index" / "this tag set", for key-mismatch messages.
    const WHAT: &'static str;
    /// What the object is made under (fixed for its life).
    fn meta(&self) -> Meta;
    /// The tagging of an object not yet shared (just loaded).
    fn tagging_mut(&mut self) -> &mut Tagging;
    /// `f` on the object as a section to write; call without the GIL (it waits for the lock).
    fn section_ref<R>(&self, f: impl FnOnce(SectionRef<'_>, u64) -> R) -> R;
    fn from_loaded(o: Loaded) -> Option<Self>;
}

/// Write one object as an artefact file (atomically, with the GIL released).
pub(crate) fn save_one<T: SectionObject>(py: Python<'_>, obj: &T, path: PathBuf) -> PyResult<()> {
    let kid = obj.meta().key_id;
    py.detach(|| {
        obj.section_ref(|s, created| {
            format::save(
                &path,
                &kid,
                &[s],
                &WriteOptions {
                    created,
                    mac_key: None,
                },
            )
        })
    })
    .map_err(PyCoreError)?;
    Ok(())
}

/// One object's artefact bytes (built with the GIL released).
pub(crate) fn to_bytes_one<'py, T: SectionObject>(
    py: Python<'py>,
    obj: &T,
) -> PyResult<Bound<'py, PyBytes>> {
    let kid = obj.meta().key_id;
    let v = py
        .detach(|| {
            obj.section_ref(|s, created| {
                format::to_bytes(
                    &kid,
                    &[s],
                    &WriteOptions {
                        created,
                        mac_key: None,
                    },
                )
            })
        })
        .map_err(PyCoreError)?;
    Ok(PyBytes::new(py, &v))
}

/// The object held by artefact bytes of exactly one section of type `T`.
pub(crate) fn from_bytes_one<T: SectionObject>(
    data: &[u8],
    key: Option<PyRef<'_, PyKey>>,
) -> PyResult<T> {
    let art = Artefact::from_bytes(data).map_err(PyCoreError)?;
    let other = if T::NAME == "BloomIndex" {
        "TagSet"
    } else {
        "BloomIndex"
    };
    let mut obj = T::from_loaded(single(art, T::NAME)?).ok_or_else(|| {
        PyErr::from(PyCoreError(Error::format(format!(
            "these bytes hold a {other}, not a {}; use {other}.from_bytes or pi_match.load",
            T::NAME
        ))))
    })?;
    if let Some(k) = key {
        obj.tagging_mut()
            .attach(&k.inner, T::WHAT)
            .map_err(PyCoreError)?;
    }
    Ok(obj)
}

/// Give the key to a shared object loaded without it (the write lock taken as
/// `super::lock` says); `what` names it in a key-mismatch error.
pub(crate) fn attach<T: Send + Sync + HasTagging>(
    py: Python<'_>,
    state: &std::sync::RwLock<T>,
    key: &PyKey,
    what: &str,
) -> PyResult<()> {
    lock::write(py, state)
        .tagging_mut()
        .attach(&key.inner, what)
        .map_err(|e| PyCoreError(e).into())
}

/// The core structures that carry a `Tagging`.
pub(crate) trait HasTagging {
    fn tagging_mut(&mut self) -> &mut Tagging;
}

impl HasTagging for KeyedBloom {
    fn tagging_mut(&mut self) -> &mut Tagging {
        &mut self.tagging
    }
}

impl HasTagging for KeyedTagSet {
    fn tagging_mut(&mut self) -> &mut Tagging {
        &mut self.tagging
    }
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

// ---- artefact files of several sections ---------------------------------------------

/// Read an artefact file: (key id, created, [BloomIndex | TagSet, ...]). `verify=False` skips
/// the payload checksums (the structure is still checked): a memory-mapped index then opens
/// without being read.
#[pyfunction]
#[pyo3(signature = (path, *, key = None, verify = true))]
pub(crate) fn load_artefact(
    py: Python<'_>,
    path: PathBuf,
    key: Option<PyRef<'_, PyKey>>,
    verify: bool,
) -> PyResult<ArtefactParts> {
    let art = py
        .detach(|| {
            Artefact::open(
                &path,
                &ReadOptions {
                    verify_payloads: verify,
                },
            )
        })
        .map_err(PyCoreError)?;
    artefact_out(py, art, key.as_deref())
}

/// As `load_artefact`, from bytes.
#[pyfunction]
#[pyo3(signature = (data, *, key = None))]
pub(crate) fn artefact_from_bytes(
    py: Python<'_>,
    data: &[u8],
    key: Option<PyRef<'_, PyKey>>,
) -> PyResult<ArtefactParts> {
    let art = Artefact::from_bytes(data).map_err(PyCoreError)?;
    artefact_out(py, art, key.as_deref())
}

fn artefact_out(py: Python<'_>, art: Artefact, key: Option<&PyKey>) -> PyResult<ArtefactParts> {
    let (kid, created, auth) = (key_id_hex(&art.key_id), art.created, art.authenticated);
    let objs = objects(art, key)?
        .into_iter()
        .map(|o| into_py(py, o))
        .collect::<PyResult<Vec<_>>>()?;
    Ok((kid, created, PyList::new(py, objs)?.unbind(), auth))
}

/// (key id, created, sections, authenticated)
type ArtefactParts = (String, u64, Py<PyList>, bool);

enum SectionObj<'a> {
    Bloom(&'a PyBloomIndex),
    Tags(&'a PyTagSet),
}

impl SectionObj<'_> {
    fn key_id(&self) -> KeyId {
        match self {
            SectionObj::Bloom(b) => b.meta.key_id,
            SectionObj::Tags(t) => t.meta.key_id,
        }
    }

    /// The object's address: the global lock order.
    fn addr(&self) -> usize {
        match self {
            SectionObj::Bloom(b) => std::ptr::from_ref(*b) as usize,
            SectionObj::Tags(t) => std::ptr::from_ref(*t) as usize,
        }
    }
}

/// The objects of an artefact to write (all made with one key) and that key id.
fn section_objs<'a>(items: &'a [Bound<'_, PyAny>]) -> PyResult<(KeyId, Vec<SectionObj<'a>>)> {
    let mut sections = Vec::with_capacity(items.len());
    for o in items {
        if let Ok(b) = o.cast::<PyBloomIndex>() {
            sections.push(SectionObj::Bloom(b.get()));
        } else if let Ok(t) = o.cast::<PyTagSet>() {
            sections.push(SectionObj::Tags(t.get()));
        } else {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "an artefact holds BloomIndex and TagSet objects, got {}",
                o.get_type().name()?
            )));
        }
    }
    let Some(first) = sections.first().map(SectionObj::key_id) else {
        return Err(PyCoreError(Error::Invalid(
            "an artefact needs at least one section".into(),
        ))
        .into());
    };
    if let Some(other) = sections
        .iter()
        .map(SectionObj::key_id)
        .find(|&k| k != first)
    {
        return Err(key_mismatch_between(
            "one section",
            &first,
            "another",
            &other,
        ));
    }
    Ok((first, sections))
}

/// Call `f` with section refs of `objs`, in the order given; call it without the GIL. Each
/// object's read lock is held for the call, taken once per object and in address order
/// (`super::lock`'s rule), so an artefact that names one object twice, or a save beside
/// `a |= b`, cannot deadlock.
fn with_sections<R>(objs: &[SectionObj<'_>], f: impl FnOnce(&[SectionRef<'_>]) -> R) -> R {
    let mut order: Vec<(usize, usize)> = objs
        .iter()
        .enumerate()
        .map(|(i, o)| (o.addr(), i))
        .collect();
    order.sort_unstable();
    order.dedup_by_key(|(addr, _)| *addr);
    fn go<R>(
        objs: &[SectionObj<'_>],
        rest: &[(usize, usize)],
        acc: &mut Vec<(usize, SectionRef<'_>)>,
        f: impl FnOnce(&[SectionRef<'_>]) -> R,
    ) -> R {
        let Some(((_, head), rest)) = rest.split_first() else {
            // Every object is locked: lay the sections out in the caller's order.
            let refs: Vec<SectionRef<'_>> = objs
                .iter()
                .map(|o| {
                    let at = acc.iter().position(|(a, _)| *a == o.addr()).unwrap_or(0);
                    acc[at].1
                })
                .collect();
            return f(&refs);
        };
        let next = |s: SectionRef<'_>, _created: u64| {
            let mut acc: Vec<(usize, SectionRef<'_>)> = acc.clone();
            acc.push((objs[*head].addr(), s));
            go(objs, rest, &mut acc, f)
        };
        match &objs[*head] {
            SectionObj::Bloom(b) => b.section_ref(next),
            SectionObj::Tags(t) => t.section_ref(next),
        }
    }
    go(objs, &order, &mut Vec::new(), f)
}

/// The MAC key of `key`, after checking it made the artefact.
fn mac_key_for(key: Option<&PyKey>, kid: &KeyId) -> PyResult<Option<zeroize::Zeroizing<[u8; 32]>>> {
    let Some(key) = key else { return Ok(None) };
    if key.inner.id() != kid {
        return Err(key_mismatch("this artefact", kid, key.inner.id()));
    }
    Ok(Some(key.inner.mac_key()))
}

/// Write several BloomIndex / TagSet objects made with one key into one artefact file;
/// with `authenticate_with=key` the file carries a MAC over all its bytes. Returns the file's
/// SHA-256 (hex), computed as it is written.
#[pyfunction]
#[pyo3(signature = (path, objects, *, authenticate_with = None))]
pub(crate) fn save_artefact(
    py: Python<'_>,
    path: PathBuf,
    objects: &Bound<'_, PyAny>,
    authenticate_with: Option<PyRef<'_, PyKey>>,
) -> PyResult<String> {
    let created = now_unix();
    let items: Vec<Bound<'_, PyAny>> = objects.try_iter()?.collect::<PyResult<_>>()?;
    let (kid, objs) = section_objs(&items)?;
    let mac = mac_key_for(authenticate_with.as_deref(), &kid)?;
    let n = py.detach(|| {
        with_sections(&objs, |s| {
            let opts = WriteOptions {
                created,
                mac_key: mac.as_deref(),
            };
            format::save(&path, &kid, s, &opts)
        })
    });
    let (_, sha) = n.map_err(PyCoreError)?;
    Ok(sha.iter().map(|b| format!("{b:02x}")).collect())
}

/// "valid", "invalid" or "not_authenticated": whether an artefact's MAC is right for `key`
/// (damaged files raise FormatError; a key with another id raises KeyMismatchError).
#[pyfunction]
pub(crate) fn verify_artefact(
    py: Python<'_>,
    data: &[u8],
    key: PyRef<'_, PyKey>,
) -> PyResult<&'static str> {
    let key = std::sync::Arc::clone(&key.inner);
    let status = py
        .detach(|| format::verify_mac(data, &key))
        .map_err(PyCoreError)?;
    Ok(match status {
        format::MacStatus::Valid => "valid",
        format::MacStatus::Invalid => "invalid",
        format::MacStatus::NotAuthenticated => "not_authenticated",
    })
}

/// The bytes of an artefact holding several objects (authenticated with `authenticate_with`).
#[pyfunction]
#[pyo3(signature = (objects, *, authenticate_with = None))]
pub(crate) fn artefact_to_bytes<'py>(
    py: Python<'py>,
    objects: &Bound<'py, PyAny>,
    authenticate_with: Option<PyRef<'_, PyKey>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let created = now_unix();
    let items: Vec<Bound<'_, PyAny>> = objects.try_iter()?.collect::<PyResult<_>>()?;
    let (kid, objs) = section_objs(&items)?;
    let mac = mac_key_for(authenticate_with.as_deref(), &kid)?;
    let v = py.detach(|| {
        with_sections(&objs, |s| {
            let opts = WriteOptions {
                created,
                mac_key: mac.as_deref(),
            };
            format::to_bytes(&kid, s, &opts)
        })
    });
    Ok(PyBytes::new(py, &v.map_err(PyCoreError)?))
}

/// Unpickle support: a BloomIndex or TagSet from its bytes (never with a key).
#[pyfunction]
pub(crate) fn _restore(py: Python<'_>, data: &[u8]) -> PyResult<Py<PyAny>> {
    let art = Artefact::from_bytes(data).map_err(PyCoreError)?;
    let mut objs = objects(art, None)?;
    if objs.len() != 1 {
        return Err(PyCoreError(Error::format("a pickled index holds exactly one section")).into());
    }
    into_py(py, objs.pop().expect("one"))
}
