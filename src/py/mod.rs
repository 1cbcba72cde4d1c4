//! The `pi_match._core` extension module: bindings only.

mod artefact;
mod bloom;
mod counting;
mod error;
mod io;
mod key;
mod keyed;
mod link;
mod lock;
mod psi;
mod results;
mod section;
mod tagset;
mod values;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::core::bulk::canonicalize_all;
use crate::core::canon::{ALL_KINDS, ALL_REASONS};
use crate::core::format::{self};
use crate::core::Error;
use bloom::PyBloomIndex;
use error::PyCoreError;
use key::PyKey;
use tagset::PyTagSet;

fn canon_impl(
    py: Python<'_>,
    kind: &str,
    values: &Bound<'_, PyAny>,
    canon_version: Option<u16>,
) -> PyResult<(Vec<Option<String>>, Vec<u8>)> {
    let kind = keyed::parse_canon(kind, canon_version)?;
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
        .prf_with(kind, kind.canon_version(), keyed::parse_prf(prf)?);
    Ok(py.detach(|| {
        col.parts
            .iter()
            .map(|p| crate::core::bulk::prf_only(&prf, p))
            .sum()
    }))
}

/// How many of `values` are valid identifiers of `kind` (canonicalised in parallel, nothing
/// tagged): the cheap first pass that sizes a distributed build's indices.
#[pyfunction]
#[pyo3(signature = (kind, values, *, canon_version = None))]
fn count_valid(
    py: Python<'_>,
    kind: &str,
    values: &Bound<'_, PyAny>,
    canon_version: Option<u16>,
) -> PyResult<u64> {
    let canon = keyed::parse_canon(kind, canon_version)?;
    let col = values::extract_column(values)?;
    Ok(lock::maybe_detach(py, col.len(), || {
        col.parts
            .iter()
            .map(|p| crate::core::bulk::count_valid(canon, p))
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
    m.add("HELD", keyed::HELD)?;
    // The codes of missing values (empty, placeholder): counted apart from rejected ones.
    let missing: Vec<u8> = ALL_REASONS
        .iter()
        .filter(|r| r.is_missing())
        .map(|r| r.code())
        .collect();
    m.add("MISSING_CODES", PyTuple::new(py, missing)?)?;
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
    m.add_class::<io::PyGb18030>()?;
    m.add_class::<PyBloomIndex>()?;
    m.add_class::<PyTagSet>()?;
    m.add_class::<psi::PyPsiSecret>()?;
    m.add_class::<psi::PyPsiFirstPass>()?;
    m.add_class::<psi::PyPsiMessage>()?;
    m.add_function(wrap_pyfunction!(psi::psi_first_message, m)?)?;
    m.add_function(wrap_pyfunction!(psi::psi_blind, m)?)?;
    m.add_function(wrap_pyfunction!(psi::psi_check_countable, m)?)?;
    m.add_function(wrap_pyfunction!(psi::_psi_floor, m)?)?;
    m.add_class::<results::PyEstimate>()?;
    m.add_class::<results::PyAddReport>()?;
    m.add_class::<io::PySplit>()?;
    m.add_function(wrap_pyfunction!(canonicalize, m)?)?;
    m.add_function(wrap_pyfunction!(canonicalize_with_reasons, m)?)?;
    m.add_function(wrap_pyfunction!(excel_rounded_shape, m)?)?;
    m.add_function(wrap_pyfunction!(counting::estimate_overlap, m)?)?;
    m.add_function(wrap_pyfunction!(counting::bloom_linear, m)?)?;
    m.add_function(wrap_pyfunction!(counting::membership_counts, m)?)?;
    m.add_function(wrap_pyfunction!(counting::row_tags, m)?)?;
    m.add_function(wrap_pyfunction!(counting::tag_membership_counts, m)?)?;
    m.add_function(wrap_pyfunction!(counting::group_distinct_counts, m)?)?;
    m.add_function(wrap_pyfunction!(artefact::load_artefact, m)?)?;
    m.add_function(wrap_pyfunction!(artefact::artefact_from_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(artefact::save_artefact, m)?)?;
    m.add_function(wrap_pyfunction!(artefact::verify_artefact, m)?)?;
    m.add_function(wrap_pyfunction!(artefact::artefact_to_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(artefact::_restore, m)?)?;
    m.add_function(wrap_pyfunction!(artefact::merge_shards, m)?)?;
    m.add_function(wrap_pyfunction!(artefact::merge_shard_parts, m)?)?;
    m.add_function(wrap_pyfunction!(expected_fpr, m)?)?;
    m.add_function(wrap_pyfunction!(plan_layout, m)?)?;
    m.add_function(wrap_pyfunction!(count_valid, m)?)?;
    m.add_function(wrap_pyfunction!(expected_overlap_sd, m)?)?;
    m.add_function(wrap_pyfunction!(_prf_floor, m)?)?;
    m.add_function(wrap_pyfunction!(io::split_delimited, m)?)?;
    m.add_function(wrap_pyfunction!(io::utf8_error_offset, m)?)?;
    m.add_function(wrap_pyfunction!(io::line_breaks, m)?)?;
    m.add_function(wrap_pyfunction!(io::scan_text_file, m)?)?;
    m.add_function(wrap_pyfunction!(io::_tune_malloc_for_streaming, m)?)?;
    m.add_function(wrap_pyfunction!(io::encoding_mix, m)?)?;
    m.add_function(wrap_pyfunction!(io::csv_rows, m)?)?;
    m.add_function(wrap_pyfunction!(io::jsonl_read, m)?)?;
    m.add_function(wrap_pyfunction!(link::link_components, m)?)?;
    Ok(())
}
