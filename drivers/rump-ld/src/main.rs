//! NetBSD's own virtio block driver as an ExoV6 driver process: the
//! porting story made real. A rump kernel linked into this program carries
//! NetBSD's PCI bus code, its virtio bus (`virtio at pci`) and its disk
//! driver (`ld at virtio`), unmodified; rumpglue's exokernel backend gives
//! them the machine through this process's capabilities only:
//!
//! - configuration space of the one PCI function the manifest granted
//!   (a NetBSD bus scan finds nothing else);
//! - its I/O BAR, mapped into this process's I/O permission bitmap
//!   (NetBSD's bus_space does `in`/`out` itself; legacy virtio lives in
//!   I/O space);
//! - its legacy interrupt line, bound to a notification whose thread runs
//!   NetBSD's interrupt handler;
//! - DMA memory from the process's own budget.
//!
//! When the kernel has attached `ld0`, this program opens its raw device
//! (`/dev/rld0d`, the whole disk) and serves the block protocol on its
//! endpoint, so the native file server (or any block client) reads the
//! disk through NetBSD's driver as it would through the Rust one.
//!
//! The rump kernel is the user's own build (buildrump.sh, plus
//! `scripts/build-rump-pci` for the PCI components), linked in by
//! `RUMP_SYSROOT=DIR scripts/build`; ExoV6 ships none of it.
//!
//! Arguments: `[serve N] [rw] [verbose]`: `serve N` stops after N clients
//! have come and gone (for tests); `rw` lets clients write (read-only
//! otherwise); `verbose` lets the rump kernel print its autoconfiguration.
#![no_std]
#![no_main]

extern crate alloc;

use exo_rt::println;

exo_rt::entry!(main);

fn main(args: &str) -> i32 {
    let (mut clients, mut rw, mut verbose) = (None, false, false);
    let mut words = args.split_whitespace();
    while let Some(w) = words.next() {
        match w {
            "serve" => match words.next().and_then(|n| n.parse::<u64>().ok()) {
                Some(n) => clients = Some(n),
                None => {
                    println!("rump-ld: serve takes a number of clients");
                    return 2;
                }
            },
            "rw" => rw = true,
            "verbose" => verbose = true,
            other => {
                println!("rump-ld: unknown argument {other:?} (known: serve N, rw, verbose)");
                return 2;
            }
        }
    }
    run(clients, rw, verbose)
}

#[cfg(not(rump_kernel))]
fn run(_: Option<u64>, _: bool, _: bool) -> i32 {
    println!(
        "rump-ld: built without a rump kernel: build NetBSD's rump kernel (buildrump.sh, static archives) and its \
         PCI components (scripts/build-rump-pci), then run RUMP_SYSROOT=<its installation> scripts/build <manifest> \
         (docs/porting.md)"
    );
    3
}

#[cfg(rump_kernel)]
fn run(clients: Option<u64>, rw: bool, verbose: bool) -> i32 {
    use alloc::format;
    use core::ffi::c_int;
    use exo_protocols::block;
    use exo_protocols::session;
    use exo_protocols::session::server::{self, Ended, Serve, Sessions};
    use exo_rt::abi::{FOREVER, PAGE_SIZE};
    use exo_rt::caps::Endpoint;
    use netbsd_sys::rump as nb;

    /// Where clients' buffers are mapped, one window each.
    const CLIENT_VA: u64 = 0x60_0000_0000;
    const CLIENT_WINDOW: u64 = 64 << 20;
    const MAX_CLIENTS: usize = 8;
    /// Bytes of DMA memory every transfer goes through.
    const BOUNCE: usize = 256 << 10;
    /// Bytes of DMA memory the rump kernel runs in.
    const KERNEL_MEMORY: usize = 16 << 20;

    if !verbose {
        rumpglue::rumpuser::set_param("RUMP_VERBOSE", "0");
    }
    // NetBSD's drivers hand kernel buffers (a disk label, say) to the
    // device: the kernel's memory must be DMA memory.
    if let Err(e) = rumpglue::rumpuser::device_memory(KERNEL_MEMORY) {
        println!("rump-ld: no {} MiB of DMA memory for the rump kernel: {e}", KERNEL_MEMORY >> 20);
        return 1;
    }
    // Its caches grow to its memory limit: half of that memory, the rest
    // for its own allocations.
    rumpglue::rumpuser::set_param("RUMP_MEMLIMIT", &format!("{}k", KERNEL_MEMORY / 2 / 1024));
    let started = exo_rt::sys::clock();
    // SAFETY: the rump kernel linked into this program, its hypercalls
    // rumpglue's; called once.
    let rv = unsafe { kernel::rump_init() };
    if rv != 0 {
        println!("rump-ld: rump_init failed: NetBSD error {rv}");
        return 1;
    }
    let flags = if rw { nb::NETBSD_O_RDWR } else { nb::NETBSD_O_RDONLY } as c_int;
    // SAFETY: a NUL-terminated path; a system call into the kernel.
    let fd = unsafe { kernel::rump___sysimpl_open(c"/dev/rld0d".as_ptr(), flags) };
    if fd < 0 {
        println!(
            "rump-ld: no disk: opening /dev/rld0d failed with NetBSD error {} (did ld attach at virtio? the \
             argument verbose shows NetBSD's autoconfiguration)",
            rumpglue::rumpuser::errno()
        );
        return 1;
    }
    let (mut bytes, mut sector): (nb::netbsd_off_t, u32) = (0, 0);
    // SAFETY: each ioctl writes the type its number names, into a local.
    let asked = unsafe {
        kernel::rump___sysimpl_ioctl(fd, nb::NETBSD_DIOCGMEDIASIZE as _, &mut bytes as *mut nb::netbsd_off_t)
            .min(kernel::rump___sysimpl_ioctl(fd, nb::NETBSD_DIOCGSECTORSIZE as _, &mut sector as *mut u32))
    };
    if asked < 0 || bytes <= 0 || u64::from(sector) != block::SECTOR {
        println!(
            "rump-ld: ld0 gives no usable size: {bytes} bytes, {sector}-byte sectors (error {})",
            rumpglue::rumpuser::errno()
        );
        return 1;
    }
    println!(
        "rump-ld: NetBSD's ld0 at virtio: {bytes} bytes, attached in {} ms; serving the block protocol{}",
        (exo_rt::sys::clock() - started) / 1_000_000,
        if rw { " (read-write)" } else { " (read-only)" }
    );
    // NetBSD's driver hands the device the bus addresses of the buffers it
    // is given: they must be DMA memory (rumpglue refuses any other).
    let bounce = match rumpglue::Memory::alloc_dma(&rumpglue::exo::DMA, BOUNCE / PAGE_SIZE as usize) {
        Ok(r) => r,
        Err(e) => {
            println!("rump-ld: no DMA memory for transfers: {e}");
            return 1;
        }
    };
    // SAFETY: the region is this process's, mapped for `len` bytes, and
    // used by nothing else.
    let bounce = unsafe { core::slice::from_raw_parts_mut(bounce.virt, bounce.len) };
    let mut disk = Ld { fd, sectors: bytes as u64 / block::SECTOR, rw, bounce };
    let ep = Endpoint::from_slot(exo_manifest::ENDPOINT_SLOT_BASE);
    let mut sessions = Sessions::new(CLIENT_VA, CLIENT_WINDOW, MAX_CLIENTS, PAGE_SIZE);
    let how = Serve { name: "rump-ld", clients, bound: None, timeout: FOREVER, takes_cap: &[] };
    let ended = server::serve(ep, how, |msg| Some(session::answer(block::handle(&mut disk, &mut sessions, msg?))));
    // SAFETY: the descriptor opened above.
    unsafe { kernel::rump___sysimpl_close(fd) };
    match ended {
        Ended::Served(n) => {
            println!("rump-ld: {n} client(s) served");
            0
        }
        Ended::Failed(_) => 1,
    }
}

