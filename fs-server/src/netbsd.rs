//! The `netbsd` backend: NetBSD's own file-system code (ffs, ext2fs,
//! msdosfs) serving an image, as a rump kernel inside the sandboxed
//! server, on rumpglue's rumpuser(3) hypercalls.
//!
//! The rump kernel is not shipped: a user who has built one (its shared
//! libraries: librump, librumpvfs, librumpdev, librumpdev_disk and the
//! librumpfs_* file systems) points `RUMP_SYSROOT` (or `--rump-sysroot`)
//! at it. The server loads the libraries before it sandboxes itself,
//! hands the kernel the image as a rumpglue block device (registered
//! under a name the kernel opens through etfs; the kernel can open no
//! host file at all), mounts it read-only, and then answers the file
//! protocol with `rump_sys_*` calls: what follows the loading is
//! `exo-fs-netbsd`, shared with the ExoV6 program `fs-rump`, which links
//! the kernel statically instead.
//!
//! The kernel's hypercalls bind to this executable's exported rumpglue
//! functions: they come first in the dynamic linker's lookup order. The
//! installation's own librumpuser is loaded only because librump names it
//! as a dependency; nothing of it is called.

use crate::backend::select_volume;
use exo_fs_netbsd::{Calls, Rump};
use std::ffi::{c_void, CStr, CString};
use std::path::Path;

/// The libraries, in dependency order.
const LIBRARIES: &[&str] = &[
    "librump.so",
    "librumpvfs.so",
    "librumpdev.so",
    "librumpdev_disk.so",
    "librumpfs_ffs.so",
    "librumpfs_ext2fs.so",
    "librumpfs_msdos.so",
];

fn dlerror() -> String {
    // SAFETY: dlerror returns NULL or a message owned by the loader.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: a NUL-terminated message.
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

fn load(sysroot: &Path) -> Result<(), String> {
    let lib = sysroot.join("lib");
    // A full buildrump.sh installation's librump names librumpuser.so.0
    // as a dependency; loading it first (privately) satisfies that
    // without letting it provide a symbol. A kernel-only one (`-k`) has
    // none, and needs none.
    let deps = [("librumpuser.so.0", libc::RTLD_NOW | libc::RTLD_LOCAL)];
    let deps = deps.into_iter().filter(|(name, _)| lib.join(name).exists());
    let all = deps.chain(LIBRARIES.iter().map(|l| (*l, libc::RTLD_NOW | libc::RTLD_GLOBAL)));
    for (name, flags) in all {
        let path = lib.join(name);
        let c = CString::new(path.to_string_lossy().as_bytes()).map_err(|_| "bad path".to_string())?;
        // SAFETY: loading a shared library the user pointed us at; its
        // initialisers run now, before the sandbox.
        if unsafe { libc::dlopen(c.as_ptr(), flags) }.is_null() {
            return Err(format!("cannot load the rump kernel library {}: {}", path.display(), dlerror()));
        }
    }
    Ok(())
}

fn sym<T: Copy>(name: &str) -> Result<T, String> {
    assert_eq!(std::mem::size_of::<T>(), std::mem::size_of::<*mut c_void>());
    let c = CString::new(name).expect("no NUL");
    // SAFETY: a lookup in the global scope.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c.as_ptr()) };
    if p.is_null() {
        return Err(format!("the rump kernel has no {name}"));
    }
    // SAFETY: T is a function pointer type of the symbol's declared
    // signature (see `Calls`), of pointer size (checked above).
    Ok(unsafe { std::mem::transmute_copy::<*mut c_void, T>(&p) })
}

/// The host path under which the image is registered with rumpglue.
const IMAGE: &str = "/exo/image";

/// Loads the rump kernel from `sysroot`, gives it `dev` (partition
/// `choice`) and mounts the file system read-only. Call before the
/// sandbox: it opens the libraries and starts the kernel's threads.
pub fn open(
    sysroot: &Path,
    dev: std::sync::Arc<dyn rumpglue::BlockDevice>,
    choice: Option<usize>,
) -> Result<Rump, String> {
    let (volume, partition, fstype) = select_volume(dev, choice, exo_fs_netbsd::probe)?;
    // The kernel runs a score of threads; one malloc arena per thread
    // (64 MiB of address space each) would not fit the sandbox's
    // address-space limit.
    // SAFETY: mallopt only tunes the allocator.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    load(sysroot)?;
    rumpglue::rumpuser::register_device(IMAGE, volume.device());
    rumpglue::rumpuser::set_host_files(false);
    // The kernel's console goes to standard error; quiet unless asked.
    if std::env::var_os("RUMP_VERBOSE").is_none() {
        rumpglue::rumpuser::set_param("RUMP_VERBOSE", "0");
    }
    std::hint::black_box(&rumpglue::rumpuser::HYPERCALLS);
    let calls = Calls {
        init: sym("rump_init")?,
        etfs_register: sym("rump_pub_etfs_register")?,
        mkdir: sym("rump___sysimpl_mkdir")?,
        mount: sym("rump___sysimpl_mount50")?,
        open: sym("rump___sysimpl_open")?,
        close: sym("rump___sysimpl_close")?,
        pread: sym("rump___sysimpl_pread")?,
        lstat: sym("rump___sysimpl_lstat50")?,
        getdents: sym("rump___sysimpl_getdents30")?,
        readlink: sym("rump___sysimpl_readlink")?,
        errno: rumpglue::rumpuser::errno,
    };
    // SAFETY: the entry points of the kernel just loaded, found by the
    // names it exports them by, with its hypercalls bound to rumpglue's.
    unsafe { Rump::mount(calls, IMAGE, fstype, partition, volume.len()) }
}
