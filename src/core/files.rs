//! Files that are evidence: read only regular files (a FIFO or a device would hang or never
//! end), and write every output atomically — a temporary file beside the target with a name
//! unique to this process, thread and call, flushed to disk, then renamed over the target.
//! Ctrl-C, a full disk or a crash leaves the old file or none, never a torn one.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::core::{Error, Result};

/// What a non-regular file is, for messages.
fn what_it_is(m: &Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

fn not_regular(path: &Path, m: &Metadata) -> Error {
    Error::Invalid(format!(
        "{}: is {}, not a regular file; pi_match reads and writes regular files only",
        path.display(),
        what_it_is(m)
    ))
}

/// Open `path` for reading only if it is a regular file (after following links) of at most
/// `max_len` bytes. The type is checked before opening, since opening a FIFO blocks, and again
/// on the open file, in case the path was swapped in between.
pub fn open_regular(path: &Path, max_len: Option<u64>, what: &str) -> Result<(File, u64)> {
    let ctx = || format!("reading {what} {}", path.display());
    let m = std::fs::metadata(path).map_err(|e| Error::io(ctx(), e))?;
    if !m.is_file() {
        return Err(not_regular(path, &m));
    }
    let f = File::open(path).map_err(|e| Error::io(ctx(), e))?;
    let m = f.metadata().map_err(|e| Error::io(ctx(), e))?;
    if !m.is_file() {
        return Err(not_regular(path, &m));
    }
    if let Some(max) = max_len {
        if m.len() > max {
            return Err(Error::Invalid(format!(
                "{}: {} bytes is far more than {what} can be ({max} at most); is this the right file?",
                path.display(),
                m.len()
            )));
        }
    }
    Ok((f, m.len()))
}

static SERIAL: AtomicU64 = AtomicU64::new(0);

/// A temporary name beside `path`, unique per process, thread and call.
fn temp_beside(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{} is not a file path", path.display())))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut salt = [0u8; 6];
    getrandom::fill(&mut salt).map_err(|e| Error::Invalid(format!("no randomness: {e}")))?;
    let salt: String = salt.iter().map(|b| format!("{b:02x}")).collect();
    Ok(dir.join(format!(
        ".{}.tmp-{}-{}-{salt}",
        name.to_string_lossy(),
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed)
    )))
}

/// Refuse to replace what is not a regular file: `-o /dev/null` run as root would otherwise
/// turn the device node into a plain file.
pub fn check_output_target(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(not_regular(path, &m)),
        _ => Ok(()),
    }
}

/// Write `path` atomically with permission bits `mode` (applied whatever the umask): `write`
/// fills a buffered temporary file, which is flushed, synced and renamed over `path`. With
/// `replace = false` an existing `path` is left alone and an `AlreadyExists` error returned.
pub fn write_atomic<T>(
    path: &Path,
    mode: u32,
    replace: bool,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<T>,
) -> Result<T> {
    let ctx = || format!("writing {}", path.display());
    check_output_target(path)?;
    let tmp = temp_beside(path)?;
    let result = (|| {
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| Error::io(ctx(), e))?;
        // create_new's mode is filtered by the umask; set the bits we mean.
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(|e| Error::io(ctx(), e))?;
        let mut bw = BufWriter::with_capacity(1 << 20, f);
        let out = write(&mut bw)?;
        bw.flush().map_err(|e| Error::io(ctx(), e))?;
        let f = bw
            .into_inner()
            .map_err(|e| Error::io(ctx(), e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(ctx(), e))?;
        drop(f);
        if replace {
            std::fs::rename(&tmp, path).map_err(|e| Error::io(ctx(), e))?;
        } else {
            // A hard link fails if the target exists: no window in which another writer's
            // file could be replaced.
            std::fs::hard_link(&tmp, path).map_err(|e| Error::io(ctx(), e))?;
            let _ = std::fs::remove_file(&tmp);
        }
        Ok(out)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "pi_match_files_{}_{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn atomic_write_replaces_and_sets_mode() {
        let d = dir();
        let p = d.join("a.bin");
        std::fs::write(&p, b"old").unwrap();
        write_atomic(&p, 0o600, true, |w| {
            w.write_all(b"new").unwrap();
            Ok(())
        })
        .unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // A failing writer leaves the old file and no temporary behind.
        let r: Result<()> = write_atomic(&p, 0o644, true, |_| Err(Error::Invalid("x".into())));
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        // Without replace an existing file is refused and kept.
        let r = write_atomic(&p, 0o600, false, |w| {
            w.write_all(b"x").unwrap();
            Ok(())
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn non_regular_files_are_refused() {
        let d = dir();
        assert!(open_regular(&d, None, "a key").is_err());
        assert!(check_output_target(Path::new("/dev/null")).is_err());
        let e = open_regular(Path::new("/dev/zero"), Some(10), "a key").unwrap_err();
        assert!(e.to_string().contains("a device"), "{e}");
        let p = d.join("k");
        std::fs::write(&p, vec![0u8; 100]).unwrap();
        assert!(open_regular(&p, Some(10), "a key").is_err());
        assert!(open_regular(&p, Some(100), "a key").is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
