//! `pi_match.Key`: the joint operation's secret. Never printed, pickled or written into an
//! artefact; only its key id travels.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::{PyFileExistsError, PyTypeError};
use pyo3::prelude::*;

use super::error::{InsecureKeyFileWarning, PyCoreError};
use crate::core::key::Key;
use crate::core::Error;

#[pyclass(name = "Key", module = "pi_match._core", frozen)]
pub struct PyKey {
    pub inner: Arc<Key>,
}

fn io_err(path: &std::path::Path, what: &str, e: std::io::Error) -> PyErr {
    PyCoreError(Error::io(format!("reading {what} {}", path.display()), e)).into()
}

/// The text of a small secret file (a key, a keyless secret), warning when other users can
/// read it. Anything but a small regular file is refused (a FIFO would hang, /dev/zero never
/// end).
pub(crate) fn read_secret_file(
    py: Python<'_>,
    path: &std::path::Path,
    what: &str,
) -> PyResult<zeroize::Zeroizing<String>> {
    let (mut f, _) =
        crate::core::files::open_regular(path, Some(64 << 10), what).map_err(PyCoreError)?;
    let meta = f.metadata().map_err(|e| io_err(path, what, e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        PyErr::warn(
            py,
            &py.get_type::<InsecureKeyFileWarning>(),
            &std::ffi::CString::new(format!(
                "{what} {} can be read by other users (mode {:o}); run: chmod 600 {}",
                path.display(),
                meta.permissions().mode() & 0o777,
                path.display()
            ))
            .unwrap_or_default(),
            1,
        )?;
    }
    let mut text = zeroize::Zeroizing::new(String::new());
    std::io::Read::read_to_string(&mut f, &mut text).map_err(|e| io_err(path, what, e))?;
    Ok(text)
}

/// Write a secret file (mode 0600, atomically); without `overwrite` an existing file is a
/// FileExistsError.
pub(crate) fn write_secret_file(
    path: &std::path::Path,
    text: &str,
    overwrite: bool,
    what: &str,
) -> PyResult<()> {
    crate::core::files::write_atomic(path, 0o600, overwrite, |w| {
        w.write_all(text.as_bytes())
            .map_err(|e| Error::io(format!("writing {what} {}", path.display()), e))
    })
    .map_err(|e| match e {
        Error::Io { source, .. } if source.kind == std::io::ErrorKind::AlreadyExists => {
            PyFileExistsError::new_err(format!(
                "{} already exists; pass overwrite=True to replace it",
                path.display()
            ))
        }
        other => PyCoreError(other).into(),
    })
}

#[pymethods]
impl PyKey {
    /// A fresh random 256-bit key from the operating system's CSPRNG.
    ///
    /// >>> key = Key.generate()
    /// >>> len(key.id)
    /// 16
    #[staticmethod]
    fn generate() -> PyResult<PyKey> {
        Ok(PyKey {
            inner: Arc::new(Key::generate().map_err(PyCoreError)?),
        })
    }

    /// A key from its 32 secret bytes (for tests and published test vectors).
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<PyKey> {
        Ok(PyKey {
            inner: Arc::new(Key::from_bytes(data).map_err(PyCoreError)?),
        })
    }

    /// Read a key file written by `save` or `pi-match keygen`. Warns
    /// (`InsecureKeyFileWarning`) when the file is readable by group or others.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<PyKey> {
        let text = read_secret_file(py, &path, "key file")?;
        let key = Key::from_file_text(&text).map_err(|e| match e {
            Error::Invalid(m) => PyCoreError(Error::Invalid(format!("{}: {m}", path.display()))),
            other => PyCoreError(other),
        })?;
        Ok(PyKey {
            inner: Arc::new(key),
        })
    }

    /// Write the key to `path` with mode 0600. Refuses to replace an existing file unless
    /// `overwrite=True` (then it is replaced atomically).
    #[pyo3(signature = (path, *, overwrite = false))]
    fn save(&self, path: PathBuf, overwrite: bool) -> PyResult<()> {
        write_secret_file(&path, &self.inner.to_file_text(), overwrite, "key file")
    }

    fn derive(&self, operation_id: &str) -> PyResult<PyKey> {
        Ok(PyKey {
            inner: Arc::new(self.inner.derive(operation_id).map_err(PyCoreError)?),
        })
    }

    /// The key id: 16 hex digits derived from the key by HKDF, safe to share and printed on
    /// every artefact; it does not help anyone guess the key.
    #[getter]
    fn id(&self) -> String {
        self.inner.id_hex()
    }

    fn __repr__(&self) -> String {
        format!("Key(id='{}')", self.inner.id_hex())
    }

    fn __str__(&self) -> String {
        self.__repr__()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        // Equal secrets have equal ids, and different ids mean different secrets.
        other
            .cast::<PyKey>()
            .is_ok_and(|o| o.get().inner.id() == self.inner.id())
    }

    fn __hash__(&self) -> u64 {
        u64::from_le_bytes(*self.inner.id())
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(PyTypeError::new_err(
            "a Key is not pickled (it would put the secret in the pickle); share key files out of band and load them with Key.load(path)",
        ))
    }
}
