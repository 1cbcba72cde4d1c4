//! Artefact files of several sections: loading them as BloomIndex and TagSet objects, saving
//! and authenticating several objects as one file.

use pyo3::prelude::*;

use std::path::PathBuf;

use pyo3::types::{PyBytes, PyList};

use super::bloom::PyBloomIndex;
use super::error::key_mismatch_between;
use super::error::{key_mismatch, PyCoreError};
use super::key::PyKey;
use super::section::SectionObject;
use super::tagset::PyTagSet;
use crate::core::format::{self, Artefact, ReadOptions, SectionRef, WriteOptions};
use crate::core::key::{key_id_hex, KeyId};
use crate::core::keyed::{self, now_unix, Structure};
use crate::core::Error;

/// The sections of an artefact as BloomIndex and TagSet objects.
pub fn objects(py: Python<'_>, art: Artefact, key: Option<&PyKey>) -> PyResult<Vec<Py<PyAny>>> {
    let structures = keyed::structures(art, key.map(|k| &*k.inner)).map_err(PyCoreError)?;
    structures.into_iter().map(|s| into_py(py, s)).collect()
}

pub fn into_py(py: Python<'_>, s: Structure) -> PyResult<Py<PyAny>> {
    Ok(match s {
        Structure::Bloom(b) => Py::new(py, PyBloomIndex::from(b))?.into_any(),
        Structure::Tags(t) => Py::new(py, PyTagSet::from(t))?.into_any(),
    })
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
    let art = py
        .detach(|| Artefact::from_bytes(data))
        .map_err(PyCoreError)?;
    artefact_out(py, art, key.as_deref())
}

fn artefact_out(py: Python<'_>, art: Artefact, key: Option<&PyKey>) -> PyResult<ArtefactParts> {
    let (kid, created, auth) = (key_id_hex(&art.key_id), art.created, art.authenticated);
    let objs = objects(py, art, key)?;
    Ok((kid, created, PyList::new(py, objs)?.unbind(), auth))
}

/// (key id, created, sections, authenticated)
type ArtefactParts = (String, u64, Py<PyList>, bool);

enum ObjectToWrite<'a> {
    Bloom(&'a PyBloomIndex),
    Tags(&'a PyTagSet),
}

impl ObjectToWrite<'_> {
    fn key_id(&self) -> KeyId {
        match self {
            ObjectToWrite::Bloom(b) => b.meta.key_id,
            ObjectToWrite::Tags(t) => t.meta.key_id,
        }
    }

    /// The object's address: the global lock order.
    fn addr(&self) -> usize {
        match self {
            ObjectToWrite::Bloom(b) => std::ptr::from_ref(*b) as usize,
            ObjectToWrite::Tags(t) => std::ptr::from_ref(*t) as usize,
        }
    }
}

