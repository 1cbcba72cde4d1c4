//! The keyless mode's Python classes (`pi_match.psi` wraps them): a party's secret, a first
//! pass over its values, and the messages parties exchange. Bulk work runs in the core
//! (`core::psi`) with the GIL released.

use std::path::PathBuf;
use std::sync::Mutex;

use numpy::PyArray1;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::error::PyCoreError;
use super::key::{read_secret_file, write_secret_file};
use super::keyed::parse_canon;
use super::lock::maybe_detach;
use super::results::PyAddReport;
use super::values::extract_column;
use crate::core::canon::Kind;
use crate::core::keyed::Holds;
use crate::core::psi::{self, FirstPass, Items, Message, Secret};
use crate::core::Error;

/// A party's secret for one keyless operation. Never printed, pickled or put in a message.
#[pyclass(name = "PsiSecret", module = "pi_match._core", frozen)]
pub struct PyPsiSecret {
    inner: Secret,
}

#[pymethods]
impl PyPsiSecret {
    /// A new random scalar for `party`, one of `parties` (the agreed order), in `operation`.
    #[staticmethod]
    fn generate(operation: &str, party: &str, parties: Vec<String>) -> PyResult<PyPsiSecret> {
        Ok(PyPsiSecret {
            inner: Secret::generate(operation, party, &parties).map_err(PyCoreError)?,
        })
    }

    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<PyPsiSecret> {
        let text = read_secret_file(py, &path, "keyless secret file")?;
        let inner = Secret::from_file_text(&text).map_err(|e| match e {
            Error::Invalid(m) => PyCoreError(Error::Invalid(format!("{}: {m}", path.display()))),
            other => PyCoreError(other),
        })?;
        Ok(PyPsiSecret { inner })
    }

    /// Write the secret file (mode 0600). It is never replaced: a second scalar for the same
    /// operation and party would make the exchange's messages disagree.
    fn save(&self, path: PathBuf) -> PyResult<()> {
        write_secret_file(
            &path,
            &self.inner.to_file_text(),
            false,
            "keyless secret file",
        )
    }

    #[getter]
    fn operation(&self) -> &str {
        &self.inner.operation
    }
    #[getter]
    fn party(&self) -> &str {
        &self.inner.party
    }
    #[getter]
    fn parties(&self) -> Vec<String> {
        self.inner.parties.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "PsiSecret(operation={:?}, party={:?}, parties={:?})",
            self.inner.operation, self.inner.party, self.inner.parties
        )
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(PyTypeError::new_err(
            "a keyless secret cannot be pickled: load it from its file where it is needed",
        ))
    }
}

/// One identifier kind's first pass: values canonicalised and blinded as batches come.
#[pyclass(name = "PsiFirstPass", module = "pi_match._core", frozen)]
pub struct PyPsiFirstPass {
    pass: Mutex<Option<FirstPass>>,
}

impl PyPsiFirstPass {
    fn take(&self) -> PyResult<FirstPass> {
        self.pass
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .ok_or_else(|| {
                PyCoreError(Error::Invalid(
                    "this first pass is already in a message".into(),
                ))
                .into()
            })
    }
}

#[pymethods]
impl PyPsiFirstPass {
    #[new]
    #[pyo3(signature = (kind, *, canon_version = None))]
    fn new(kind: &str, canon_version: Option<u16>) -> PyResult<PyPsiFirstPass> {
        Ok(PyPsiFirstPass {
            pass: Mutex::new(Some(FirstPass::new(parse_canon(kind, canon_version)?))),
        })
    }

    /// Canonicalise and blind `values` with `secret`'s scalar (the GIL released); with `hold=`
    /// the marked valid values are left out with code HELD, and with `hold_excel_rounded=True`
    /// those of Excel's rounded shape, as `BloomIndex.add` does.
    #[pyo3(signature = (secret, values, *, hold = None, hold_excel_rounded = false))]
    fn add(
        &self,
        py: Python<'_>,
        secret: PyRef<'_, PyPsiSecret>,
        values: &Bound<'_, PyAny>,
        hold: Option<numpy::PyReadonlyArray1<'_, bool>>,
        hold_excel_rounded: bool,
    ) -> PyResult<PyAddReport> {
        let col = extract_column(values)?;
        let hold = match &hold {
            Some(h) => Some(
                h.as_slice()
                    .map_err(|e| PyCoreError(Error::Invalid(e.to_string())))?,
            ),
            None => None,
        };
        let mut pass = self.take()?;
        let secret = &secret.inner;
        let holds = Holds {
            marked: hold,
            excel_rounded: hold_excel_rounded,
        };
        let r = maybe_detach(py, col.len(), || pass.add(secret, &col.parts, holds));
        *self
            .pass
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(pass);
        Ok(PyAddReport::new(py, r.map_err(PyCoreError)?.into()))
    }

    #[getter]
    fn kind(&self) -> PyResult<&'static str> {
        let g = self
            .pass
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(g.as_ref().map_or("", |p| p.canon.kind.name()))
    }
}

/// A keyless-mode message: one party's sets, blinded by the parties named in `applied`.
#[pyclass(name = "PsiMessage", module = "pi_match._core", frozen)]
pub struct PyPsiMessage {
    pub(crate) inner: Message,
}