/// NetBSD's `ld0`, through its raw device, as the block protocol's disk.
#[cfg(rump_kernel)]
struct Ld {
    fd: core::ffi::c_int,
    sectors: u64,
    rw: bool,
    /// DMA memory that transfers go through.
    bounce: &'static mut [u8],
}

#[cfg(rump_kernel)]
impl exo_protocols::block::Disk for Ld {
    fn sectors(&self) -> u64 {
        self.sectors
    }
    fn readonly(&self) -> bool {
        !self.rw
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), exo_protocols::block::Status> {
        let mut at = sector * exo_protocols::block::SECTOR;
        for piece in buf.chunks_mut(self.bounce.len()) {
            let bounce = &mut self.bounce[..piece.len()];
            let mut done = 0;
            while done < piece.len() {
                let rest = &mut bounce[done..];
                // SAFETY: `rest` is valid for `rest.len()` bytes of writes.
                let n =
                    unsafe { kernel::rump___sysimpl_pread(self.fd, rest.as_mut_ptr().cast(), rest.len(), at as i64) };
                if n <= 0 {
                    return Err(exo_protocols::block::Status::DeviceError);
                }
                done += n as usize;
                at += n as u64;
            }
            piece.copy_from_slice(bounce);
        }
        Ok(())
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), exo_protocols::block::Status> {
        let mut at = sector * exo_protocols::block::SECTOR;
        for piece in buf.chunks(self.bounce.len()) {
            let bounce = &mut self.bounce[..piece.len()];
            bounce.copy_from_slice(piece);
            let mut done = 0;
            while done < piece.len() {
                let rest = &bounce[done..];
                // SAFETY: `rest` is valid for `rest.len()` bytes of reads.
                let n = unsafe { kernel::rump___sysimpl_pwrite(self.fd, rest.as_ptr().cast(), rest.len(), at as i64) };
                if n <= 0 {
                    return Err(exo_protocols::block::Status::DeviceError);
                }
                done += n as usize;
                at += n as u64;
            }
        }
        Ok(())
    }
}

/// The rump kernel's entry points, under the names it exports them by,
/// with the types `netbsd_sys::rump` declares.
#[cfg(rump_kernel)]
mod kernel {
    use core::ffi::{c_char, c_int, c_void};
    use netbsd_sys::rump as nb;

    extern "C" {
        pub fn rump_init() -> c_int;
        pub fn rump___sysimpl_open(path: *const c_char, flags: c_int, ...) -> c_int;
        pub fn rump___sysimpl_close(fd: c_int) -> c_int;
        pub fn rump___sysimpl_ioctl(fd: c_int, com: nb::netbsd_u_long, ...) -> c_int;
        pub fn rump___sysimpl_pread(
            fd: c_int,
            buf: *mut c_void,
            len: usize,
            off: nb::netbsd_off_t,
        ) -> nb::netbsd_ssize_t;
        pub fn rump___sysimpl_pwrite(
            fd: c_int,
            buf: *const c_void,
            len: usize,
            off: nb::netbsd_off_t,
        ) -> nb::netbsd_ssize_t;
    }
}
