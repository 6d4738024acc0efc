//! Loading rump components, daemon support, and the (unsupported)
//! system-call proxy.
//!
//! `rumpuser_dl_bootstrap`: a rump kernel finds its own built-in modules
//! and components through its link sets. When it runs as a set of shared
//! objects (librump.so, librumpvfs.so, librumpfs_ffs.so, ...), each object
//! has link sets of its own, which only the host can find: this walks the
//! loaded objects, hands the kernel their `link_set_modules` (domodinit)
//! and `link_set_rump_components` (compload), and gives it the symbols of
//! the rump objects (symload) for its symbol table. The object holding
//! the kernel itself is skipped (it walks its own sets), and so is the
//! main program when the kernel is linked into it statically.

use crate::errno;
use core::ffi::{c_char, c_int, c_void, CStr};
use netbsd_sys::rumpuser::{self as h, modinfo, rump_component};

extern "C" {
    fn rumpglue_main_link_sets(
        mods: *mut *const *const c_void,
        nmods: *mut usize,
        comps: *mut *const *const c_void,
        ncomps: *mut usize,
    );
}

const DT_NULL: i64 = 0;
const DT_HASH: i64 = 4;
const DT_STRTAB: i64 = 5;
const DT_SYMTAB: i64 = 6;
const DT_STRSZ: i64 = 10;
const DT_GNU_HASH: i64 = 0x6fff_fef5;
const PT_LOAD: u32 = 1;

/// An entry of an ELF64 dynamic section.
#[repr(C)]
struct Elf64Dyn {
    d_tag: i64,
    d_un: u64,
}
const PT_DYNAMIC: u32 = 2;

/// One loaded object, as the dynamic linker reports it.
struct Object {
    name: String,
    base: usize,
    /// Loaded segments, [start, end).
    segments: Vec<(usize, usize)>,
    dynamic: Option<usize>,
}

impl Object {
    fn contains(&self, addr: usize) -> bool {
        self.segments.iter().any(|&(s, e)| (s..e).contains(&addr))
    }
}

fn loaded_objects() -> Vec<Object> {
    unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> c_int {
        // SAFETY: the dynamic linker passes a valid info; `data` is ours.
        let (info, out) = unsafe { (&*info, &mut *data.cast::<Vec<Object>>()) };
        let name = if info.dlpi_name.is_null() {
            String::new()
        } else {
            // SAFETY: a NUL-terminated name from the dynamic linker.
            unsafe { CStr::from_ptr(info.dlpi_name) }.to_string_lossy().into_owned()
        };
        let base = info.dlpi_addr as usize;
        let mut o = Object { name, base, segments: Vec::new(), dynamic: None };
        for i in 0..info.dlpi_phnum as usize {
            // SAFETY: `dlpi_phnum` program headers at `dlpi_phdr`.
            let ph = unsafe { &*info.dlpi_phdr.add(i) };
            let start = base + ph.p_vaddr as usize;
            match ph.p_type {
                PT_LOAD => o.segments.push((start, start + ph.p_memsz as usize)),
                PT_DYNAMIC => o.dynamic = Some(start),
                _ => {}
            }
        }
        out.push(o);
        0
    }
    let mut v: Vec<Object> = Vec::new();
    // SAFETY: the callback only reads what it is given and appends to `v`.
    unsafe { libc::dl_iterate_phdr(Some(each), (&mut v as *mut Vec<Object>).cast()) };
    v
}

/// An address from the dynamic section: glibc relocates these in place,
/// other linkers leave them relative to the base.
fn dyn_addr(o: &Object, p: u64) -> usize {
    let p = p as usize;
    if p < o.base {
        o.base + p
    } else {
        p
    }
}

/// The rump symbols (names starting "rump", "RUMP" or "__") of a loaded
/// object, appended to the symbol and string tables being built.
fn collect_symbols(o: &Object, syms: &mut Vec<libc::Elf64_Sym>, strs: &mut Vec<u8>) {
    let Some(dynamic) = o.dynamic else { return };
    let (mut symtab, mut strtab, mut strsz, mut count) = (0usize, 0usize, 0usize, 0usize);
    let mut d = dynamic as *const Elf64Dyn;
    // SAFETY: the dynamic section of a loaded object, DT_NULL-terminated;
    // the tables it points at are mapped as long as the object is.
    unsafe {
        while (*d).d_tag != DT_NULL {
            let v = (*d).d_un;
            match (*d).d_tag {
                DT_SYMTAB => symtab = dyn_addr(o, v),
                DT_STRTAB => strtab = dyn_addr(o, v),
                DT_STRSZ => strsz = v as usize,
                DT_HASH => count = *(dyn_addr(o, v) as *const u32).add(1) as usize,
                DT_GNU_HASH if count == 0 => count = gnu_hash_count(dyn_addr(o, v) as *const u32),
                _ => {}
            }
            d = d.add(1);
        }
        if symtab == 0 || strtab == 0 || strsz == 0 || count == 0 {
            return;
        }
        let table = core::slice::from_raw_parts(symtab as *const libc::Elf64_Sym, count);
        for s in table {
            if s.st_shndx == 0 || s.st_value == 0 || s.st_name as usize >= strsz {
                continue;
            }
            let name = CStr::from_ptr((strtab + s.st_name as usize) as *const c_char).to_bytes();
            if !(name.starts_with(b"rump") || name.starts_with(b"RUMP") || name.starts_with(b"__")) {
                continue;
            }
            let mut copy = *s;
            copy.st_name = strs.len() as u32;
            copy.st_value += o.base as u64;
            syms.push(copy);
            strs.extend_from_slice(name);
            strs.push(0);
        }
    }
}

