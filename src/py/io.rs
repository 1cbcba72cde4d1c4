//! Helpers for the Python readers: splitting decoded text into columns and checking UTF-8, on
//! bytes the reader hands over (Rust never opens the user's file).

use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::core::bulk::{Item, Values};
use crate::core::split::{split_parallel, SplitOptions};

/// What `split_delimited` found in a chunk of text.
#[pyclass(name = "Split", module = "pi_match._core", frozen, get_all)]
pub struct PySplit {
    /// Fields per row.
    ncols: usize,
    /// Per column `(offsets: int64 array, data: uint8 array)`, Arrow large-binary layout.
    columns: Py<PyList>,
    /// The 1-based line number of each row.
    lines: Py<PyArray1<u64>>,
    /// `(line, reason, detail, raw_bytes)` of each line that could not be split.
    rejects: Py<PyList>,
    blank_lines: u64,
    /// Lines seen, blank and rejected ones included (not those of `open_tail`).
    lines_seen: u64,
    /// With `more`: where a record begins that is still open at the end of the text (a quoted
    /// field with line breaks); `data[open_tail:end]` goes in front of the next chunk.
    open_tail: Option<usize>,
    /// Whether the whole chunk is valid UTF-8 and cut only where characters begin (a UTF-8
    /// separator, an ASCII quote), so that every field is valid UTF-8: the reader may hand
    /// them on as text, sparing a check per value.
    utf8: bool,
}

/// Split whole lines of UTF-8 text into columns: a `Split` (columns, line numbers, rejects,
/// blank and seen line counts). With `expected`, a large chunk is split on every thread (on
/// `threads` stretches; 1: on the calling thread alone, for a reader reading ahead of work
/// that has the cores); with `end`, only `data[:end]`; with `more`, more text follows (see
/// `Split.open_tail`).
#[pyfunction]
#[pyo3(signature = (data, first_line, sep, quote = None, expected = None, end = None, more = false, threads = None))]
#[allow(clippy::too_many_arguments)] // a Python signature of keyword arguments
pub fn split_delimited<'py>(
    py: Python<'py>,
    data: &[u8],
    first_line: u64,
    sep: &[u8],
    quote: Option<&[u8]>,
    expected: Option<usize>,
    end: Option<usize>,
    more: bool,
    threads: Option<usize>,
) -> PyResult<PySplit> {
    // `end`: split only `data[:end]` (the reader's whole lines), sparing it a copy of them.
    let data = prefix(data, end)?;
    let quote = match quote {
        None | Some(b"") => None,
        Some([q]) => Some(*q),
        Some(_) => {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "the quote character must be one byte",
            ))
        }
    };
    let opts = SplitOptions {
        sep: sep.to_vec(),
        quote,
        expected,
        more_follows: more,
    };
    // Stretches of a large chunk split on every thread (the same result as one pass).
    let (s, utf8) = py.detach(|| {
        // Cuts at a separator that is itself UTF-8 (or at an ASCII quote) fall on character
        // boundaries of valid text, so every field is valid too. (Checked here, on this thread,
        // before the split: the split's columns are then allocated where they always were.)
        let utf8 = quote.is_none_or(|q| q.is_ascii())
            && simdutf8::basic::from_utf8(&opts.sep).is_ok()
            && simdutf8::basic::from_utf8(data).is_ok();
        let s = split_parallel(
            data,
            first_line,
            &opts,
            threads.unwrap_or_else(rayon::current_num_threads),
        );
        (s, utf8)
    });
    let cols = PyList::empty(py);
    for (offsets, bytes) in s.offsets.into_iter().zip(s.data) {
        cols.append((
            PyArray1::from_vec(py, offsets),
            PyArray1::from_vec(py, bytes),
        ))?;
    }
    let rejects = PyList::empty(py);
    for r in s.rejects {
        rejects.append((
            r.line,
            r.reason,
            r.detail,
            PyBytes::new(py, &data[r.start..r.end]),
        ))?;
    }
    Ok(PySplit {
        ncols: s.ncols,
        columns: cols.unbind(),
        lines: PyArray1::from_vec(py, s.lines).unbind(),
        rejects: rejects.unbind(),
        blank_lines: s.blank_lines,
        lines_seen: s.lines_seen,
        open_tail: s.open_tail,
        utf8,
    })
}

