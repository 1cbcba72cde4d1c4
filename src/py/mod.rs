//! The `pi_match._core` extension module: bindings only.

mod error;
mod index;
mod io;
mod key;
mod link;
mod lock;
mod values;

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::core::bulk::canonicalize_all;
use crate::core::canon::{ALL_KINDS, ALL_REASONS};
use crate::core::format::{self, Artefact, SectionRef};
use crate::core::key::{key_id_hex, KeyId};
use crate::core::Error;
use error::{key_mismatch, PyCoreError};
use index::{into_py, now_unix, objects, PyBloomIndex, PyTagSet};
use key::PyKey;

fn canon_impl(
    py: Python<'_>,
    kind: &str,
    values: &Bound<'_, PyAny>,
    canon_version: Option<u16>,
) -> PyResult<(Vec<Option<String>>, Vec<u8>)> {
    let kind = index::parse_canon(kind, canon_version)?;
    let col = values::extract_column(values)?;
    Ok(py.detach(|| {
        let mut out = Vec::with_capacity(col.len());
        let mut codes = Vec::with_capacity(col.len());
        for part in &col.parts {
            let (o, c) = canonicalize_all(kind, part);
            out.extend(o);
            codes.extend(c);
        }
        (out, codes)
    }))
}

/// The canonical form of each value, or None where the value cannot be used.
///
/// >>> canonicalize("cn_mobile", ["+86 138-0013-8000", "12345"])
/// ['+8613800138000', None]
#[pyfunction]
#[pyo3(signature = (kind, values, *, canon_version = None))]
fn canonicalize(
    py: Python<'_>,
    kind: &str,
    values: &Bound<'_, PyAny>,
    canon_version: Option<u16>,
) -> PyResult<Vec<Option<String>>> {
    Ok(canon_impl(py, kind, values, canon_version)?.0)
}

type CanonWithReasons = (Vec<Option<String>>, Vec<Option<&'static str>>);

/// Canonical forms and, beside them, the reason each unusable value was rejected.
///
/// >>> canonicalize_with_reasons("cn_ric", ["11010519491231002x", "1.10105E+17", "-"])
/// (['11010519491231002X', None, None], [None, 'excel_scientific', 'placeholder'])
#[pyfunction]
#[pyo3(signature = (kind, values, *, canon_version = None))]
fn canonicalize_with_reasons(
    py: Python<'_>,
    kind: &str,
    values: &Bound<'_, PyAny>,
    canon_version: Option<u16>,
) -> PyResult<CanonWithReasons> {
    let (out, codes) = canon_impl(py, kind, values, canon_version)?;
    let reasons = codes
        .into_iter()
        .map(|c| crate::core::canon::Reason::from_code(c).map(|r| r.name()))
        .collect();
    Ok((out, reasons))
}

/// A bool array marking the values shaped as Excel's rounding leaves a long number (more than
/// 15 ASCII digits, zeros after the 15th), or None when there are none.
#[pyfunction]
fn excel_rounded_shape<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, numpy::PyArray1<bool>>>> {
    let col = values::extract_column(values)?;
    let mask: Vec<bool> = py.detach(|| {
        col.parts
            .iter()
            .flat_map(|p| crate::core::bulk::raw_mask(p, crate::core::canon::looks_excel_rounded))
            .collect()
    });
    Ok(mask
        .iter()
        .any(|&b| b)
        .then(|| numpy::PyArray1::from_vec(py, mask)))
}

/// Read an artefact file: (key id, created, [BloomIndex | TagSet, ...]). `verify=False` skips
/// the payload checksums (the structure is still checked): a memory-mapped index then opens
/// without being read.
#[pyfunction]
#[pyo3(signature = (path, *, key = None, verify = true))]
fn load_artefact(
    py: Python<'_>,
    path: PathBuf,
    key: Option<PyRef<'_, PyKey>>,
    verify: bool,
) -> PyResult<ArtefactParts> {
    let art = py
        .detach(|| Artefact::open_with(&path, verify))
        .map_err(PyCoreError)?;
    artefact_out(py, art, key.as_deref())
}

/// As `load_artefact`, from bytes.
#[pyfunction]
#[pyo3(signature = (data, *, key = None))]
fn artefact_from_bytes(
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
            SectionObj::Bloom(b) => b.raw_key_id(),
            SectionObj::Tags(t) => t.raw_key_id(),
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
        return Err(error::key_mismatch_between(
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
/// with `authenticate_with=key` the file carries a MAC over all its bytes.
#[pyfunction]
#[pyo3(signature = (path, objects, *, authenticate_with = None))]
fn save_artefact(
    py: Python<'_>,
    path: PathBuf,
    objects: &Bound<'_, PyAny>,
    authenticate_with: Option<PyRef<'_, PyKey>>,
) -> PyResult<u64> {
    let created = now_unix();
    let items: Vec<Bound<'_, PyAny>> = objects.try_iter()?.collect::<PyResult<_>>()?;
    let (kid, objs) = section_objs(&items)?;
    let mac = mac_key_for(authenticate_with.as_deref(), &kid)?;
    let n = py.detach(|| {
        with_sections(&objs, |s| {
            format::save_with(&path, &kid, created, s, mac.as_deref())
        })
    });
    Ok(n.map_err(PyCoreError)?)
}

/// "valid", "invalid" or "not_authenticated": whether an artefact's MAC is right for `key`
/// (damaged files raise FormatError; a key with another id raises KeyMismatchError).
#[pyfunction]
fn verify_artefact(py: Python<'_>, data: &[u8], key: PyRef<'_, PyKey>) -> PyResult<&'static str> {
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
fn artefact_to_bytes<'py>(
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
            format::to_bytes_with(&kid, created, s, mac.as_deref())
        })
    });
    Ok(PyBytes::new(py, &v.map_err(PyCoreError)?))
}