/// The objects of an artefact to write (all made with one key) and that key id.
fn objects_to_write<'a>(
    items: &'a [Bound<'_, PyAny>],
) -> PyResult<(KeyId, Vec<ObjectToWrite<'a>>)> {
    let mut sections = Vec::with_capacity(items.len());
    for o in items {
        if let Ok(b) = o.cast::<PyBloomIndex>() {
            sections.push(ObjectToWrite::Bloom(b.get()));
        } else if let Ok(t) = o.cast::<PyTagSet>() {
            sections.push(ObjectToWrite::Tags(t.get()));
        } else {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "an artefact holds BloomIndex and TagSet objects, got {}",
                o.get_type().name()?
            )));
        }
    }
    let Some(first) = sections.first().map(ObjectToWrite::key_id) else {
        return Err(PyCoreError(Error::Invalid(
            "an artefact needs at least one section".into(),
        ))
        .into());
    };
    if let Some(other) = sections
        .iter()
        .map(ObjectToWrite::key_id)
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
fn with_sections<R>(objs: &[ObjectToWrite<'_>], f: impl FnOnce(&[SectionRef<'_>]) -> R) -> R {
    let mut order: Vec<(usize, usize)> = objs
        .iter()
        .enumerate()
        .map(|(i, o)| (o.addr(), i))
        .collect();
    order.sort_unstable();
    order.dedup_by_key(|(addr, _)| *addr);
    fn go<R>(
        objs: &[ObjectToWrite<'_>],
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
            ObjectToWrite::Bloom(b) => b.section_ref(next),
            ObjectToWrite::Tags(t) => t.section_ref(next),
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
#[pyo3(signature = (path, objects, *, authenticate_with = None, plain_tag_sets = false))]
pub(crate) fn save_artefact(
    py: Python<'_>,
    path: PathBuf,
    objects: &Bound<'_, PyAny>,
    authenticate_with: Option<PyRef<'_, PyKey>>,
    plain_tag_sets: bool,
) -> PyResult<String> {
    let (_, sha) = write_objects(
        py,
        objects,
        authenticate_with,
        plain_tag_sets,
        |kid, s, opts| format::save(&path, kid, s, opts),
    )?;
    Ok(sha.iter().map(|b| format!("{b:02x}")).collect())
}

/// `write` (with the GIL released) on the sections of `objects` — all of one key, each
/// object's lock held once, in the one order — and the options: now as `created`, and the
/// MAC key of `authenticate_with` (which must be the objects' key); `plain_tags` writes tag
/// sets uncompressed.
fn write_objects<R: Send>(
    py: Python<'_>,
    objects: &Bound<'_, PyAny>,
    authenticate_with: Option<PyRef<'_, PyKey>>,
    plain_tags: bool,
    write: impl FnOnce(&KeyId, &[SectionRef<'_>], &WriteOptions<'_>) -> crate::core::Result<R> + Send,
) -> PyResult<R> {
    let created = now_unix();
    let items: Vec<Bound<'_, PyAny>> = objects.try_iter()?.collect::<PyResult<_>>()?;
    let (kid, objs) = objects_to_write(&items)?;
    let mac = mac_key_for(authenticate_with.as_deref(), &kid)?;
    py.detach(|| {
        with_sections(&objs, |s| {
            let opts = WriteOptions {
                created,
                mac_key: mac.as_deref(),
                plain_tags,
            };
            write(&kid, s, &opts)
        })
    })
    .map_err(|e| PyCoreError(e).into())
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
#[pyo3(signature = (objects, *, authenticate_with = None, plain_tag_sets = false))]
pub(crate) fn artefact_to_bytes<'py>(
    py: Python<'py>,
    objects: &Bound<'py, PyAny>,
    authenticate_with: Option<PyRef<'_, PyKey>>,
    plain_tag_sets: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let v = write_objects(
        py,
        objects,
        authenticate_with,
        plain_tag_sets,
        format::to_bytes,
    )?;
    Ok(PyBytes::new(py, &v))
}

/// Unpickle support: a BloomIndex or TagSet from its bytes (never with a key).
#[pyfunction]
pub(crate) fn _restore(py: Python<'_>, data: &[u8]) -> PyResult<Py<PyAny>> {
    let art = Artefact::from_bytes(data).map_err(PyCoreError)?;
    let mut objs = keyed::structures(art, None).map_err(PyCoreError)?;
    if objs.len() != 1 {
        return Err(PyCoreError(Error::format("a pickled index holds exactly one section")).into());
    }
    into_py(py, objs.pop().expect("one"))
}

/// The artefact holding the union of `shards` (artefact bytes of one build: same key, same
/// sections and layouts), merged from their bytes: Bloom payloads OR-ed in one pass, tag sets
/// merged, every shard's structure and checksums checked first. With `key_id` (hex) a shard of
/// another key is refused, naming it.
#[pyfunction]
#[pyo3(signature = (shards, *, key_id = None))]
pub(crate) fn merge_shards<'py>(
    py: Python<'py>,
    shards: Vec<pyo3::pybacked::PyBackedBytes>,
    key_id: Option<&str>,
) -> PyResult<Bound<'py, PyBytes>> {
    let want = key_id.map(parse_key_id).transpose()?;
    let inputs: Vec<&[u8]> = shards.iter().map(|b| &b[..]).collect();
    let plan = py
        .detach(|| crate::core::merge::plan(&inputs, want.as_ref()))
        .map_err(PyCoreError)?;
    let created = now_unix();
    let len = plan.file_len();
    // A bytes object of `len` uninitialised bytes (not zeroed first: `write_into` writes every
    // byte), filled with the GIL released — no other code can see it until it is returned.
    // SAFETY: PyBytes_FromStringAndSize(NULL, n) returns a new bytes object (or NULL with an
    // exception set) whose n-byte buffer the caller may write before sharing it.
    let out: Bound<'py, PyBytes> = unsafe {
        let p =
            pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), len as pyo3::ffi::Py_ssize_t);
        Bound::from_owned_ptr_or_err(py, p)?.cast_into_unchecked()
    };
    struct Buf(*mut u8, usize);
    // SAFETY: the buffer is the new object's alone, used by one thread at a time.
    unsafe impl Send for Buf {}
    // SAFETY: as above; the pointer is the object's buffer of `len` bytes.
    let buf = Buf(
        unsafe { pyo3::ffi::PyBytes_AsString(out.as_ptr()) }.cast(),
        len,
    );
    py.detach(move || {
        let b = buf;
        // SAFETY: b.0 points to b.1 writable bytes owned by `out`, alive across this call.
        let dst = unsafe { std::slice::from_raw_parts_mut(b.0, b.1) };
        plan.write_into(dst, created)
    })
    .map_err(PyCoreError)?;
    Ok(out)
}

fn parse_key_id(hex: &str) -> PyResult<KeyId> {
    let bad = || {
        pyo3::exceptions::PyValueError::new_err(format!(
            "key_id must be 16 hex digits (a key's id), got {hex:?}"
        ))
    };
    let mut id = KeyId::default();
    if hex.len() != 2 * id.len() || !hex.is_ascii() {
        return Err(bad());
    }
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(id)
}

/// As `merge_shards`, but the merged artefact as (key id, created, sections, authenticated)
/// in memory — no bytes written and read back: the top of a merge tree, on the client.
#[pyfunction]
#[pyo3(signature = (shards, *, key_id = None))]
pub(crate) fn merge_shard_parts(
    py: Python<'_>,
    shards: Vec<pyo3::pybacked::PyBackedBytes>,
    key_id: Option<&str>,
) -> PyResult<ArtefactParts> {
    let want = key_id.map(parse_key_id).transpose()?;
    let inputs: Vec<&[u8]> = shards.iter().map(|b| &b[..]).collect();
    let created = now_unix();
    let art = py
        .detach(|| crate::core::merge::plan(&inputs, want.as_ref())?.into_artefact(created))
        .map_err(PyCoreError)?;
    artefact_out(py, art, None)
}
