//! The file server and its protocol.
//!
//! A disk image is parsed only here: partition tables ([`part`]), file
//! system detection ([`detect`]) and the file systems themselves
//! ([`backend`]: ext2/3/4 through `ext4-view`, FAT through `fatfs`). The
//! server speaks the file protocol ([`proto`]), defined once and used by
//! both ends, over a socket. In hosted mode each image gets its own server
//! process, sandboxed ([`sandbox`]) before it reads a byte of the image, so
//! a hostile image can at worst crash or stall its own server.
#![warn(missing_docs)]

pub mod backend;
pub mod client;
pub mod detect;
pub mod mount;
pub mod part;
pub mod proto;
pub mod sandbox;
pub mod server;
