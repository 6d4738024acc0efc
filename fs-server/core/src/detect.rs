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
    // FAT: boot signature, a sane sector size and cluster size, and
    // either a FAT signature string where FAT12/16 or FAT32 keep it, or
    // (the string is informational: Linux does not read it) a boot
    // sector whose other fields all make sense.
    if head.len() >= 512 && head[510..512] == [0x55, 0xaa] {
        let le16 = |at: usize| u16::from_le_bytes([head[at], head[at + 1]]);
        let le32 = |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
        let bytes_per_sector = le16(11);
        let per_cluster = head[13];
        let sig = &head[54..59] == b"FAT12" || &head[54..59] == b"FAT16" || &head[82..87] == b"FAT32";
        let sane = le16(14) >= 1 // reserved sectors
            && (1..=4).contains(&head[16]) // FATs
            && (head[21] == 0xf0 || head[21] >= 0xf8) // media
            && (le16(19) != 0 || le32(32) != 0) // sectors
            && (le16(22) != 0 || le32(36) != 0); // sectors per FAT
        if matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096) && per_cluster.is_power_of_two() && (sig || sane) {
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
        // Without its type string, a boot sector that makes sense.
        fat[13] = 4;
        fat[82..87].copy_from_slice(b"FAT\t2");
        assert_eq!(detect(&fat), None, "no string and nothing else either");
        fat[14] = 32; // reserved sectors
        fat[16] = 2; // FATs
        fat[21] = 0xf8; // media
        fat[32..36].copy_from_slice(&65536u32.to_le_bytes());
        fat[36..40].copy_from_slice(&512u32.to_le_bytes());
        assert_eq!(detect(&fat), Some(FsType::Fat));
        assert_eq!(detect(&[0u8; 2048]), None);
        assert_eq!(detect(&[]), None);
    }
}