/// Unpickle support: a BloomIndex or TagSet from its bytes (never with a key).
#[pyfunction]
fn _restore(py: Python<'_>, data: &[u8]) -> PyResult<Py<PyAny>> {
    let art = Artefact::from_bytes(data).map_err(PyCoreError)?;
    let mut objs = objects(art, None)?;
    if objs.len() != 1 {
        return Err(PyCoreError(Error::format("a pickled index holds exactly one section")).into());
    }
    into_py(py, objs.pop().expect("one"))
}

/// The expected false-positive rate of a filter layout after `n` distinct values.
#[pyfunction]
fn expected_fpr(n: f64, num_blocks: u64, blocks_per_key: u8) -> PyResult<f64> {
    if !num_blocks.is_power_of_two() {
        return Err(PyCoreError(Error::Invalid(format!(
            "num_blocks must be a power of two, got {num_blocks}"
        )))
        .into());
    }
    Ok(crate::core::bloom::expected_fpr(
        n,
        num_blocks.trailing_zeros() as u8,
        blocks_per_key,
    ))
}

/// The standard deviation an overlap estimate will have (the model) for lists of `na` and `nb`
/// distinct items sharing `shared`, in indices of `num_blocks` blocks.
#[pyfunction]
fn expected_overlap_sd(
    na: f64,
    nb: f64,
    shared: f64,
    num_blocks: u64,
    blocks_per_key: u8,
) -> PyResult<f64> {
    if !num_blocks.is_power_of_two() || num_blocks > 1 << 36 {
        return Err(PyCoreError(Error::Invalid(format!(
            "num_blocks must be a power of two up to 2^36, got {num_blocks}"
        )))
        .into());
    }
    Ok(crate::core::estimate::overlap_sd_model(
        na,
        nb,
        shared,
        num_blocks.trailing_zeros() as u8,
        blocks_per_key,
    ))
}