/// The number of symbols a DT_GNU_HASH table covers: the end of the
/// chain of the last non-empty bucket.
///
/// # Safety
/// `t` points to a loaded object's GNU hash table.
unsafe fn gnu_hash_count(t: *const u32) -> usize {
    // SAFETY: the table's documented layout: nbuckets, symoffset,
    // bloom size (in 64-bit words), bloom shift, bloom, buckets, chains.
    unsafe {
        let (nbuckets, symoffset, bloom) = (*t as usize, *t.add(1) as usize, *t.add(2) as usize);
        let buckets = t.add(4 + bloom * 2);
        let last = (0..nbuckets).rev().map(|i| *buckets.add(i) as usize).find(|b| *b != 0);
        let Some(mut i) = last else { return symoffset };
        if i < symoffset {
            return symoffset;
        }
        let chains = buckets.add(nbuckets);
        while *chains.add(i - symoffset) & 1 == 0 {
            i += 1;
        }
        i + 1
    }
}

/// The [start, end) of an object's link set `name`, if it has one of its
/// own (dlsym may answer with a dependency's).
fn link_set(o: &Object, handle: *mut c_void, name: &str) -> Option<(usize, usize)> {
    let sym = |which: &str| {
        let c = std::ffi::CString::new(format!("__{which}_link_set_{name}")).ok()?;
        // SAFETY: a live handle and a NUL-terminated name.
        let p = unsafe { libc::dlsym(handle, c.as_ptr()) } as usize;
        (p != 0).then_some(p)
    };
    let found = sym("start").zip(sym("stop")).filter(|&(start, stop)| o.contains(start) && stop >= start);
    found.or_else(|| section(o, &format!("link_set_{name}")))
}

/// The loaded [start, end) of section `name` of object `o`, from the
/// section headers of its file: a linker defines `__start_`/`__stop_`
/// symbols only for sections the object itself refers to by them, so a
/// component library's own link sets often have none (binutils 2.40).
fn section(o: &Object, name: &str) -> Option<(usize, usize)> {
    let elf = std::fs::read(&o.name).ok()?;
    let u16_at = |at: usize| elf.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32_at = |at: usize| elf.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
    let u64_at = |at: usize| elf.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize);
    if elf.get(..5) != Some(b"\x7fELF\x02") {
        return None;
    }
    let (shoff, shentsize, shnum, shstrndx) = (u64_at(0x28)?, u16_at(0x3a)?, u16_at(0x3c)?, u16_at(0x3e)?);
    let header = |i: usize| shoff.checked_add(i.checked_mul(shentsize)?);
    let names = u64_at(header(shstrndx)? + 0x18)?;
    (0..shnum).find_map(|i| {
        let h = header(i)?;
        let at = names.checked_add(u32_at(h)?)?;
        let end = at + elf.get(at..)?.iter().position(|&b| b == 0)?;
        if &elf[at..end] != name.as_bytes() {
            return None;
        }
        let (addr, size) = (u64_at(h + 0x10)?, u64_at(h + 0x20)?);
        let start = o.base.checked_add(addr)?;
        (o.contains(start) && size > 0).then_some((start, start + size))
    })
}

fn kernel_object(objects: &[Object]) -> Option<usize> {
    // SAFETY: a lookup in the global scope.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"rump_init".as_ptr()) } as usize;
    (p != 0).then(|| objects.iter().position(|o| o.contains(p))).flatten()
}

