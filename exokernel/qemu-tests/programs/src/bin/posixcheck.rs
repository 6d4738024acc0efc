//! An application on the POSIX library OS (`exo-posix`): mounts the file
//! server at `/` and uses files through descriptors as a Unix program
//! would: open, read to the end, lseek, fstat, readdir, and the errors
//! POSIX names (ENOENT, EISDIR, EBADF, EROFS). With `rw` it also creates,
//! writes, renames and removes a file and makes a directory. One line per
//! check; exits 0 if all pass. Needs console, untyped and the file
//! server's endpoint.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use exo_demos::Checks;
use exo_posix::flags::{O_CREAT, O_RDONLY, O_TRUNC, O_WRONLY};
use exo_posix::{self as posix, Errno, Whence};

exo_rt::entry!(main);

/// Reads `fd` to the end in 4000-byte reads.
fn read_all(fd: posix::Fd) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4000];
    loop {
        match posix::read(fd, &mut buf)? {
            0 => return Ok(out),
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

fn main(args: &str) -> i32 {
    let rw = args.split_whitespace().any(|w| w == "rw");
    let mut c = Checks::new("posixcheck");
    let m = posix::mount(exo_manifest::ENDPOINT_SLOT_BASE);
    c.check("mount /", m.is_ok(), format_args!("{m:?}"));
    let _ = posix::write(1, b"posixcheck: this line went through descriptor 1\n");

    let hello = posix::open("/hello.txt", O_RDONLY).and_then(|fd| {
        let text = read_all(fd)?;
        posix::close(fd)?;
        Ok(text)
    });
    let st = posix::stat("/hello.txt");
    c.check(
        "open, read to the end, close",
        hello.as_ref().map(|t| t.len() as u64).ok() == st.map(|s| s.size).ok() && st.is_ok(),
        format_args!("{:?} ({st:?})", hello.as_ref().map(|t| core::str::from_utf8(t).unwrap_or("?").trim_end())),
    );

    let fd = posix::open("/data/blob.bin", O_RDONLY);
    let blob = fd.and_then(read_all);
    let hash = blob
        .as_ref()
        .map(|b| b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| (h ^ *x as u64).wrapping_mul(0x0000_0100_0000_01b3)));
    c.check(
        "read a large file",
        blob.is_ok(),
        format_args!("{} bytes, fnv1a64 {:016x}", blob.as_ref().map_or(0, |b| b.len()), hash.unwrap_or(0)),
    );
    let fd = fd.unwrap_or(-1);
    let at = posix::lseek(fd, 123_456, Whence::Set);
    let mut ten = [0u8; 10];
    let n = posix::read(fd, &mut ten);
    let same = blob.as_ref().is_ok_and(|b| b.len() > 123_466 && b[123_456..123_466] == ten);
    let end = posix::lseek(fd, 0, Whence::End);
    let fst = posix::fstat(fd);
    c.check(
        "lseek and fstat",
        at == Ok(123_456) && n == Ok(10) && same && end == fst.map(|s| s.size) && fst.is_ok_and(|s| !s.is_dir()),
        format_args!("set {at:?}, read {n:?}, end {end:?}"),
    );
    let _ = posix::close(fd);

    let dir = posix::readdir("/data").map(|d| d.into_iter().map(|e| e.name).collect::<Vec<_>>());
    c.check("readdir /data", dir.as_deref() == Ok(&["blob.bin".into()][..]), format_args!("{dir:?}"));

    let missing = posix::open("/no/such/file", O_RDONLY);
    let d = posix::open("/data", O_RDONLY);
    let dir_read = d.and_then(|fd| posix::read(fd, &mut ten));
    let ro = posix::open("/hello.txt", O_RDONLY);
    let wrong_way = ro.and_then(|fd| posix::write(fd, b"x"));
    let closed = ro.and_then(posix::close).and_then(|_| posix::close(ro.unwrap_or(-1)));
    c.check(
        "errors",
        missing == Err(Errno::ENOENT)
            && dir_read == Err(Errno::EISDIR)
            && wrong_way == Err(Errno::EBADF)
            && closed == Err(Errno::EBADF)
            && posix::read(99, &mut ten) == Err(Errno::EBADF),
        format_args!(
            "missing {missing:?}, read a directory {dir_read:?}, write read-only {wrong_way:?}, close twice {closed:?}"
        ),
    );

    let text = b"created through the POSIX layer\n";
    let created = posix::open("/posix.txt", O_CREAT | O_WRONLY | O_TRUNC);
    if rw {
        let wrote = created.and_then(|fd| {
            let n = posix::write(fd, text)?;
            posix::close(fd)?;
            Ok(n)
        });
        let back = posix::open("/posix.txt", O_RDONLY).and_then(read_all);
        let moved = posix::rename("/posix.txt", "/renamed.txt").and_then(|_| posix::stat("/renamed.txt"));
        let made = posix::mkdir("/newdir").and_then(|_| posix::stat("/newdir"));
        let removed = posix::unlink("/renamed.txt").and_then(|_| posix::stat("/renamed.txt"));
        c.check(
            "create, write, rename, mkdir, unlink",
            wrote == Ok(text.len())
                && back.as_deref() == Ok(&text[..])
                && moved.map(|s| s.size) == Ok(text.len() as u64)
                && made.is_ok_and(|s| s.is_dir())
                && removed == Err(Errno::ENOENT),
            format_args!(
                "wrote {wrote:?}, renamed {:?}, mkdir {:?}, after unlink {removed:?}",
                moved.map(|s| s.size),
                made.map(|s| s.is_dir())
            ),
        );
    } else {
        c.check("read-only file system", created == Err(Errno::EROFS), format_args!("{created:?}"));
    }
    let u = posix::unmount();
    c.check("unmount", u.is_ok(), format_args!("{u:?}"));
    c.finish()
}
