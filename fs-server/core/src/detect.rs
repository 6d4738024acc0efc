//! Which file system is on a volume, by its superblock.

/// A file system this server can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsType {
    /// ext2, ext3 or ext4.
    Ext,
    /// FAT12, FAT16 or FAT32.
    Fat,
}

/// Looks at the first 2 KiB of a volume.
pub fn detect(head: &[u8]) -> Option<FsType> {
    // ext: magic 0xEF53 at byte 56 of the superblock, which starts at 1024.
    if head.len() >= 1082 && head[1080..1082] == [0x53, 0xef] {
        return Some(FsType::Ext);
    }
    // FAT: boot signature, a sane sector size and cluster size, and a
    // FAT signature string where FAT12/16 or FAT32 keep it.
    if head.len() >= 512 && head[510..512] == [0x55, 0xaa] {
        let bytes_per_sector = u16::from_le_bytes([head[11], head[12]]);
        let per_cluster = head[13];
        let sig = &head[54..59] == b"FAT12" || &head[54..59] == b"FAT16" || &head[82..87] == b"FAT32";
        if matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096) && per_cluster.is_power_of_two() && sig {
            return Some(FsType::Fat);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_superblock() {
        let mut ext = vec![0u8; 2048];
        ext[1080] = 0x53;
        ext[1081] = 0xef;
        assert_eq!(detect(&ext), Some(FsType::Ext));
        let mut fat = vec![0u8; 2048];
        fat[11..13].copy_from_slice(&512u16.to_le_bytes());
        fat[13] = 4;
        fat[82..87].copy_from_slice(b"FAT32");
        fat[510] = 0x55;
        fat[511] = 0xaa;
        assert_eq!(detect(&fat), Some(FsType::Fat));
        fat[13] = 3;
        assert_eq!(detect(&fat), None, "cluster size not a power of two");
        assert_eq!(detect(&[0u8; 2048]), None);
        assert_eq!(detect(&[]), None);
    }
}
