//! NetBSD errno values (what [`crate::Error::errno`] and every rumpuser(3)
//! call return) and the translation of Linux ones.

#![allow(missing_docs)]

pub const EPERM: i32 = 1;
pub const ENOENT: i32 = 2;
pub const ESRCH: i32 = 3;
pub const EINTR: i32 = 4;
pub const EIO: i32 = 5;
pub const ENXIO: i32 = 6;
pub const E2BIG: i32 = 7;
pub const ENOEXEC: i32 = 8;
pub const EBADF: i32 = 9;
pub const ECHILD: i32 = 10;
pub const EDEADLK: i32 = 11;
pub const ENOMEM: i32 = 12;
pub const EACCES: i32 = 13;
pub const EFAULT: i32 = 14;
pub const ENOTBLK: i32 = 15;
pub const EBUSY: i32 = 16;
pub const EEXIST: i32 = 17;
pub const EXDEV: i32 = 18;
pub const ENODEV: i32 = 19;
pub const ENOTDIR: i32 = 20;
pub const EISDIR: i32 = 21;
pub const EINVAL: i32 = 22;
pub const ENFILE: i32 = 23;
pub const EMFILE: i32 = 24;
pub const ENOTTY: i32 = 25;
pub const ETXTBSY: i32 = 26;
pub const EFBIG: i32 = 27;
pub const ENOSPC: i32 = 28;
pub const ESPIPE: i32 = 29;
pub const EROFS: i32 = 30;
pub const EMLINK: i32 = 31;
pub const EPIPE: i32 = 32;
pub const EDOM: i32 = 33;
pub const ERANGE: i32 = 34;
pub const EAGAIN: i32 = 35;
pub const EINPROGRESS: i32 = 36;
pub const EALREADY: i32 = 37;
pub const ENOTSOCK: i32 = 38;
pub const EDESTADDRREQ: i32 = 39;
pub const EMSGSIZE: i32 = 40;
pub const EPROTOTYPE: i32 = 41;
pub const ENOPROTOOPT: i32 = 42;
pub const EPROTONOSUPPORT: i32 = 43;
pub const ESOCKTNOSUPPORT: i32 = 44;
pub const EOPNOTSUPP: i32 = 45;
pub const EPFNOSUPPORT: i32 = 46;
pub const EAFNOSUPPORT: i32 = 47;
pub const EADDRINUSE: i32 = 48;
pub const EADDRNOTAVAIL: i32 = 49;
pub const ENETDOWN: i32 = 50;
pub const ENETUNREACH: i32 = 51;
pub const ENETRESET: i32 = 52;
pub const ECONNABORTED: i32 = 53;
pub const ECONNRESET: i32 = 54;
pub const ENOBUFS: i32 = 55;
pub const EISCONN: i32 = 56;
pub const ENOTCONN: i32 = 57;
pub const ESHUTDOWN: i32 = 58;
pub const ETOOMANYREFS: i32 = 59;
pub const ETIMEDOUT: i32 = 60;
pub const ECONNREFUSED: i32 = 61;
pub const ELOOP: i32 = 62;
pub const ENAMETOOLONG: i32 = 63;
pub const EHOSTDOWN: i32 = 64;
pub const EHOSTUNREACH: i32 = 65;
pub const ENOTEMPTY: i32 = 66;
pub const EDQUOT: i32 = 69;
pub const ESTALE: i32 = 70;
pub const EPROGMISMATCH: i32 = 75;
pub const ENOLCK: i32 = 77;
pub const ENOSYS: i32 = 78;
pub const EOVERFLOW: i32 = 84;
pub const EILSEQ: i32 = 85;
pub const ENOTSUP: i32 = 86;
pub const ECANCELED: i32 = 87;
pub const ENOATTR: i32 = 93;

/// The NetBSD errno for a Linux one (`EIO` for those NetBSD lacks).
pub fn from_linux(e: i32) -> i32 {
    // Linux numbers 1..=34 are the historical Unix ones, shared by both,
    // except 11 (Linux EAGAIN, NetBSD EDEADLK).
    if (1..=34).contains(&e) && e != 11 {
        return e;
    }
    match e {
        11 => EAGAIN,
        35 => EDEADLK,
        36 => ENAMETOOLONG,
        37 => ENOLCK,
        38 => ENOSYS,
        39 => ENOTEMPTY,
        40 => ELOOP,
        61 => ENOATTR, // ENODATA, what Linux says for a missing xattr
        75 => EOVERFLOW,
        84 => EILSEQ,
        88 => ENOTSOCK,
        89 => EDESTADDRREQ,
        90 => EMSGSIZE,
        91 => EPROTOTYPE,
        92 => ENOPROTOOPT,
        93 => EPROTONOSUPPORT,
        94 => ESOCKTNOSUPPORT,
        95 => EOPNOTSUPP,
        96 => EPFNOSUPPORT,
        97 => EAFNOSUPPORT,
        98 => EADDRINUSE,
        99 => EADDRNOTAVAIL,
        100 => ENETDOWN,
        101 => ENETUNREACH,
        102 => ENETRESET,
        103 => ECONNABORTED,
        104 => ECONNRESET,
        105 => ENOBUFS,
        106 => EISCONN,
        107 => ENOTCONN,
        108 => ESHUTDOWN,
        109 => ETOOMANYREFS,
        110 => ETIMEDOUT,
        111 => ECONNREFUSED,
        112 => EHOSTDOWN,
        113 => EHOSTUNREACH,
        114 => EALREADY,
        115 => EINPROGRESS,
        116 => ESTALE,
        122 => EDQUOT,
        125 => ECANCELED,
        _ => EIO,
    }
}

/// The NetBSD errno for a host I/O error.
#[cfg(feature = "host")]
pub fn from_io(e: &std::io::Error) -> i32 {
    e.raw_os_error().map_or(EIO, from_linux)
}

/// The calling thread's last host error, as a NetBSD errno.
#[cfg(feature = "rumpuser")]
pub(crate) fn last() -> i32 {
    from_io(&std::io::Error::last_os_error())
}

#[cfg(all(test, feature = "host"))]
mod tests {
    use super::*;

    #[test]
    fn linux_numbers_translate() {
        assert_eq!(from_linux(libc::ENOENT), ENOENT);
        assert_eq!(from_linux(libc::EAGAIN), EAGAIN);
        assert_eq!(from_linux(libc::ETIMEDOUT), ETIMEDOUT);
        assert_eq!(from_linux(libc::ENOTEMPTY), ENOTEMPTY);
        assert_eq!(from_linux(libc::ENAMETOOLONG), ENAMETOOLONG);
        assert_eq!(from_linux(libc::EOPNOTSUPP), EOPNOTSUPP);
        assert_eq!(from_linux(libc::ENOSYS), ENOSYS);
        assert_eq!(from_linux(libc::ERANGE), ERANGE);
        assert_eq!(from_linux(4095), EIO);
    }
}