/// `data[:end]` (all of it without `end`); an `end` past the data is an error, not a panic.
fn prefix(data: &[u8], end: Option<usize>) -> PyResult<&[u8]> {
    match end {
        None => Ok(data),
        Some(e) => data.get(..e).ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err(format!(
                "end {e} is past the data's {} bytes",
                data.len()
            ))
        }),
    }
}

/// `None` if `data` is valid UTF-8 (an incomplete sequence cut off at the very end counts as
/// valid, for chunked reading); else the offset of the first invalid byte.
#[pyfunction]
pub fn utf8_error_offset(py: Python<'_>, data: &[u8]) -> Option<usize> {
    // SIMD validation (several times std's speed on text with CJK characters), the same answer.
    py.detach(|| match simdutf8::compat::from_utf8(data) {
        Ok(_) => None,
        Err(e) if e.error_len().is_none() => None,
        Err(e) => Some(e.valid_up_to()),
    })
}

/// `(bytes, newlines, x80, utf8_bad_at, tally)`: see [`scan_text_file`].
type ScanFacts = (u64, u64, bool, Option<u64>, Option<Tally>);

/// A scan's facts of the open regular file `fd` in one Rust pass, the GIL released (see
/// `core::text::scan_file`): `(bytes, newlines, x80, utf8_bad_at, tally)`, the tally (as
/// `encoding_mix` returns it) None unless asked for and the first block is not UTF-8.
/// Positioned reads from offset 0; the descriptor's own offset is left as it is. The caller
/// keeps `fd` open for the call.
#[pyfunction]
#[pyo3(signature = (fd, chunk, *, check_utf8, mixed_if_not_utf8))]
pub fn scan_text_file(
    py: Python<'_>,
    fd: i32,
    chunk: usize,
    check_utf8: bool,
    mixed_if_not_utf8: bool,
) -> PyResult<ScanFacts> {
    #[cfg(unix)]
    {
        use std::os::fd::FromRawFd;
        use std::os::unix::fs::FileExt;
        if fd < 0 {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "not a file descriptor: {fd}"
            )));
        }
        // SAFETY: the caller's descriptor, open for the call (its text); ManuallyDrop never
        // closes it.
        let file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
        let s = py.detach(|| {
            crate::core::text::scan_file(
                |at, buf| file.read_at(buf, at),
                chunk,
                check_utf8,
                mixed_if_not_utf8,
            )
        })?;
        let tally = s.mix.map(|m| {
            (
                m.utf8_lines,
                m.other_lines,
                m.first_utf8,
                m.first_other,
                m.lines,
            )
        });
        Ok((s.bytes, s.newlines, s.x80, s.utf8_bad_at, tally))
    }
    #[cfg(not(unix))]
    {
        let _ = (py, fd, chunk, check_utf8, mixed_if_not_utf8);
        Err(pyo3::exceptions::PyNotImplementedError::new_err(
            "scan_text_file needs positioned reads (Unix)",
        ))
    }
}

/// Tune glibc's malloc for a process that streams large buffers (the CLI; a library caller's
/// process is left as it is): blocks of up to 32 MiB come from the heap and freed ones are kept
/// for the next batch, instead of each being a fresh `mmap` the kernel faults in and zeroes
/// page by page (a tenth of a 5-million-row build's time). Peak memory does not grow: the same
/// sizes are reused — in one arena: a batch read on the reader thread and freed on the main
/// one would otherwise go back to that thread's own arena, whose fragments grew the peak with
/// the file (768 → 794 MiB from 5 to 40 million rows into the same indices; 736 → 743 in one
/// arena, at the same speed). True where it took effect (glibc on Linux), False elsewhere.
#[pyfunction]
pub fn _tune_malloc_for_streaming() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters; any value is valid to pass.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1
                && libc::mallopt(libc::M_TOP_PAD, 256 << 20) == 1
                && libc::mallopt(libc::M_ARENA_MAX, 1) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// `(count, ends_with_cr)`: line breaks in `data` (`\n`, `\r\n` or a lone `\r`), where
/// `after_cr` says the previous chunk ended with `\r`.
#[pyfunction]
#[pyo3(signature = (data, after_cr = false))]
pub fn line_breaks(py: Python<'_>, data: &[u8], after_cr: bool) -> (u64, bool) {
    py.detach(|| crate::core::text::line_breaks(data, after_cr))
}

/// An encoding tally as Python holds it: `(utf8_lines, other_lines, first_utf8, first_other,
/// lines)`.
type Tally = (u64, u64, Vec<u64>, Vec<u64>, u64);

