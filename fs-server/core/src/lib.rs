//! The file server's logic, with no operating system under it.
//!
//! `no_std` + `alloc`, so the same code serves images in a sandboxed Linux
//! process (hosted mode, crate `fs-server`) and, later, in an ExoV6 user
//! process over the virtio-blk block protocol. Everything it knows of the
//! outside comes through `rumpglue` (block devices, the wall clock).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod backend;
mod bytes;
pub mod codepage;
pub mod detect;
pub mod ext_direct;
pub mod ext_journal;
pub mod ext_layout;
pub mod fat_layout;
pub mod part;
/// The file protocol, as `exo-protocols` declares it for every client
/// and server.
pub use exo_protocols::file as proto;
pub mod server;
