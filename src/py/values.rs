//! Turning whatever the caller passed (Arrow arrays and streams, numpy arrays, lists, any
//! iterable) into columns the core can read with the GIL released.

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, LargeBinaryArray, LargeStringArray, StringArray};

use arrow_schema::DataType;
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyFloat, PyList, PyString, PyTuple};
use pyo3_arrow::input::AnyArray;

use crate::core::bulk::{Item, Packed, Values};

/// One contiguous part of a column.
pub enum Part {
    Packed(Packed),
    /// An Arrow array (zero-copy: the buffers stay where the producer put them).
    Arrow(ArrayRef),
    /// The commonest Arrow types (pyarrow's strings, the readers' binary columns), resolved
    /// once so each item is read without a dynamic type check.
    LargeBinary(LargeBinaryArray),
    Utf8(StringArray),
    LargeUtf8(LargeStringArray),
    /// numpy `U<w>`: UCS-4 code points, `w` per item, NUL-padded, read in place.
    Ucs4 {
        data: NumpyBuffer,
        width: usize,
    },
    /// numpy `S<w>`: bytes, `w` per item, NUL-padded, read in place.
    Fixed {
        data: NumpyBuffer,
        width: usize,
    },
}

/// A C-contiguous numpy buffer borrowed without copying; the array is kept alive by `_owner`.
pub struct NumpyBuffer {
    ptr: *const u8,
    len: usize,
    _owner: Py<PyAny>,
}

// SAFETY: the buffer is only read, and `_owner` keeps the array (and so the memory) alive for
// as long as this value lives. As with any buffer read with the GIL released (blake3-py does
// the same), another Python thread writing into the array at the same time would see its
// writes race with our reads; pi_match never writes to it, and the docs ask callers not to.
unsafe impl Send for NumpyBuffer {}
// SAFETY: as above; shared access is read-only.
unsafe impl Sync for NumpyBuffer {}

