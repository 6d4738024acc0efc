//! The file server and its protocol.
//!
//! A disk image is parsed only by the logic in `exo-fs-core` (no_std +
//! alloc, re-exported here): partition tables ([`part`]), file system
//! detection ([`detect`]) and the file systems themselves ([`backend`]:
//! ext2/3/4 through `ext4-view` or its own reader, FAT through `starry-fatfs`). The
//! server speaks the file protocol ([`proto`]), defined once and used by
//! both ends, over a socket. In hosted mode each image gets its own server
//! process, sandboxed ([`sandbox`]) before it reads a byte of the image, so
//! a hostile image can at worst crash or stall its own server.
#![warn(missing_docs)]

pub use exo_fs_core::{backend, codepage, detect, part, proto};

pub mod client;
pub mod dest;
pub mod links;
pub mod mount;
pub mod netbsd;
pub mod oom;
pub mod output;
pub mod sandbox;
pub mod serve;
pub mod server;
pub mod shm;
pub mod vm;
pub mod wire;
