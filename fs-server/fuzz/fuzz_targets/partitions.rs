//! Partition tables and superblock detection on arbitrary disks: never
//! panic; every partition found lies inside the disk.
#![no_main]
use fs_server::{detect::detect, part::partitions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|disk: &[u8]| {
    let _ = detect(disk);
    let mut read = |off: u64, buf: &mut [u8]| -> rumpglue::Result<()> {
        let off = usize::try_from(off).map_err(|_| rumpglue::Error::OutOfRange)?;
        let end = off.checked_add(buf.len()).filter(|e| *e <= disk.len()).ok_or(rumpglue::Error::OutOfRange)?;
        buf.copy_from_slice(&disk[off..end]);
        Ok(())
    };
    if let Ok(parts) = partitions(disk.len() as u64, &mut read) {
        for p in parts {
            assert!(p.start + p.len <= disk.len() as u64);
        }
    }
});
