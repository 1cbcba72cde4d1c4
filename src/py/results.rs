//! `Estimate` and `AddReport`: the results the keyed objects hand back.

use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use std::sync::OnceLock;

use crate::core::bulk::Codes;
use crate::core::canon::Reason;
use crate::core::estimate::Estimate;

// ---- Estimate ----------------------------------------------------------------------------

type EstimateArgs = (f64, f64, f64, String);

/// A count with its 95 % interval and how it was obtained.
///
/// >>> Estimate(10.0, 8.0, 12.0, "bloom_popcount")
/// Estimate(value=10.0, low=8.0, high=12.0, method='bloom_popcount')
#[pyclass(name = "Estimate", module = "pi_match._core", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyEstimate {
    #[pyo3(get)]
    pub(crate) value: f64,
    #[pyo3(get)]
    low: f64,
    #[pyo3(get)]
    high: f64,
    #[pyo3(get)]
    method: String,
}

impl From<Estimate> for PyEstimate {
    fn from(e: Estimate) -> Self {
        PyEstimate {
            value: e.value,
            low: e.low,
            high: e.high,
            method: e.method.to_string(),
        }
    }
}

#[pymethods]
impl PyEstimate {
    #[new]
    fn new(value: f64, low: f64, high: f64, method: String) -> PyEstimate {
        PyEstimate {
            value,
            low,
            high,
            method,
        }
    }

    /// True when low == value == high came from exact sets.
    #[getter]
    fn exact(&self) -> bool {
        self.method == "exact" || self.method == "psi"
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("value", self.value)?;
        d.set_item("low", self.low)?;
        d.set_item("high", self.high)?;
        d.set_item("method", &self.method)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Estimate(value={:?}, low={:?}, high={:?}, method='{}')",
            self.value, self.low, self.high, self.method
        )
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, EstimateArgs)> {
        let s = slf.get();
        Ok((
            slf.get_type().into_any(),
            (s.value, s.low, s.high, s.method.clone()),
        ))
    }
}

// ---- AddReport ---------------------------------------------------------------------------

/// What `add` did with each value: how many were used, missing (empty or a placeholder) or
/// rejected, by reason, and the reason code of every value (`pi_match.REASONS[code]`).
///
/// The codes are held as the positions of the values not used while those are few, so a
/// large clean `add` costs no byte a value; `codes` makes the array when first asked.
#[pyclass(name = "AddReport", module = "pi_match._core", frozen)]
pub struct PyAddReport {
    codes: Codes,
    array: OnceLock<Py<PyArray1<u8>>>,
}

impl PyAddReport {
    pub(crate) fn new(_py: Python<'_>, codes: Codes) -> PyAddReport {
        PyAddReport {
            codes,
            array: OnceLock::new(),
        }
    }

    fn count(&self, code: u8) -> u64 {
        self.codes.counts()[usize::from(code)]
    }

    fn sum(&self, pred: impl Fn(Reason) -> bool) -> u64 {
        (1..=255u8)
            .filter_map(Reason::from_code)
            .filter(|r| pred(*r))
            .map(|r| self.count(r.code()))
            .sum()
    }
}

#[pymethods]
impl PyAddReport {
    /// Values given.
    #[getter]
    fn rows(&self) -> u64 {
        self.codes.len() as u64
    }
    /// Values canonicalised and added (repeats included).
    #[getter]
    fn valid(&self) -> u64 {
        self.count(0)
    }
    /// Same as `valid`.
    #[getter]
    fn added(&self) -> u64 {
        self.count(0)
    }
    /// Empty values and placeholders (`-`, `NULL`, `\N`...): absent, not invalid.
    #[getter]
    fn missing(&self) -> u64 {
        self.sum(Reason::is_missing)
    }
    /// Values present but invalid.
    #[getter]
    fn rejected(&self) -> u64 {
        self.sum(|r| !r.is_missing())
    }
    /// Invalid values by reason name.
    #[getter]
    fn rejected_by_reason<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.by(py, |r| !r.is_missing())
    }
    /// Missing values by reason name (`empty`, `placeholder`).
    #[getter]
    fn missing_by_reason<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.by(py, Reason::is_missing)
    }
    /// Reason code per value, 0 where the value was used.
    #[getter]
    fn codes<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u8>> {
        self.array
            .get_or_init(|| PyArray1::from_vec(py, self.codes.to_vec()).unbind())
            .bind(py)
            .clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "AddReport(rows={}, valid={}, missing={}, rejected={})",
            self.rows(),
            self.valid(),
            self.missing(),
            self.rejected()
        )
    }
}

impl PyAddReport {
    fn by<'py>(
        &self,
        py: Python<'py>,
        pred: impl Fn(Reason) -> bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for r in (1..=255u8)
            .filter_map(Reason::from_code)
            .filter(|r| pred(*r))
        {
            let n = self.count(r.code());
            if n > 0 {
                d.set_item(r.name(), n)?;
            }
        }
        Ok(d)
    }
}
