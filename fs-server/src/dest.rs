//! The destination of an extraction, written relative to directory
//! handles: a tree deeper than the host's `PATH_MAX` (4096 bytes) is
//! written whole, and nothing is ever opened through a symlink.
//!
//! Every file and directory is created in its parent directory, reached
//! from the destination one component at a time with `O_NOFOLLOW`: a
//! path never has to fit in one system call. The parent reached last is
//! kept open, so extracting a directory's files, or going one level
//! deeper, costs one call per entry.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{mkdirat, openat, unlinkat, AtFlags, Mode, OFlags, CWD};
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};

/// The destination directory, and the directory used last in it.
pub struct Dest {
    root: PathBuf,
    root_fd: OwnedFd,
    /// The directory used last (relative to the root) and its handle.
    last: Option<(PathBuf, OwnedFd)>,
}

/// Flags that open a directory to work in, never through a symlink.
fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

impl Dest {
    /// The destination `root`, which must be a directory (not a symlink).
    pub fn open(root: &Path) -> io::Result<Dest> {
        let root_fd = openat(CWD, root, dir_flags(), Mode::empty())?;
        Ok(Dest { root: root.to_path_buf(), root_fd, last: None })
    }

    /// Where `rel` is, for messages.
    pub fn display(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    /// The directory holding `rel`, and `rel`'s last name.
    fn parent<'r>(&mut self, rel: &'r Path) -> io::Result<(BorrowedFd<'_>, &'r OsStr)> {
        let name = rel.file_name().ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let dir = rel.parent().unwrap_or(Path::new(""));
        let reuse = matches!(&self.last, Some((p, _)) if p == dir);
        if !reuse {
            // From the directory used last if `dir` lies under it (going
            // deeper), else from the root.
            let (mut fd, rest) = match &self.last {
                Some((p, fd)) if dir.starts_with(p) => (fd.as_fd().try_clone_to_owned()?, dir.strip_prefix(p).unwrap()),
                _ => (self.root_fd.as_fd().try_clone_to_owned()?, dir),
            };
            for c in rest.components() {
                let Component::Normal(c) = c else {
                    return Err(io::Error::from(io::ErrorKind::InvalidInput));
                };
                fd = openat(&fd, c, dir_flags(), Mode::empty())?;
            }
            self.last = Some((dir.to_path_buf(), fd));
        }
        let fd = self.last.as_ref().expect("just set").1.as_fd();
        Ok((fd, name))
    }

    /// Creates the new file `rel` for writing: never one that exists,
    /// never through a symlink.
    pub fn create_file(&mut self, rel: &Path) -> io::Result<File> {
        let (dir, name) = self.parent(rel)?;
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        Ok(File::from(openat(dir, name, flags, Mode::from_raw_mode(0o644))?))
    }

    /// Creates the directory `rel` (failing on anything already there).
    pub fn create_dir(&mut self, rel: &Path) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        Ok(mkdirat(dir, name, Mode::from_raw_mode(0o755))?)
    }

    /// Removes the file `rel` (a partly written one).
    pub fn remove_file(&mut self, rel: &Path) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        Ok(unlinkat(dir, name, AtFlags::empty())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn trees_deeper_than_path_max_are_written_and_links_never_followed() {
        let root = std::env::temp_dir().join(format!("exo-dest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let mut d = Dest::open(&root).unwrap();
        // 1,500 levels of 4-byte names: 7,500 bytes of path.
        let mut rel = PathBuf::new();
        for i in 0..1500 {
            rel.push(format!("d{i:03}"));
            d.create_dir(&rel).unwrap();
        }
        d.create_file(&rel.join("f")).unwrap().write_all(b"deep").unwrap();
        // Back at the top, and down again from the root.
        d.create_file(Path::new("top")).unwrap();
        d.remove_file(&rel.join("f")).unwrap();
        d.create_file(&rel.join("g")).unwrap();
        assert!(d.create_file(&rel.join("g")).is_err(), "an existing file was opened");
        // A symlink in the way is not followed.
        std::os::unix::fs::symlink("/tmp", root.join("link")).unwrap();
        assert!(d.create_file(Path::new("link/x")).is_err());
        assert!(d.create_file(Path::new("link")).is_err());
        // Cleaning up needs the same care: remove_dir_all copes.
        std::fs::remove_dir_all(&root).unwrap();
    }
}