/// Add the lines of `data[start:end]` (whole lines from `first_line`) to an encoding tally
/// `(utf8_lines, other_lines, first_utf8, first_other, lines)`, returned updated.
#[pyfunction]
#[pyo3(signature = (data, first_line, tally, start = 0, end = None))]
pub fn encoding_mix(
    py: Python<'_>,
    data: &[u8],
    first_line: u64,
    tally: Tally,
    start: usize,
    end: Option<usize>,
) -> PyResult<Tally> {
    let end = end.unwrap_or(data.len());
    if start > end || end > data.len() {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "start {start} and end {end} do not lie within the data's {} bytes",
            data.len()
        )));
    }
    let data = &data[start..end];
    let (utf8_lines, other_lines, first_utf8, first_other, lines) = tally;
    let mut m = crate::core::text::EncodingMix {
        utf8_lines,
        other_lines,
        first_utf8,
        first_other,
        lines,
    };
    py.detach(|| crate::core::text::encoding_mix(data, first_line, &mut m));
    Ok((
        m.utf8_lines,
        m.other_lines,
        m.first_utf8,
        m.first_other,
        m.lines,
    ))
}

/// Strict incremental GB18030 → UTF-8 in Rust (the GIL released): `decode(block, final)`
/// returns the UTF-8 bytes; a malformed sequence raises UnicodeDecodeError whose `start` is
/// its offset in the whole input (every block so far), not in the block.
#[pyclass(name = "Gb18030Decoder", module = "pi_match._core")]
pub struct PyGb18030 {
    /// The decoder: one stream, its state carried from block to block.
    inner: std::sync::Mutex<crate::core::text::Gb18030>,
}

impl PyGb18030 {
    /// The decoder, for this call alone. try_lock, not lock: waiting for the lock with the GIL
    /// held could deadlock with a thread that holds it and waits for the GIL. One decoder is
    /// one stream.
    fn stream(&self) -> PyResult<std::sync::MutexGuard<'_, crate::core::text::Gb18030>> {
        self.inner.try_lock().map_err(|_| {
            pyo3::exceptions::PyRuntimeError::new_err(
                "this Gb18030Decoder is in use by another thread (one decoder is one stream)",
            )
        })
    }

    /// Check `data` (the GIL released), or with `keep` decode it into a `bytes` object: the
    /// UTF-8 is written straight into the object (no buffer of 3 bytes per input byte kept
    /// between blocks, no copy out of one), sized for real text and grown only if a rare
    /// sequence needs more, then cut to the length written.
    fn run<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
        last: bool,
        keep: bool,
    ) -> PyResult<Option<Bound<'py, pyo3::types::PyBytes>>> {
        let mut g = self.stream()?;
        let d = &mut *g;
        if !keep {
            return match py.detach(|| d.check(data, last)) {
                Ok(()) => Ok(None),
                Err(at) => Err(malformed(py, at)),
            };
        }
        let out = BytesOut::new(py, crate::core::text::Gb18030::typical_out(data.len()))?;
        decode_on(py, d, data, last, out, None).map(Some)
    }
}

/// Decode `data` with `d` into `out` — or its rest, when a call already decoded
/// `data[..done.0]` into the first `done.1` bytes and stopped there or at the end: the GIL
/// released while decoding, the object grown (with the GIL) whenever the room runs out.
fn decode_on<'py>(
    py: Python<'py>,
    d: &mut crate::core::text::Gb18030,
    data: &[u8],
    last: bool,
    mut out: BytesOut<'py>,
    done: Option<(usize, usize)>,
) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    let (mut read, mut written) = done.unwrap_or((0, 0));
    // At least one call, even for no data: the last one says whether the input ended inside a
    // sequence.
    let mut called = done.is_some();
    loop {
        if called {
            if read == data.len() {
                return out.finish(written);
            }
            let more = d.max_out(data.len() - read);
            out.grow(written + more)?;
        }
        called = true;
        let room = out.room(written);
        let r = py.detach(|| {
            // SAFETY: the object is this thread's alone until it is returned (nothing else
            // holds a reference), and `room` lies within its allocation.
            let buf = unsafe { std::slice::from_raw_parts_mut(room.0 as *mut u8, room.1) };
            d.decode_some(&data[read..], last, buf)
        });
        match r {
            Ok((r, w)) => {
                read += r;
                written += w;
            }
            Err(at) => return Err(malformed(py, at)),
        }
    }
}

