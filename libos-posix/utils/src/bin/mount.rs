//! `mount`: which file server serves which disk, as each says: where it
//! is mounted, the file system and its label, the partition, the size and
//! how the server is confined (`disks` is the same program). Exit status
//! 1 if a server did not answer.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

exo_posix::entry!(main);

fn main(args: &str) -> i32 {
    exo_utils::list_mounts("mount", args)
}
