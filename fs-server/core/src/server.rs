//! Answering one request of the file protocol with a file system: the
//! same for the hosted server (`fs-server`) and the ExoV6 one
//! (`fs-server/exo`).

use crate::backend::FileSystem;
use crate::proto::{ErrorKind, Request, Response};
use alloc::format;

/// Answers one request; `shared` is the buffer shared with the client,
/// if it gave one.
pub fn handle(fs: &dyn FileSystem, req: Request, shared: Option<&mut [u8]>) -> Response {
    let r = match req {
        Request::ReadMany(files) => {
            return Response::Many(fs.read_many(&files));
        }
        Request::ReadShared { path, offset, len, at } => match shared {
            Some(buf) if at as usize + len as usize <= buf.len() => {
                let window = &mut buf[at as usize..at as usize + len as usize];
                fs.read_into(&path, offset, window).map(|n| Response::Shared(n as u32))
            }
            Some(_) => Err((ErrorKind::Invalid, format!("{path}: read larger than the shared buffer"))),
            None => Err((ErrorKind::Invalid, "no shared buffer was set up".into())),
        },
        Request::Info => return Response::Info(fs.info()),
        Request::Stat(p) => fs.stat(&p).map(Response::Stat),
        Request::ReadDir(p) => fs.read_dir(&p).map(Response::Dir),
        Request::ReadDirFrom { path, skip } => {
            fs.read_dir(&path).map(|v| Response::Dir(v.into_iter().skip(skip as usize).collect()))
        }
        Request::Read { path, offset, len } => fs.read(&path, offset, len).map(Response::Data),
        Request::ReadLink(p) => fs.read_link(&p).map(Response::Link),
        Request::Create(p) => fs.create(&p).map(|_| Response::Done),
        Request::Write { path, offset, data } => fs.write(&path, offset, &data).map(|_| Response::Done),
        Request::Mkdir(p) => fs.mkdir(&p).map(|_| Response::Done),
        Request::Truncate { path, size } => fs.truncate(&path, size).map(|_| Response::Done),
        Request::Remove(p) => fs.remove(&p).map(|_| Response::Done),
        Request::Rename { from, to } => fs.rename(&from, &to).map(|_| Response::Done),
    };
    r.unwrap_or_else(|(k, m)| Response::Error(k, m))
}
