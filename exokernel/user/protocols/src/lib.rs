//! ExoV6's service protocols, declared once.
//!
//! Every service a user process offers over IPC (a block driver, a
//! network driver, a file server) has the same shape, the [`session`]: a
//! client attaches a buffer by passing a memory capability (`ATTACH`),
//! sends requests of three words that refer to that buffer, and gives it
//! back (`DETACH`); every answer's first word is a [`session::Status`].
//! What differs is in one module each: [`block`] (sectors), [`frame`]
//! (Ethernet frames), [`socket`] (TCP and UDP sockets of the network
//! server) and [`file`] (the file protocol, whose requests and
//! responses are encoded in the buffer; the hosted `exo-img` speaks the
//! same encoding over a socket).
//!
//! The definitions are `no_std` and need no kernel, so both ends are
//! tested on the host. With feature `exo`, [`session::server`] is the
//! server side every service shares on ExoV6: the table of attached
//! clients with their buffers mapped, and the serve loop.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod argv;
pub mod block;
pub mod console;
pub mod file;
pub mod frame;
pub mod process;
pub mod session;
pub mod socket;
