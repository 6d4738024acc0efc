//! The file protocol over ExoV6 IPC: how a program talks to a file server
//! process (`fs-server/exo`).
//!
//! The client attaches a buffer first: `call([ATTACH, 0, 0])` passing a
//! memory capability, which the server maps (a derived copy: the client
//! can revoke it). Then each `call([REQUEST, len, 0])` carries a request
//! of the file protocol ([`crate::proto`]) encoded in the first `len` bytes
//! of the buffer; the server answers `[OK, rlen, 0]` with the encoded
//! response in the first `rlen` bytes. `DETACH` gives the buffer back. A
//! malformed request gets an encoded error response, as on the hosted
//! server's socket; only what cannot carry a response gets a bad status.

/// Map the passed memory capability as this client's buffer. Answer:
/// `[OK, buffer bytes, 0]`.
pub const ATTACH: u64 = 1;
/// `[REQUEST, len, 0]`: a request in the buffer. Answer: `[OK, rlen, 0]`.
pub const REQUEST: u64 = 2;
/// Unmap the buffer. Answer: `[OK, 0, 0]`.
pub const DETACH: u64 = 3;

/// Done.
pub const OK: u64 = 0;
/// Unknown operation, or a length beyond the buffer.
pub const BAD_REQUEST: u64 = 1;
/// No buffer attached (or an attach without a memory capability).
pub const NOT_ATTACHED: u64 = 2;
/// The response does not fit in the buffer.
pub const TOO_LARGE: u64 = 3;
/// The buffer could not be mapped.
pub const BAD_BUFFER: u64 = 4;