#[pymethods]
impl PyPsiMessage {
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<PyPsiMessage> {
        let inner = py.detach(|| Message::open(&path)).map_err(PyCoreError)?;
        Ok(PyPsiMessage { inner })
    }

    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<PyPsiMessage> {
        Ok(PyPsiMessage {
            inner: Message::from_bytes(data).map_err(PyCoreError)?,
        })
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let v = py.detach(|| self.inner.to_bytes()).map_err(PyCoreError)?;
        Ok(PyBytes::new(py, &v))
    }

    /// Write the message (atomically); returns the file's SHA-256 (hex).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<String> {
        let sha = py.detach(|| self.inner.save(&path)).map_err(PyCoreError)?;
        Ok(sha.iter().map(|b| format!("{b:02x}")).collect())
    }

    #[getter]
    fn operation(&self) -> &str {
        &self.inner.operation
    }
    #[getter]
    fn parties(&self) -> Vec<String> {
        self.inner.parties.clone()
    }
    /// The party whose set this is.
    #[getter]
    fn origin(&self) -> &str {
        self.inner.origin_name()
    }
    /// The parties that have blinded it, in the agreed order.
    #[getter]
    fn applied(&self) -> Vec<String> {
        self.inner
            .applied_names()
            .into_iter()
            .map(String::from)
            .collect()
    }
    /// How many parties have blinded it.
    #[getter]
    fn round(&self) -> u32 {
        self.inner.round()
    }
    /// Blinded by every party (its sets are then truncated to 64 bits).
    #[getter]
    fn is_final(&self) -> bool {
        self.inner.is_final()
    }
    #[getter]
    fn created(&self) -> u64 {
        self.inner.created
    }
    /// The identifier kinds it holds, in kind order.
    #[getter]
    fn kinds(&self) -> Vec<&'static str> {
        self.inner
            .sets
            .iter()
            .map(|s| s.canon.kind.name())
            .collect()
    }
    /// {kind: items in the set}.
    #[getter]
    fn sizes(&self) -> std::collections::BTreeMap<&'static str, usize> {
        self.inner
            .sets
            .iter()
            .map(|s| (s.canon.kind.name(), s.items.len()))
            .collect()
    }
    /// {kind: canonicaliser version}.
    #[getter]
    fn canon_versions(&self) -> std::collections::BTreeMap<&'static str, u16> {
        self.inner
            .sets
            .iter()
            .map(|s| (s.canon.kind.name(), s.canon.version))
            .collect()
    }

    /// The fully blinded, truncated set of `kind` as ascending uint64 (final messages only).
    fn final_tags<'py>(&self, py: Python<'py>, kind: &str) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let k = Kind::from_name(kind)
            .ok_or_else(|| PyCoreError(Error::Invalid(format!("unknown kind {kind:?}"))))?;
        match self.inner.set(k).map(|s| &s.items) {
            Some(Items::Final(t)) => Ok(PyArray1::from_slice(py, t)),
            Some(Items::Points(_)) => Err(PyCoreError(Error::Incompatible(format!(
                "{}'s message is not yet blinded by every party",
                self.inner.origin_name()
            )))
            .into()),
            None => Err(PyCoreError(Error::Invalid(format!(
                "{}'s message has no {kind} set",
                self.inner.origin_name()
            )))
            .into()),
        }
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyPsiMessage>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "PsiMessage(operation={:?}, origin={:?}, applied={:?}, sizes={:?})",
            self.inner.operation,
            self.inner.origin_name(),
            self.inner.applied_names(),
            self.sizes()
        )
    }
}

/// This party's first message from its first passes (each pass goes into the message).
#[pyfunction]
pub fn psi_first_message(
    secret: PyRef<'_, PyPsiSecret>,
    passes: Vec<PyRef<'_, PyPsiFirstPass>>,
) -> PyResult<PyPsiMessage> {
    let passes = passes
        .iter()
        .map(|p| p.take())
        .collect::<PyResult<Vec<_>>>()?;
    Ok(PyPsiMessage {
        inner: psi::first_message(&secret.inner, passes).map_err(PyCoreError)?,
    })
}

/// Apply `secret`'s scalar to a partner's message (GIL released); see `core::psi::blind`.
#[pyfunction]
#[pyo3(signature = (message, secret, *, max_items = None))]
pub fn psi_blind(
    py: Python<'_>,
    message: PyRef<'_, PyPsiMessage>,
    secret: PyRef<'_, PyPsiSecret>,
    max_items: Option<u64>,
) -> PyResult<PyPsiMessage> {
    let (m, s) = (&message.inner, &secret.inner);
    let inner = py
        .detach(|| psi::blind(s, m, max_items))
        .map_err(PyCoreError)?;
    Ok(PyPsiMessage { inner })
}

/// Refuse messages that cannot be counted together (see `core::psi::check_countable`).
#[pyfunction]
pub fn psi_check_countable(messages: Vec<PyRef<'_, PyPsiMessage>>) -> PyResult<()> {
    let msgs: Vec<&Message> = messages.iter().map(|m| &m.inner).collect();
    psi::check_countable(&msgs).map_err(|e| PyCoreError(e).into())
}

/// Benchmark floor: seconds for `n` scalar multiplications alone, in parallel.
#[pyfunction]
pub fn _psi_floor(py: Python<'_>, n: usize) -> f64 {
    py.detach(|| crate::core::psi::group::mul_floor(n))
}