/// Where `decode_halves` cuts `data`: after the first line feed from its middle on, when
/// `data` is at least `min_len` bytes and such a line feed leaves something after it.
fn half_cut(data: &[u8], min_len: usize) -> Option<usize> {
    if data.len() < min_len.max(2) {
        return None;
    }
    let mid = data.len() / 2;
    memchr::memchr(b'\n', &data[mid..])
        .map(|k| mid + k + 1)
        .filter(|&cut| cut < data.len())
}

/// A `bytes` object being written in place (CPython's PyBytesWriter, or pyo3's backport of
/// it): created with room for `size` bytes, grown, and cut to its written length at the end.
struct BytesOut<'py> {
    py: Python<'py>,
    w: std::ptr::NonNull<pyo3::ffi::compat::PyBytesWriter>,
}

impl<'py> BytesOut<'py> {
    fn new(py: Python<'py>, size: usize) -> PyResult<Self> {
        let size = isize::try_from(size).map_err(|_| memory_error(size))?;
        // SAFETY: called with the GIL held; a null result has set a Python error.
        let w = unsafe { pyo3::ffi::compat::PyBytesWriter_Create(size) };
        std::ptr::NonNull::new(w)
            .map(|w| BytesOut { py, w })
            .ok_or_else(|| PyErr::fetch(py))
    }

    /// The writable bytes after the first `from` (as an address and a length, to be sent to
    /// a thread without the GIL).
    fn room(&mut self, from: usize) -> (usize, usize) {
        // SAFETY: the writer is live; its data holds GetSize bytes.
        unsafe {
            let size = pyo3::ffi::compat::PyBytesWriter_GetSize(self.w.as_ptr()) as usize;
            let data = pyo3::ffi::compat::PyBytesWriter_GetData(self.w.as_ptr()) as usize;
            (data + from, size - from)
        }
    }

    /// At least `size` bytes of room, the bytes written kept.
    fn grow(&mut self, size: usize) -> PyResult<()> {
        let n = isize::try_from(size).map_err(|_| memory_error(size))?;
        // SAFETY: the writer is live and the GIL held.
        if unsafe { pyo3::ffi::compat::PyBytesWriter_Resize(self.w.as_ptr(), n) } < 0 {
            return Err(PyErr::fetch(self.py));
        }
        Ok(())
    }

    /// The object, cut to its first `len` bytes.
    fn finish(self, len: usize) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        let me = std::mem::ManuallyDrop::new(self);
        // SAFETY: the writer is live and consumed here (not discarded again on drop); `len`
        // is at most its size.
        unsafe {
            let obj = pyo3::ffi::compat::PyBytesWriter_FinishWithSize(me.w.as_ptr(), len as isize);
            Ok(Bound::from_owned_ptr_or_err(me.py, obj)?.cast_into_unchecked())
        }
    }
}

impl Drop for BytesOut<'_> {
    fn drop(&mut self) {
        // SAFETY: a writer not finished is discarded once, with the GIL held (a BytesOut
        // lives only under it).
        unsafe { pyo3::ffi::compat::PyBytesWriter_Discard(self.w.as_ptr()) }
    }
}

fn memory_error(size: usize) -> PyErr {
    pyo3::exceptions::PyMemoryError::new_err(format!("{size} bytes of output"))
}

/// The UnicodeDecodeError of a malformed sequence; `start` is its offset in the whole input,
/// not in this block.
fn malformed(py: Python<'_>, at: u64) -> PyErr {
    pyo3::exceptions::PyUnicodeDecodeError::new_err((
        "gb18030".to_string(),
        pyo3::types::PyBytes::new(py, b"").unbind(),
        at,
        at + 1,
        format!("malformed GB18030 sequence at byte {at} of the input"),
    ))
}

#[pymethods]
impl PyGb18030 {
    #[new]
    fn new() -> Self {
        PyGb18030 {
            inner: std::sync::Mutex::new(Default::default()),
        }
    }

