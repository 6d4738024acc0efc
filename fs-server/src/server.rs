//! The server loop: one request, one response, until the client hangs up.

use crate::backend::FileSystem;
use crate::proto::{ErrorKind, Request, Response};
use crate::wire::{recv, send_response};
pub use exo_fs_core::server::handle;
use std::io::{self, Read, Write};

/// Serves requests from `stream` until it closes.
pub fn serve(
    fs: &dyn FileSystem,
    stream: &mut (impl Read + Write),
    mut shared: Option<&mut crate::shm::SharedBuf>,
) -> io::Result<()> {
    while let Some(msg) = recv(stream)? {
        let resp = match Request::decode(&msg) {
            Ok(req) => handle(fs, req, shared.as_deref_mut().map(|s| s.as_mut_slice())),
            Err(e) => Response::Error(ErrorKind::Invalid, e.to_string()),
        };
        send_response(stream, &resp)?;
    }
    Ok(())
}