/// Benchmark floor: HMAC-SHA256 of each value's raw bytes, in parallel, nothing else.
#[pyfunction]
#[pyo3(signature = (key, values, prf = "hmac-sha256"))]
fn _prf_floor(
    py: Python<'_>,
    key: PyRef<'_, PyKey>,
    values: &Bound<'_, PyAny>,
    prf: &str,
) -> PyResult<u64> {
    let col = values::extract_column(values)?;
    let kind = crate::core::canon::Kind::Raw;
    let prf = key
        .inner
        .prf_with(kind, kind.canon_version(), index::parse_prf(prf)?);
    Ok(py.detach(|| {
        col.parts
            .iter()
            .map(|p| crate::core::bulk::prf_only(&prf, p))
            .sum()
    }))
}

/// (num_blocks, blocks_per_key) that `BloomIndex` picks for `capacity` and `fpr`.
#[pyfunction]
fn plan_layout(capacity: u64, fpr: f64) -> PyResult<(u64, u8)> {
    let (l2, bpk) = crate::core::bloom::plan(capacity, fpr).map_err(PyCoreError)?;
    Ok((1u64 << l2, bpk))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", crate::VERSION)?;
    m.add("FORMAT_VERSION", format::VERSION)?;
    m.add(
        "KINDS",
        PyTuple::new(py, ALL_KINDS.iter().map(|k| k.name()))?,
    )?;
    // REASONS[code] is the reason name; code 0 means the value was used.
    let reasons: Vec<&str> = std::iter::once("ok")
        .chain(ALL_REASONS.iter().map(|r| r.name()))
        .collect();
    m.add("REASONS", PyTuple::new(py, reasons)?)?;
    m.add("HELD", index::HELD)?;
    m.add(
        "PRFS",
        PyTuple::new(py, crate::core::prf::ALL_PRFS.iter().map(|p| p.name()))?,
    )?;
    // CANON_VERSIONS[kind] lists the canonicaliser versions this pi_match implements.
    let versions = pyo3::types::PyDict::new(py);
    for k in ALL_KINDS {
        versions.set_item(k.name(), PyTuple::new(py, k.versions())?)?;
    }
    m.add("CANON_VERSIONS", versions)?;
    error::register(m)?;
    error::register_warnings(m)?;
    m.add_class::<PyKey>()?;
    m.add_class::<PyBloomIndex>()?;
    m.add_class::<PyTagSet>()?;
    m.add_class::<index::PyEstimate>()?;
    m.add_class::<index::PyAddReport>()?;
    m.add_function(wrap_pyfunction!(canonicalize, m)?)?;
    m.add_function(wrap_pyfunction!(canonicalize_with_reasons, m)?)?;
    m.add_function(wrap_pyfunction!(excel_rounded_shape, m)?)?;
    m.add_function(wrap_pyfunction!(index::estimate_overlap, m)?)?;
    m.add_function(wrap_pyfunction!(index::bloom_linear, m)?)?;
    m.add_function(wrap_pyfunction!(index::membership_counts, m)?)?;
    m.add_function(wrap_pyfunction!(index::tag64_values, m)?)?;
    m.add_function(wrap_pyfunction!(load_artefact, m)?)?;
    m.add_function(wrap_pyfunction!(artefact_from_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(save_artefact, m)?)?;
    m.add_function(wrap_pyfunction!(verify_artefact, m)?)?;
    m.add_function(wrap_pyfunction!(artefact_to_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(_restore, m)?)?;
    m.add_function(wrap_pyfunction!(expected_fpr, m)?)?;
    m.add_function(wrap_pyfunction!(plan_layout, m)?)?;
    m.add_function(wrap_pyfunction!(expected_overlap_sd, m)?)?;
    m.add_function(wrap_pyfunction!(_prf_floor, m)?)?;
    m.add_function(wrap_pyfunction!(io::split_delimited, m)?)?;
    m.add_function(wrap_pyfunction!(io::utf8_error_offset, m)?)?;
    m.add_function(wrap_pyfunction!(io::line_breaks, m)?)?;
    m.add_function(wrap_pyfunction!(io::encoding_mix, m)?)?;
    m.add_function(wrap_pyfunction!(link::link_components, m)?)?;
    Ok(())
}
