//! Block devices backed by a host file (a disk image), with positioned
//! reads and writes.

use crate::{BlockDevice, Error, Result};
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;

/// A disk image file as a block device.
pub struct FileDevice {
    file: File,
    size: u64,
    writable: bool,
}

fn io(e: std::io::Error) -> Error {
    Error::Io(crate::errno::from_io(&e))
}

impl FileDevice {
    /// Wraps an open file; `writable` says whether it was opened for
    /// writing. The size is taken once, by seeking (no `fstat`, which the
    /// hosted sandbox does not allow).
    pub fn new(mut file: File, writable: bool) -> Result<FileDevice> {
        let size = file.seek(SeekFrom::End(0)).map_err(io)?;
        Ok(FileDevice { file, size, writable })
    }

    fn check(&self, offset: u64, n: usize) -> Result<()> {
        match offset.checked_add(n as u64) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(Error::OutOfRange),
        }
    }
}

impl BlockDevice for FileDevice {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check(offset, buf.len())?;
        self.file.read_exact_at(buf, offset).map_err(io)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        if !self.writable {
            return Err(Error::ReadOnly);
        }
        self.check(offset, buf.len())?;
        self.file.write_all_at(buf, offset).map_err(io)
    }
    fn writable(&self) -> bool {
        self.writable
    }
    fn flush(&self) -> Result<()> {
        if self.writable {
            self.file.sync_data().map_err(io)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_writes_and_bounds() {
        let path = std::env::temp_dir().join(format!("rumpglue-block-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; 8192]).unwrap();
        let ro = FileDevice::new(File::open(&path).unwrap(), false).unwrap();
        assert_eq!(ro.size(), 8192);
        let mut b = [0u8; 16];
        ro.read_at(8176, &mut b).unwrap();
        assert_eq!(b, [7; 16]);
        assert_eq!(ro.read_at(8177, &mut b), Err(Error::OutOfRange));
        assert_eq!(ro.write_at(0, &[1]), Err(Error::ReadOnly));
        let rw =
            FileDevice::new(std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap(), true).unwrap();
        rw.write_at(100, &[1, 2, 3]).unwrap();
        rw.flush().unwrap();
        let mut c = [0u8; 3];
        ro.read_at(100, &mut c).unwrap();
        assert_eq!(c, [1, 2, 3]);
        assert_eq!(rw.write_at(8190, &[0; 3]), Err(Error::OutOfRange));
        std::fs::remove_file(&path).unwrap();
    }
}