    /// The UTF-8 of `data` (`final`: nothing follows it); with `end`, of `data[:end]` only
    /// (the reader's whole lines, sparing it a copy of them).
    #[pyo3(signature = (data, r#final = false, end = None))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
        r#final: bool,
        end: Option<usize>,
    ) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        let data = prefix(data, end)?;
        Ok(self
            .run(py, data, r#final, true)?
            .unwrap_or_else(|| pyo3::types::PyBytes::new(py, b"")))
    }

    /// `decode`, as two `bytes`: `data` (or `data[:end]`) cut after the first line feed from
    /// its middle on, and the two parts decoded on two threads at once (a line feed is never
    /// part of a GB18030 sequence, so the second part decodes on its own). The same UTF-8 as
    /// `decode`, split in two (the second empty when `data` is under `min_len` bytes or has no
    /// such line feed), and the same error: a malformed sequence in the first part is the one
    /// raised, whatever the second holds. `parallel=False` decodes the parts one after the
    /// other on the calling thread (a reader reading ahead of work that has the cores): the
    /// same two parts, never one large object.
    #[pyo3(signature = (data, r#final = false, end = None, min_len = 1 << 21, parallel = true))]
    fn decode_halves<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
        r#final: bool,
        end: Option<usize>,
        min_len: usize,
        parallel: bool,
    ) -> PyResult<(
        Bound<'py, pyo3::types::PyBytes>,
        Bound<'py, pyo3::types::PyBytes>,
    )> {
        let data = prefix(data, end)?;
        let empty = || pyo3::types::PyBytes::new(py, b"");
        let Some(cut) = half_cut(data, min_len) else {
            let text = self.run(py, data, r#final, true)?.unwrap_or_else(empty);
            return Ok((text, empty()));
        };
        let mut g = self.stream()?;
        let d = &mut *g;
        let (head, tail) = data.split_at(cut);
        let mut second = crate::core::text::Gb18030::after_line_feed(d.done() + cut as u64);
        let typical = crate::core::text::Gb18030::typical_out;
        let (mut out1, mut out2) = (
            BytesOut::new(py, typical(cut))?,
            BytesOut::new(py, typical(tail.len()))?,
        );
        let (room1, room2) = (out1.room(0), out2.room(0));
        let (r1, r2) = py.detach(|| {
            // SAFETY: each object is this thread's alone until it is returned (nothing else
            // holds a reference), each `room` lies within its own allocation, and the two
            // allocations are distinct, so the two slices do not overlap.
            let (buf1, buf2) = unsafe {
                (
                    std::slice::from_raw_parts_mut(room1.0 as *mut u8, room1.1),
                    std::slice::from_raw_parts_mut(room2.0 as *mut u8, room2.1),
                )
            };
            let mut first = || d.decode_some(head, false, buf1);
            let mut rest = || second.decode_some(tail, r#final, buf2);
            if parallel {
                rayon::join(first, rest)
            } else {
                (first(), rest())
            }
        });
        // The first part first: its error is the one a single decode would meet first.
        let (read1, written1) = r1.map_err(|at| malformed(py, at))?;
        let first = decode_on(py, d, head, false, out1, Some((read1, written1)))?;
        let (read2, written2) = r2.map_err(|at| malformed(py, at))?;
        let rest = decode_on(
            py,
            &mut second,
            tail,
            r#final,
            out2,
            Some((read2, written2)),
        )?;
        // The stream goes on from the end of the second part (its state, its offset).
        *d = second;
        Ok((first, rest))
    }

    /// Check that `data` decodes, keeping nothing (the encoding check of a whole file).
    #[pyo3(signature = (data, r#final = false))]
    fn check(&self, py: Python<'_>, data: &[u8], r#final: bool) -> PyResult<()> {
        self.run(py, data, r#final, false).map(|_| ())
    }
}

/// The rows of a hits file, formatted as Python's `csv.writer` formats them (see
/// `core::csvout`): row `i` is `lines[i]`, `labels[label_at[i]]`, then each column's `i`-th
/// value (str, bytes read with `backslashreplace`, or missing: an empty field), each row ended
/// by `\r\n`; the fields `before` come first in every row, and those `between` after the line
/// number. One call a batch instead of a Python `writerow` a row. A column holding values that
/// are not text is refused (ValueError); the caller formats such columns itself.
#[pyfunction]
#[pyo3(signature = (lines, label_at, labels, columns, *, before = Vec::new(), between = Vec::new()))]
pub fn csv_rows(
    py: Python<'_>,
    lines: numpy::PyReadonlyArray1<'_, u64>,
    label_at: numpy::PyReadonlyArray1<'_, u32>,
    labels: Vec<String>,
    columns: Vec<Bound<'_, PyAny>>,
    before: Vec<String>,
    between: Vec<String>,
) -> PyResult<String> {
    use pyo3::exceptions::PyValueError;
    let (lines, label_at) = (lines.as_slice()?, label_at.as_slice()?);
    if label_at.len() != lines.len() {
        return Err(PyValueError::new_err(format!(
            "{} line numbers but {} labels",
            lines.len(),
            label_at.len()
        )));
    }
    if let Some(&bad) = label_at.iter().find(|&&l| l as usize >= labels.len()) {
        return Err(PyValueError::new_err(format!(
            "label {bad} of {} labels",
            labels.len()
        )));
    }
    let mut cols = Vec::with_capacity(columns.len());
    for (k, c) in columns.iter().enumerate() {
        let col = Joined::new(crate::py::values::extract_column(c)?.parts);
        if col.len() != lines.len() {
            return Err(PyValueError::new_err(format!(
                "column {k} has {} values for {} rows",
                col.len(),
                lines.len()
            )));
        }
        cols.push(col);
    }
    let out = py
        .detach(|| {
            let fixed = crate::core::csvout::Fixed {
                before: &before,
                between: &between,
            };
            crate::core::csvout::rows(lines, label_at, &labels, &cols, &fixed)
        })
        .map_err(|e| {
            PyValueError::new_err(format!(
                "column {} holds a value that is not text (row {})",
                e.column, e.row
            ))
        })?;
    Ok(out)
}

/// A column's parts read as one run of values.
struct Joined {
    parts: Vec<crate::py::values::Part>,
    /// `starts[k]`: the index of part `k`'s first value; one more entry, the total.
    starts: Vec<usize>,
}

impl Joined {
    fn new(parts: Vec<crate::py::values::Part>) -> Joined {
        let mut starts = vec![0];
        for p in &parts {
            starts.push(starts[starts.len() - 1] + p.len());
        }
        Joined { parts, starts }
    }
}

impl Values for Joined {
    fn len(&self) -> usize {
        self.starts[self.starts.len() - 1]
    }

    fn with_item<R>(&self, i: usize, scratch: &mut String, f: impl FnOnce(Item<'_>) -> R) -> R {
        let k = self.starts.partition_point(|&s| s <= i) - 1;
        self.parts[k].with_item(i - self.starts[k], scratch, f)
    }
}

/// JSON lines read in Rust where nothing about them is unusual (`core::jsonl`): `(status,
/// columns)` — a status a line (0 a row, 1 blank, 2 left to Python) and, for each of `keys`,
/// `(offsets, data, valid)` over every line (values only on rows), as
/// `jsonl.to_text(json.loads(line).get(key))` gives them.
#[pyfunction]
#[allow(clippy::type_complexity)]
pub fn jsonl_read<'py>(
    py: Python<'py>,
    lines: &Bound<'py, PyAny>,
    keys: Vec<String>,
) -> PyResult<(
    Bound<'py, PyArray1<u8>>,
    Vec<(
        Bound<'py, PyArray1<i64>>,
        Bound<'py, PyArray1<u8>>,
        Bound<'py, PyArray1<bool>>,
    )>,
)> {
    use crate::py::values::Part;
    use arrow_array::Array;
    use std::borrow::Cow;
    let parts = crate::py::values::extract_column(lines)?.parts;
    let (status, cols) = py.detach(|| {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        // A line that is not text is Python's to judge: given as a line no object starts.
        fn text(b: &[u8]) -> &str {
            std::str::from_utf8(b).unwrap_or("\0")
        }
        let mut texts: Vec<Cow<'_, str>> = Vec::new();
        let mut scratch = String::new();
        for part in &parts {
            match part {
                // The lines reader's column: each line read where it lies, not copied.
                Part::LargeBinary(a) if a.null_count() == 0 => {
                    texts.extend((0..a.len()).map(|i| Cow::Borrowed(text(a.value(i)))));
                }
                _ => texts.extend((0..part.len()).map(|i| {
                    part.with_item(i, &mut scratch, |item| match item {
                        Item::Str(s) => Cow::Owned(s.to_owned()),
                        Item::Bytes(b) => Cow::Owned(text(b).to_owned()),
                        Item::Null | Item::NotText => Cow::Borrowed("\0"),
                    })
                })),
            }
        }
        let texts: Vec<&str> = texts.iter().map(|t| &**t).collect();
        crate::core::jsonl::read(&texts, &keys)
    });
    let cols = cols
        .into_iter()
        .map(|c| {
            (
                PyArray1::from_vec(py, c.offsets),
                PyArray1::from_vec(py, c.data),
                PyArray1::from_vec(py, c.valid),
            )
        })
        .collect();
    Ok((PyArray1::from_vec(py, status), cols))
}
