//! The NetBSD file server as an ExoV6 process: NetBSD's own ffs, ext2fs
//! and msdosfs code, in a rump kernel linked into this program, reads the
//! disk of a block driver and serves the same file protocol as the
//! native `fs-server`, so every client works with either. One process
//! per disk: a hostile image can only crash its own server.
//!
//! The rump kernel is the user's own build (buildrump.sh, static
//! archives), linked in by `RUMP_SYSROOT=DIR scripts/build`; ExoV6 ships
//! none of it. Its hypercalls are rumpglue's rumpuser(3) layer on the
//! exokernel backend: threads, locks, memory, clocks, and block I/O on the
//! one device registered here, the disk behind the block protocol on the
//! first endpoint. The kernel can reach nothing else. It mounts the disk
//! read-only; `exo-fs-netbsd` (shared with the hosted server) turns file
//! requests into `rump_sys_*` calls.
//!
//! Arguments: `[serve N] [crash-after N | hang-after N |
//! netbsd-panic-after N] [verbose]`, and `partition N` anywhere (the N-th
//! partition of an MBR or GPT disk; else the first usable volume): `serve N` stops after N clients have
//! come and gone (for tests); the hooks fail in the N-th request (the last
//! by NetBSD's own `panic()`);
//! `verbose` lets the rump kernel print its boot messages.
#![no_std]
#![no_main]

extern crate alloc;

use exo_rt::println;

exo_rt::entry!(main);

/// The block driver's endpoint, and this server's.
#[cfg(rump_kernel)]
const BLOCK_EP: u64 = exo_manifest::ENDPOINT_SLOT_BASE;
#[cfg(rump_kernel)]
const FILES_EP: u64 = exo_manifest::ENDPOINT_SLOT_BASE + 1;

/// Where the buffer shared with the block driver is mapped.
#[cfg(rump_kernel)]
const BLOCK_BUF_VA: u64 = 0x50_0000_0000;

/// The name the disk is registered under with rumpglue, which the rump
/// kernel opens through etfs.
#[cfg(rump_kernel)]
const DISK: &str = "/exo/disk";

fn main(args: &str) -> i32 {
    // `partition N` anywhere (exo-img's appliance gives it on the boot
    // line); the rest in order.
    let mut all: alloc::vec::Vec<&str> = args.split_whitespace().collect();
    let partition = match exo_fs_native::take_option(&mut all, "partition") {
        None => None,
        Some(Some(p)) => Some(p as usize),
        Some(None) => {
            println!("fs-rump: partition takes a number");
            return 2;
        }
    };
    let mut words = all.into_iter().peekable();
    let clients = match words.next_if_eq(&"serve").and_then(|_| words.next()) {
        Some(n) => match n.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                println!("fs-rump: serve takes a number of clients, not {n:?}");
                return 2;
            }
        },
        None => None,
    };
    let verbose = args.split_whitespace().any(|w| w == "verbose");
    let mut rest = words.filter(|w| *w != "verbose").peekable();
    let hook = match rest.next_if_eq(&"netbsd-panic-after").and_then(|_| rest.next()) {
        Some(n) => match n.parse::<u64>() {
            Ok(n) if exo_rt::generation() == 0 => Some((n, exo_fs_native::Hook::Call("a NetBSD panic", netbsd_panic))),
            Ok(_) => None,
            Err(_) => {
                println!("fs-rump: netbsd-panic-after takes a number of requests, not {n:?}");
                return 2;
            }
        },
        None => exo_fs_native::hook(rest),
    };
    run(clients, hook, verbose, partition)
}

/// The test hook `netbsd-panic-after N`: NetBSD's own `panic()`, called
/// on a virtual CPU of the rump kernel as its code would call it.
#[cfg(rump_kernel)]
fn netbsd_panic() {
    // SAFETY: the kernel's entry points; panic does not return.
    unsafe {
        kernel::rump_schedule();
        kernel::rumpns_panic(c"fs-rump test hook: a NetBSD panic".as_ptr());
    }
}

#[cfg(not(rump_kernel))]
fn netbsd_panic() {}

#[cfg(not(rump_kernel))]
fn run(_: Option<u64>, _: Option<(u64, exo_fs_native::Hook)>, _: bool, _: Option<usize>) -> i32 {
    println!(
        "fs-rump: built without a rump kernel: build NetBSD's rump kernel (buildrump.sh, static archives) and \
         run RUMP_SYSROOT=<its installation> scripts/build <manifest> (docs/porting.md)"
    );
    3
}