impl NumpyBuffer {
    fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: ptr addresses `len` initialised bytes of a live, C-contiguous array (checked
        // when the buffer was made), and the owner reference keeps it alive.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

pub struct Column {
    pub parts: Vec<Part>,
}

impl Column {
    pub fn len(&self) -> usize {
        self.parts.iter().map(Values::len).sum()
    }
}

fn strip_nul_u8(s: &[u8]) -> &[u8] {
    let end = s.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
    &s[..end]
}

impl Values for Part {
    fn len(&self) -> usize {
        match self {
            Part::Packed(p) => p.len(),
            Part::Arrow(a) => a.len(),
            Part::LargeBinary(a) => a.len(),
            Part::Utf8(a) => a.len(),
            Part::LargeUtf8(a) => a.len(),
            Part::Ucs4 { data, width } => data.len.checked_div(4 * *width).unwrap_or(0),
            Part::Fixed { data, width } => data.len.checked_div(*width).unwrap_or(0),
        }
    }

    fn with_item<R>(&self, i: usize, scratch: &mut String, f: impl FnOnce(Item<'_>) -> R) -> R {
        match self {
            Part::Packed(p) => p.with_item(i, scratch, f),
            Part::Ucs4 { data, width } => {
                scratch.clear();
                let raw = &data.bytes()[4 * i * width..4 * (i + 1) * width];
                let units = raw
                    .chunks_exact(4)
                    .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
                let mut pending_nuls = 0usize;
                for c in units {
                    // Trailing NULs are numpy's padding; inner ones are part of the value.
                    if c == 0 {
                        pending_nuls += 1;
                        continue;
                    }
                    scratch.extend(std::iter::repeat_n('\0', pending_nuls));
                    pending_nuls = 0;
                    match char::from_u32(c) {
                        Some(ch) => scratch.push(ch),
                        None => return f(Item::NotText),
                    }
                }
                f(Item::Str(scratch))
            }
            Part::Fixed { data, width } => f(Item::Bytes(strip_nul_u8(
                &data.bytes()[i * width..(i + 1) * width],
            ))),
            Part::LargeBinary(a) if a.is_null(i) => f(Item::Null),
            Part::LargeBinary(a) => f(Item::Bytes(a.value(i))),
            Part::Utf8(a) if a.is_null(i) => f(Item::Null),
            Part::Utf8(a) => f(Item::Str(a.value(i))),
            Part::LargeUtf8(a) if a.is_null(i) => f(Item::Null),
            Part::LargeUtf8(a) => f(Item::Str(a.value(i))),
            Part::Arrow(a) => {
                if a.is_null(i) {
                    return f(Item::Null);
                }
                // `arrow_part` makes the typed parts for Utf8, LargeUtf8 and LargeBinary, and
                // this one only for the types below or Null (every slot null).
                match a.data_type() {
                    DataType::Utf8View => f(Item::Str(a.as_string_view().value(i))),
                    DataType::Binary => f(Item::Bytes(a.as_binary::<i32>().value(i))),
                    DataType::BinaryView => f(Item::Bytes(a.as_binary_view().value(i))),
                    _ => f(Item::Null),
                }
            }
        }
    }
}

fn arrow_part(a: ArrayRef) -> PyResult<Part> {
    match a.data_type() {
        DataType::LargeBinary => Ok(Part::LargeBinary(a.as_binary::<i64>().clone())),
        DataType::Utf8 => Ok(Part::Utf8(a.as_string::<i32>().clone())),
        DataType::LargeUtf8 => Ok(Part::LargeUtf8(a.as_string::<i64>().clone())),
        DataType::Utf8View | DataType::Binary | DataType::BinaryView | DataType::Null => {
            Ok(Part::Arrow(a))
        }
        DataType::Dictionary(_, _) => dictionary_part(&a),
        other => Err(PyTypeError::new_err(format!(
            "an Arrow column of type {other} cannot hold identifiers: pass strings \
             (cast numbers to text first, and beware that numbers lose leading zeros and the X \
             check character)"
        ))),
    }
}

/// Expand a dictionary-encoded string column (what Parquet readers often return) into a
/// packed copy: one pass, and the dictionary's own values are read in place.
fn dictionary_part(a: &ArrayRef) -> PyResult<Part> {
    let dict = a.as_any_dictionary();
    let keys = dict.normalized_keys();
    let values = arrow_part(dict.values().clone())?;
    let mut out = Packed::with_capacity(keys.len(), 0);
    let mut scratch = String::new();
    for (i, &k) in keys.iter().enumerate() {
        if a.is_null(i) || k >= values.len() {
            out.push_null();
            continue;
        }
        values.with_item(k, &mut scratch, |item| match item {
            Item::Str(s) => out.push_str(s),
            Item::Bytes(x) => out.push_bytes(x),
            Item::Null => out.push_null(),
            Item::NotText => out.push_not_text(),
        });
    }
    Ok(Part::Packed(out))
}

fn native_order(descr: &Bound<'_, numpy::PyArrayDescr>) -> PyResult<bool> {
    let bo: String = descr.getattr("byteorder")?.extract()?;
    Ok(bo == "=" || bo == "|" || (bo == "<" && cfg!(target_endian = "little")))
}

fn numpy_part(arr: &Bound<'_, PyUntypedArray>) -> PyResult<Option<Part>> {
    let descr = arr.dtype();
    let kind = descr.kind();
    if arr.ndim() != 1 {
        return Err(PyValueError::new_err(format!(
            "values must be one-dimensional, got a numpy array of shape {:?}",
            arr.shape()
        )));
    }
    match kind {
        b'U' | b'S' => {}
        b'O' => return Ok(None),
        _ => {
            return Err(PyTypeError::new_err(format!(
                "a numpy array of dtype {} cannot hold identifiers: pass strings (numbers lose \
                 leading zeros and the X check character)",
                descr.str()?
            )))
        }
    }
    let n = arr.len();
    let item = descr.itemsize();
    // Non-contiguous, foreign-endian and zero-width (`U0`) arrays take the generic path.
    if !arr.is_c_contiguous() || !native_order(&descr)? || item == 0 {
        return Ok(None);
    }
    let data = NumpyBuffer {
        // SAFETY: reading the data pointer of a live array object.
        ptr: unsafe { (*arr.as_array_ptr()).fields.data.cast::<u8>().cast_const() },
        len: n * item,
        _owner: arr.clone().into_any().unbind(),
    };
    Ok(Some(if kind == b'U' {
        Part::Ucs4 {
            data,
            width: (item / 4).max(1),
        }
    } else {
        Part::Fixed {
            data,
            width: item.max(1),
        }
    }))
}

#[inline]
fn push_item(p: &mut Packed, item: &Bound<'_, PyAny>) {
    if let Ok(s) = item.cast::<PyString>() {
        match s.to_str() {
            Ok(s) => p.push_str(s),
            // Lone surrogates cannot be UTF-8.
            Err(_) => p.push_not_text(),
        }
    } else if let Ok(b) = item.cast::<PyBytes>() {
        p.push_bytes(b.as_bytes());
    } else if item.is_none() {
        p.push_null();
    } else if item.cast::<PyFloat>().is_ok_and(|f| f.value().is_nan()) {
        // pandas and numpy write NaN for a missing cell.
        p.push_null();
    } else {
        p.push_not_text();
    }
}

fn pack_iterable(obj: &Bound<'_, PyAny>) -> PyResult<Packed> {
    let hint = obj.len().unwrap_or(0);
    let mut p = Packed::with_capacity(hint, hint * 20);
    // Lists and tuples are walked by index, which is much cheaper than the iterator protocol.
    if let Ok(list) = obj.cast::<PyList>() {
        for item in list.iter() {
            push_item(&mut p, &item);
        }
    } else if let Ok(tuple) = obj.cast::<PyTuple>() {
        for item in tuple.iter() {
            push_item(&mut p, &item);
        }
    } else {
        for item in obj.try_iter()? {
            push_item(&mut p, &item?);
        }
    }
    Ok(p)
}

/// Accepts: an object with `__arrow_c_array__` / `__arrow_c_stream__` (pyarrow, polars,
/// duckdb...), a numpy array of str / bytes / object, or any iterable of str / bytes / None.
pub fn extract_column(obj: &Bound<'_, PyAny>) -> PyResult<Column> {
    let py = obj.py();
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(
            "values must be a collection of values, not one string: wrap it in a list, or use \
             `value in index` for a single value",
        ));
    }
    if obj.hasattr(pyo3::intern!(py, "__arrow_c_array__"))?
        || obj.hasattr(pyo3::intern!(py, "__arrow_c_stream__"))?
    {
        let any: AnyArray = obj.extract()?;
        let reader = any.into_reader()?;
        let mut parts = Vec::new();
        for chunk in reader {
            let chunk =
                chunk.map_err(|e| PyValueError::new_err(format!("reading Arrow data: {e}")))?;
            parts.push(arrow_part(chunk)?);
        }
        return Ok(Column { parts });
    }
    if let Ok(arr) = obj.cast::<PyUntypedArray>() {
        if let Some(p) = numpy_part(arr)? {
            return Ok(Column { parts: vec![p] });
        }
    }
    Ok(Column {
        parts: vec![Part::Packed(pack_iterable(obj)?)],
    })
}
