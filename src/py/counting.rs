//! The counting functions over several keyed objects (`pi_match.count` calls them).

use std::sync::RwLock;

use numpy::PyArray1;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use super::bloom::PyBloomIndex;
use super::error::PyCoreError;
use super::key::PyKey;
use super::keyed::{check_all, parse_canon};
use super::lock::{maybe_detach, ReadMany};
use super::results::PyEstimate;
use super::tagset::PyTagSet;
use super::values::extract_column;
use crate::core::bloom::Bloom;
use crate::core::estimate::{self, Estimate};
use crate::core::keyed::{KeyedBloom, KeyedTagSet};
use crate::core::tagset::{tag64, TagSet};
use crate::core::Error;

/// `Σ coef · n̂(union of the indices in mask)` over indices of one key and kind, with its 95 %
/// interval (the engine behind `pi_match.count`).
#[pyfunction]
pub fn bloom_linear(
    py: Python<'_>,
    indices: Vec<PyRef<'_, PyBloomIndex>>,
    terms: Vec<(u64, f64)>,
    method: String,
) -> PyResult<PyEstimate> {
    check_all(indices.iter().map(|i| i.meta))?;
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
    let locks: Vec<&RwLock<KeyedBloom>> = indices.iter().map(|i| &i.state).collect();
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
    check_all(sets.iter().map(|s| s.meta))?;
    if sets.is_empty() || sets.len() > 64 {
        return Err(PyCoreError(Error::Invalid(
            "membership_counts takes 1 to 64 tag sets".into(),
        ))
        .into());
    }
    let locks: Vec<&RwLock<KeyedTagSet>> = sets.iter().map(|s| &s.state).collect();
    Ok(py.detach(|| {
        let g = ReadMany::take(&locks);
        let refs: Vec<&TagSet> = g.all().into_iter().map(|s| &s.set).collect();
        crate::core::tagset::membership_counts(&refs)
    }))
}

type TagsAndCodes<'py> = (Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u8>>);

/// Per-value 64-bit tags (0 where the value was rejected) and reason codes: what tag sets hold,
/// for callers that must keep row identity (the statutory report).
#[pyfunction]
#[pyo3(signature = (key, kind, values, canon_version = None))]
pub fn row_tags<'py>(
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
        let codes = crate::core::keyed::tag_values(kind, &prf, &col.parts, None, |_, c, t| {
            tags.extend(
                c.iter()
                    .zip(t)
                    .map(|(c, t)| if *c == 0 { tag64(t) } else { 0 }),
            );
        });
        (tags, codes)
    });
    Ok((
        PyArray1::from_vec(py, tags),
        PyArray1::from_vec(py, codes.into_vec()),
    ))
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
        let e = py.detach(|| {
            let g = ReadMany::take(&[&a.state, &b.state]);
            g.get(0).overlap(g.get(1))
        });
        return Ok(e.map_err(PyCoreError)?.into());
    }
    if let (Ok(a), Ok(b)) = (a.cast::<PyTagSet>(), b.cast::<PyTagSet>()) {
        let (a, b) = (a.get(), b.get());
        let n = py.detach(|| {
            let g = ReadMany::take(&[&a.state, &b.state]);
            g.get(0).overlap(g.get(1))
        });
        return Ok(Estimate::exact(n.map_err(PyCoreError)?).into());
    }
    Err(PyTypeError::new_err(format!(
        "estimate_overlap takes two BloomIndex or two TagSet objects, got {} and {}",
        a.get_type().name()?,
        b.get_type().name()?
    )))
}

/// `membership_counts` over arrays of 64-bit tags (as the statutory report holds them, per
/// dataset) rather than TagSet objects: {membership bit mask: distinct tags with exactly that
/// membership}.
#[pyfunction]
pub fn tag_membership_counts(
    py: Python<'_>,
    tags: Vec<numpy::PyReadonlyArray1<'_, u64>>,
) -> PyResult<std::collections::HashMap<u64, u64>> {
    if tags.is_empty() || tags.len() > 64 {
        return Err(PyCoreError(Error::Invalid(
            "tag_membership_counts takes 1 to 64 arrays".into(),
        ))
        .into());
    }
    let vecs = tags
        .iter()
        .map(|a| a.as_slice().map(<[u64]>::to_vec))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PyCoreError(Error::Invalid(e.to_string())))?;
    Ok(py.detach(|| {
        let sets: Vec<TagSet> = vecs.into_iter().map(TagSet::from_unsorted).collect();
        let refs: Vec<&TagSet> = sets.iter().collect();
        crate::core::tagset::membership_counts(&refs)
    }))
}

/// Distinct counts over groups of 64-bit tag or item arrays, each group the union of its
/// arrays: `(distinct in base, [distinct in each group], distinct in base and in no group)`.
/// The report's art. 11 count (obtained, per buyer, obtained and never sold) is this.
#[pyfunction]
pub fn group_distinct_counts(
    py: Python<'_>,
    base: Vec<numpy::PyReadonlyArray1<'_, u64>>,
    groups: Vec<Vec<numpy::PyReadonlyArray1<'_, u64>>>,
) -> PyResult<(u64, Vec<u64>, u64)> {
    fn slices<'a>(arrays: &'a [numpy::PyReadonlyArray1<'_, u64>]) -> PyResult<Vec<&'a [u64]>> {
        arrays
            .iter()
            .map(|a| {
                a.as_slice()
                    .map_err(|e| PyCoreError(Error::Invalid(e.to_string())).into())
            })
            .collect()
    }
    let base = slices(&base)?;
    let groups = groups
        .iter()
        .map(|g| slices(g))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(py.detach(|| crate::core::tagset::group_counts(&base, &groups)))
}
