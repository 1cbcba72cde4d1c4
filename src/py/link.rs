//! `link_components`: the person-linking pass of the statutory report, with the GIL released.

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use super::error::PyCoreError;
use crate::core::Error;

/// For `n` rows and, per identifier kind, each row's 64-bit tag and whether it is valid: the
/// item of every row (the smallest row index of the rows linked to it through any shared valid
/// identifier), or 2**64 - 1 for a row with no valid identifier.
#[pyfunction]
pub fn link_components<'py>(
    py: Python<'py>,
    n: usize,
    tags: Vec<PyReadonlyArray1<'py, u64>>,
    valid: Vec<PyReadonlyArray1<'py, bool>>,
) -> PyResult<Bound<'py, PyArray1<u64>>> {
    if tags.len() != valid.len() {
        return Err(PyCoreError(Error::Invalid(
            "link_components needs one valid mask per tag array".into(),
        ))
        .into());
    }
    let slices: Vec<(&[u64], &[bool])> = tags
        .iter()
        .zip(&valid)
        .map(|(t, v)| Ok((t.as_slice()?, v.as_slice()?)))
        .collect::<Result<_, numpy::AsSliceError>>()
        .map_err(|e| PyCoreError(Error::Invalid(e.to_string())))?;
    let out = py
        .detach(|| crate::core::link::components(n, &slices))
        .map_err(|e| PyCoreError(Error::Invalid(e)))?;
    Ok(PyArray1::from_vec(py, out))
}
