//! Starts the root task: the one user process the kernel creates itself.
//!
//! The kernel reads just enough of the boot image to find the program
//! named `root` and load it; the manifest and every other program are the
//! root task's business. The kernel command line (QEMU's `-append`) is
//! the root task's argument string.

use crate::arch::trap::TrapFrame;
use crate::kernel::Kernel;
use crate::mm::{copy_to_phys, phys_to_virt};
use crate::object::{MemObject, Object, ProcId};
use alloc::string::String;
use alloc::vec::Vec;
use exo_abi::{map_flags, slot, Rights, StartInfo, HEAP_BASE, PAGE_SIZE, STACK_TOP, USER_END, USER_START};
use exo_kcore::lattice::Label;
use exo_kcore::sched::{Params, DEFAULT_WEIGHT, SUPERVISOR_PRIORITY};

/// The root task's process: the first one made.
pub const ROOT: ProcId = ProcId(0);

/// The root task runs above every program it starts (it is their
/// supervisor: a death must reach it at once).
const SUPERVISOR: Params = Params { priority: SUPERVISOR_PRIORITY, weight: DEFAULT_WEIGHT };

/// Stack of the root task.
const ROOT_STACK_PAGES: u64 = 16;
/// The root task's heap: its first megabyte mapped at the start, the
/// rest mapped by its allocator from its budget as it grows (`exo-rt`),
/// so that no memory it may never use is zeroed during the boot.
const ROOT_HEAP_PAGES: u64 = 256;
const ROOT_HEAP_MAX_PAGES: u64 = 1024;

fn pages_for(bytes: u64) -> u64 {
    bytes.div_ceil(PAGE_SIZE)
}