#[cfg(rump_kernel)]
fn run(clients: Option<u64>, hook: Option<(u64, exo_fs_native::Hook)>, verbose: bool, choice: Option<usize>) -> i32 {
    use alloc::format;
    use alloc::sync::Arc;
    use exo_fs_core::backend::FileSystem;
    use exo_fs_netbsd::{Calls, Rump};
    use exo_rt::caps::Endpoint;
    use rumpglue::exo::BlockClient;

    let disk = match BlockClient::attach("fs-rump", Endpoint::from_slot(BLOCK_EP), false, BLOCK_BUF_VA) {
        Ok(d) => Arc::new(d),
        Err(e) => {
            println!("fs-rump: cannot reach the disk: {e}");
            return 1;
        }
    };
    let sectors = disk.sectors();
    let (volume, partition, fstype) =
        match exo_fs_core::backend::select_volume(disk.clone(), choice, exo_fs_netbsd::probe) {
            Ok(found) => found,
            Err(e) => {
                println!("fs-rump: {e}");
                return 1;
            }
        };
    rumpglue::rumpuser::register_device(DISK, volume.device());
    if !verbose {
        rumpglue::rumpuser::set_param("RUMP_VERBOSE", "0");
    }
    // The kernel's page cache grows until its memory limit, then its page
    // daemon frees pages. Without a limit it would take the whole heap and
    // then wait for ever for memory: half the heap, the rest for the
    // kernel's own allocations and this program.
    let limit_kib = exo_rt::heap_size() / 2 / 1024;
    rumpglue::rumpuser::set_param("RUMP_MEMLIMIT", &format!("{limit_kib}k"));
    let calls = Calls {
        init: kernel::rump_init,
        etfs_register: kernel::rump_pub_etfs_register,
        mkdir: kernel::rump___sysimpl_mkdir,
        mount: kernel::rump___sysimpl_mount50,
        open: kernel::rump___sysimpl_open,
        close: kernel::rump___sysimpl_close,
        pread: kernel::rump___sysimpl_pread,
        lstat: kernel::rump___sysimpl_lstat50,
        getdents: kernel::rump___sysimpl_getdents30,
        readlink: kernel::rump___sysimpl_readlink,
        errno: rumpglue::rumpuser::errno,
    };
    let started = exo_rt::sys::clock();
    // SAFETY: the entry points of the rump kernel linked into this
    // program, declared as netbsd_sys::rump declares them; its hypercalls
    // are rumpglue's; called once.
    let mut fs = match unsafe { Rump::mount(calls, DISK, fstype, partition, volume.len()) } {
        Ok(fs) => fs,
        Err(e) => {
            println!("fs-rump: {e}");
            return 1;
        }
    };
    fs.set_sandbox(format!(
        "ExoV6 process: NetBSD rump kernel, disk through a block driver ({sectors} sectors), read-only"
    ));
    let info = fs.info();
    println!(
        "fs-rump: {} on the {}, {} bytes, mounted in {} ms",
        info.fs,
        info.partition,
        info.size,
        (exo_rt::sys::clock() - started) / 1_000_000
    );
    let code = exo_fs_native::serve("fs-rump", &fs, Endpoint::from_slot(FILES_EP), clients, hook);
    disk.detach();
    code
}

/// The rump kernel's entry points, under the names it exports them by,
/// with the types `netbsd_sys::rump` declares (`exo_fs_netbsd::Calls`).
#[cfg(rump_kernel)]
mod kernel {
    use core::ffi::{c_char, c_int, c_void};
    use netbsd_sys::rump as nb;

    extern "C" {
        pub fn rump_init() -> c_int;
        pub fn rump_schedule();
        pub fn rumpns_panic(fmt: *const c_char, ...) -> !;
        pub fn rump_pub_etfs_register(key: *const c_char, host: *const c_char, ty: nb::rump_etfs_type) -> c_int;
        pub fn rump___sysimpl_mkdir(path: *const c_char, mode: nb::netbsd_mode_t) -> c_int;
        pub fn rump___sysimpl_mount50(
            ty: *const c_char,
            path: *const c_char,
            flags: c_int,
            data: *mut c_void,
            len: usize,
        ) -> c_int;
        pub fn rump___sysimpl_open(path: *const c_char, flags: c_int, ...) -> c_int;
        pub fn rump___sysimpl_close(fd: c_int) -> c_int;
        pub fn rump___sysimpl_pread(
            fd: c_int,
            buf: *mut c_void,
            len: usize,
            off: nb::netbsd_off_t,
        ) -> nb::netbsd_ssize_t;
        pub fn rump___sysimpl_lstat50(path: *const c_char, st: *mut nb::netbsd_stat) -> c_int;
        pub fn rump___sysimpl_getdents30(fd: c_int, buf: *mut c_char, len: usize) -> c_int;
        pub fn rump___sysimpl_readlink(path: *const c_char, buf: *mut c_char, len: usize) -> nb::netbsd_ssize_t;
    }
}