/// Hands the rump kernel the modules, components and symbols of the
/// loaded objects it cannot see itself (see the module documentation).
#[no_mangle]
pub extern "C" fn rumpuser_dl_bootstrap(
    domodinit: h::rump_modinit_fn,
    symload: h::rump_symload_fn,
    compload: h::rump_compload_fn,
) {
    let objects = loaded_objects();
    let kernel = kernel_object(&objects);
    let mut sets: Vec<(usize, usize, usize, usize)> = Vec::new(); // modules, components

    // The main program (first object), through the linker's own bounds.
    if kernel != Some(0) {
        let (mut m, mut nm, mut c, mut nc) = (core::ptr::null(), 0, core::ptr::null(), 0);
        // SAFETY: the shim writes four values.
        unsafe { rumpglue_main_link_sets(&mut m, &mut nm, &mut c, &mut nc) };
        let ptr = core::mem::size_of::<*const c_void>();
        sets.push((m as usize, m as usize + nm * ptr, c as usize, c as usize + nc * ptr));
    }

    let (mut syms, mut strs) = (Vec::new(), Vec::new());
    for (i, o) in objects.iter().enumerate().skip(1) {
        if !o.name.contains("librump") {
            continue;
        }
        collect_symbols(o, &mut syms, &mut strs);
        if Some(i) == kernel {
            continue;
        }
        let Ok(cname) = std::ffi::CString::new(o.name.clone()) else { continue };
        // SAFETY: taking another reference to an object already loaded.
        let handle = unsafe { libc::dlopen(cname.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD) };
        if handle.is_null() {
            continue;
        }
        let m = link_set(o, handle, "modules").unwrap_or((0, 0));
        let c = link_set(o, handle, "rump_components").unwrap_or((0, 0));
        sets.push((m.0, m.1, c.0, c.1));
        // SAFETY: the reference taken above.
        unsafe { libc::dlclose(handle) };
    }

    if let (Some(load), false) = (symload, syms.is_empty()) {
        // The kernel keeps the tables: they are leaked on purpose.
        let syms = Box::leak(syms.into_boxed_slice());
        let strs = Box::leak(strs.into_boxed_slice());
        // SAFETY: the kernel's callback, with tables it may keep.
        unsafe {
            load(
                syms.as_mut_ptr().cast(),
                core::mem::size_of_val(syms) as u64,
                strs.as_mut_ptr().cast(),
                strs.len() as u64,
            )
        };
    }
    for (ms, me, cs, ce) in sets {
        let nmods = (me - ms) / core::mem::size_of::<*const modinfo>();
        if let (Some(init), true) = (domodinit, nmods > 0) {
            // SAFETY: a link set of modinfo pointers of a loaded object.
            unsafe { init(ms as *const *const modinfo, nmods) };
        }
        if let Some(load) = compload {
            let mut p = cs as *const *const rump_component;
            while (p as usize) < ce {
                // SAFETY: inside a link set of component pointers.
                unsafe {
                    load(*p);
                    p = p.add(1);
                }
            }
        }
    }
}

/// The write end of the pipe to the waiting parent, between
/// `rumpuser_daemonize_begin` and `_done`.
static DAEMON_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Detaches into the background: the process forks, the parent waits for
/// `rumpuser_daemonize_done` and exits with the error it reports (0: the
/// daemon is up), the child carries on in a new session.
#[no_mangle]
pub extern "C" fn rumpuser_daemonize_begin() -> c_int {
    let mut fds = [0; 2];
    // SAFETY: a fresh pipe.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return errno::last();
    }
    // SAFETY: fork; the parent only waits on the pipe and exits.
    match unsafe { libc::fork() } {
        -1 => {
            let e = errno::last();
            // SAFETY: our descriptors.
            unsafe {
                libc::close(fds[0]);
                libc::close(fds[1]);
            }
            e
        }
        0 => {
            // SAFETY: our descriptors; setsid in the new child.
            unsafe {
                libc::close(fds[0]);
                libc::setsid();
            }
            DAEMON_PIPE.store(fds[1], std::sync::atomic::Ordering::SeqCst);
            0
        }
        _ => {
            // SAFETY: our descriptor and buffer.
            unsafe { libc::close(fds[1]) };
            let mut e = [0u8; 4];
            // SAFETY: reading into a 4-byte buffer.
            let n = unsafe { libc::read(fds[0], e.as_mut_ptr().cast(), 4) };
            // The child died before reporting: that is a failure too.
            let status = if n == 4 { i32::from_ne_bytes(e).clamp(0, 255) } else { 1 };
            // SAFETY: leaving without running the parent's atexit handlers
            // or flushing buffers the child also holds.
            unsafe { libc::_exit(status) }
        }
    }
}

/// Tells the waiting parent how start-up went (0: fine).
#[no_mangle]
pub extern "C" fn rumpuser_daemonize_done(error: c_int) -> c_int {
    let fd = DAEMON_PIPE.swap(-1, std::sync::atomic::Ordering::SeqCst);
    if fd < 0 {
        return errno::EINVAL;
    }
    let b = error.to_ne_bytes();
    // SAFETY: our pipe's write end, written once and closed.
    let n = unsafe { libc::write(fd, b.as_ptr().cast(), 4) };
    // SAFETY: as above.
    unsafe { libc::close(fd) };
    if n == 4 {
        0
    } else {
        errno::last()
    }
}