/// Loads `root` from the boot image at physical `[start, start + size)`
/// and gives it the initial capabilities; `cmdline` becomes its argument
/// string. Errors are fatal boot errors.
pub fn start_root(
    k: &mut Kernel,
    untyped: u32,
    image_start: u64,
    image_size: u64,
    cmdline: &[u8],
) -> Result<ProcId, String> {
    if !image_start.is_multiple_of(PAGE_SIZE) {
        return Err(alloc::format!("boot image at {image_start:#x} is not page aligned"));
    }
    // SAFETY: the boot loader placed the module there; its frames are
    // reserved in the frame allocator and never written by the kernel.
    let bytes = unsafe { core::slice::from_raw_parts(phys_to_virt(image_start) as *const u8, image_size as usize) };
    let image = exo_bootimg::BootImage::parse(bytes).map_err(|e| alloc::format!("boot image: {e}"))?;
    let root = image.find("root").ok_or("boot image has no program named `root`")?;
    let plan = exo_elf::plan(root.data, USER_START, USER_END).map_err(|e| alloc::format!("root: {e}"))?;

    let p = k
        .create_process(String::from("root"), None, Label::ROOT, SUPERVISOR)
        .map_err(|e| alloc::format!("root process: {e:?}"))?;
    for seg in &plan.segments {
        let va = seg.vaddr & !(PAGE_SIZE - 1);
        let offset_in_page = seg.vaddr - va;
        let pages = pages_for(offset_in_page + seg.mem_size);
        let m = k.new_memory(Some(untyped), pages, false).map_err(|e| alloc::format!("root segment: {e:?}"))?;
        let frames = k.mems[m.0 as usize].as_ref().expect("new").frames.clone();
        let data = &root.data[seg.file_offset as usize..(seg.file_offset + seg.file_size) as usize];
        copy_into_frames(&frames, offset_in_page, data);
        let mut flags = map_flags::READ;
        if seg.writable {
            flags |= map_flags::WRITE;
        }
        if seg.executable {
            flags |= map_flags::EXECUTE;
        }
        k.map(p, m, va, flags, None).map_err(|e| alloc::format!("root segment map: {e:?}"))?;
        k.mem_unref(m); // the mapping holds the only reference now
    }

    // Heap and stack; the start-up block sits at the top of the stack.
    let heap = k.new_memory(Some(untyped), ROOT_HEAP_PAGES, false).map_err(|e| alloc::format!("root heap: {e:?}"))?;
    k.map(p, heap, HEAP_BASE, map_flags::READ | map_flags::WRITE, None)
        .map_err(|e| alloc::format!("root heap map: {e:?}"))?;
    k.mem_unref(heap);
    let stack =
        k.new_memory(Some(untyped), ROOT_STACK_PAGES, false).map_err(|e| alloc::format!("root stack: {e:?}"))?;
    let stack_base = STACK_TOP - ROOT_STACK_PAGES * PAGE_SIZE;
    k.map(p, stack, stack_base, map_flags::READ | map_flags::WRITE, None)
        .map_err(|e| alloc::format!("root stack map: {e:?}"))?;
    let info_va = STACK_TOP - StartInfo::SIZE as u64;
    // The command line just below the start-up block, in the same (top)
    // page: it is at most CMDLINE_MAX bytes, and UTF-8 is the root task's
    // to check.
    const _: () = assert!(crate::pvh::CMDLINE_MAX + StartInfo::SIZE <= PAGE_SIZE as usize);
    let args_va = (info_va - cmdline.len() as u64) & !0xf;
    let info = StartInfo {
        heap_base: HEAP_BASE,
        heap_len: ROOT_HEAP_PAGES * PAGE_SIZE,
        args_ptr: if cmdline.is_empty() { 0 } else { args_va },
        args_len: cmdline.len() as u64,
        generation: 0,
        tls: plan.tls.map_or([0; 4], |t| [t.vaddr, t.file_size, t.mem_size, t.align]),
        heap_max: ROOT_HEAP_MAX_PAGES * PAGE_SIZE,
    };
    let top_frame = *k.mems[stack.0 as usize].as_ref().expect("new").frames.last().expect("pages");
    copy_to_phys(top_frame + PAGE_SIZE - StartInfo::SIZE as u64, &info.to_bytes());
    copy_to_phys(top_frame + PAGE_SIZE - (STACK_TOP - args_va), cmdline);
    k.mem_unref(stack);

    // The boot image as a read-only memory object the kernel does not own.
    let frames: Vec<u64> = (0..pages_for(image_size)).map(|i| image_start + i * PAGE_SIZE).collect();
    let generation = k.fresh_generation();
    let image_mem = k.insert_memory(MemObject { frames, refs: 0, untyped: None, generation, device: false });
    let caps = [
        (slot::CONSOLE, Object::Console, Rights::ALL),
        (slot::UNTYPED, Object::Untyped(untyped), Rights::ALL),
        (slot::BOOT_IMAGE, Object::Memory(image_mem), Rights(Rights::READ.0 | Rights::GRANT.0)),
        (slot::POWER, Object::Power, Rights::ALL),
        (slot::PCI, Object::PciBus, Rights::ALL),
        (slot::PLATFORM, Object::Platform, Rights::ALL),
    ];
    for (s, object, rights) in caps {
        k.install_cap(p, Some(s), object, rights, Label::ROOT, None).expect("fresh table");
    }

    // `_start` expects a 16-byte aligned stack (as at ELF process entry).
    let rsp = args_va & !0xf;
    k.create_thread(p, TrapFrame::new_user(plan.entry, rsp, info_va))
        .map_err(|e| alloc::format!("root thread: {e:?}"))?;
    Ok(p)
}

/// Copies `data` into consecutive frames starting `offset` bytes into the
/// first one.
fn copy_into_frames(frames: &[u64], offset: u64, data: &[u8]) {
    let mut pos = offset;
    let mut rest = data;
    while !rest.is_empty() {
        let frame = frames[(pos / PAGE_SIZE) as usize];
        let in_page = pos % PAGE_SIZE;
        let n = rest.len().min((PAGE_SIZE - in_page) as usize);
        copy_to_phys(frame + in_page, &rest[..n]);
        rest = &rest[n..];
        pos += n as u64;
    }
}
