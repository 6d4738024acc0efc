//! Builds a process from an ELF file in the boot image: memory for every
//! segment, a heap, a stack with the start-up block, the granted
//! capabilities, and a first thread.

use alloc::string::String;
use exo_abi::{map_flags, slot, Error, Rights, StartInfo, HEAP_BASE, PAGE_SIZE, STACK_TOP, USER_END, USER_START};
use exo_manifest::{CapGrant, Program};
use exo_rt::caps::{self, Endpoint, Memory, PciBus, Process, Untyped};
use exo_rt::mem::Mapping;
use exo_rt::println;

/// Pages of every program's stack.
const STACK_PAGES: u64 = 16;
/// Where the root task maps memory briefly to fill it.
const SCRATCH_VA: u64 = 0x0000_3000_0000_0000;

/// Why a program could not be started.
pub enum StartError {
    /// Its binary is not in the boot image.
    NoBinary(String),
    /// Its binary is not a loadable ELF file.
    BadElf(exo_elf::ElfError),
    /// A system call failed.
    Kernel(&'static str, Error),
    /// The arguments do not fit in the stack page.
    ArgsTooLong,
    /// The manifest gives it a device the machine does not have (or has
    /// given every one of that kind to other programs).
    NoDevice(&'static str),
    /// Its budget could not be carved out: the root task keeps
    /// [`RESERVE_PAGES`] for restarts.
    NoBudget,
}

/// What a program may do with an endpoint it is given: all but close it.
const ENDPOINT_RIGHTS: Rights = Rights(Rights::ALL.0 & !Rights::CONTROL.0);

/// Pages the root task keeps for itself when it hands out budgets: what
/// restarting programs takes (their memory is paid from it).
pub const RESERVE_PAGES: u64 = 4096;

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            StartError::NoBinary(b) => write!(f, "boot image has no binary `{b}`"),
            StartError::BadElf(e) => write!(f, "bad ELF file: {e}"),
            StartError::Kernel(what, e) => write!(f, "{what}: {}", e.name()),
            StartError::ArgsTooLong => write!(f, "arguments longer than a page"),
            StartError::NoDevice(d) => write!(f, "no {d} device left to give it"),
            StartError::NoBudget => write!(
                f,
                "no room for its budget (`memory`, `kernel`): the root task keeps {} MiB for restarts",
                (RESERVE_PAGES * PAGE_SIZE) >> 20
            ),
        }
    }
}

/// What writes a region's first contents, through a scratch mapping.
type Fill<'a> = &'a mut dyn FnMut(&mut [u8]);

fn k(what: &'static str) -> impl FnOnce(Error) -> StartError {
    move |e| StartError::Kernel(what, e)
}

/// Allocates `pages`, lets `fill` write them through a scratch mapping
/// (none when `fill` is `None`: the kernel hands memory out zeroed), then
/// maps them into `child` at `va` with `flags`. The root task keeps no
/// capability to the memory afterwards; the child's mapping holds it.
fn place(
    untyped: Untyped,
    child: Process,
    va: u64,
    pages: u64,
    flags: u64,
    fill: Option<Fill>,
) -> Result<(), StartError> {
    let mem: Memory = untyped.alloc(pages).map_err(k("allocate memory"))?;
    let result = (|| {
        if let Some(fill) = fill {
            let mut scratch =
                Mapping::new(mem, SCRATCH_VA, map_flags::READ | map_flags::WRITE).map_err(k("map scratch"))?;
            fill(scratch.as_mut_slice());
            drop(scratch); // unmapped; the capability stays ours until below
        }
        child.map(mem, va, flags).map_err(k("map into child"))
    })();
    let _ = caps::delete(mem.slot());
    result
}

/// The endpoints named in a manifest, created by the root task.
pub type Endpoints = alloc::vec::Vec<(String, Endpoint)>;

/// Creates one endpoint for every name any program lists.
pub fn create_endpoints(manifest: &exo_manifest::Manifest, untyped: Untyped) -> Result<Endpoints, StartError> {
    let mut out: Endpoints = alloc::vec::Vec::new();
    for name in manifest.programs.iter().flat_map(|p| p.endpoints.iter()) {
        if !out.iter().any(|(n, _)| n == name) {
            out.push((name.clone(), untyped.create_endpoint().map_err(k("create endpoint"))?));
        }
    }
    Ok(out)
}

/// The PCI bus and what is on it, for programs that drive devices.
pub struct Hardware<'a> {
    /// The bus capability.
    pub bus: PciBus,
    /// The functions found, and which are taken.
    pub functions: &'a mut [crate::pci::Function],
    /// The functions this program was given before (a restart gets the
    /// same ones again); empty the first time.
    pub assigned: &'a mut alloc::vec::Vec<u16>,
}

/// Pages for page tables on top of a program's memory in its budget.
const TABLE_PAGES: u64 = 24;
/// Kernel memory in every program's budget: its process (with its
/// capability table), a few threads, mappings and memory records.
pub const BASE_KERNEL: u64 = 64 * 1024;

/// The pages segment `seg` is mapped in (from the page its start is in).
fn segment_pages(seg: &exo_elf::Segment) -> u64 {
    ((seg.vaddr & (PAGE_SIZE - 1)) + seg.mem_size).div_ceil(PAGE_SIZE)
}

/// The pages `program` takes when loaded: segments, heap, stack, and
/// room for their page tables.
pub fn pages_needed(image: &exo_bootimg::BootImage, program: &Program) -> Result<u64, StartError> {
    let elf = image.find(&program.binary).ok_or_else(|| StartError::NoBinary(program.binary.clone()))?;
    let plan = exo_elf::plan(elf.data, USER_START, USER_END).map_err(StartError::BadElf)?;
    let segments: u64 = plan.segments.iter().map(segment_pages).sum();
    Ok(segments + program.heap / PAGE_SIZE + STACK_PAGES + TABLE_PAGES)
}

/// Creates and starts `program`, everything paid from its own `budget`
/// (which it also gets as its `untyped` capability if its entry grants
/// that); its endpoints carry `badge`.
#[allow(clippy::too_many_arguments)]
pub fn start(
    image: &exo_bootimg::BootImage,
    program: &Program,
    budget: Untyped,
    endpoints: &Endpoints,
    badge: u64,
    hardware: Hardware,
    generation: u64,
    grants: &mut Option<Grants>,
) -> Result<Process, StartError> {
    let untyped = budget;
    let elf = image.find(&program.binary).ok_or_else(|| StartError::NoBinary(program.binary.clone()))?;
    let plan = exo_elf::plan(elf.data, USER_START, USER_END).map_err(StartError::BadElf)?;
    if start_text(program).len() as u64 > PAGE_SIZE - StartInfo::SIZE as u64 - 64 {
        return Err(StartError::ArgsTooLong);
    }
    if grants.is_none() {
        *grants = Some(first_grants(program, untyped, endpoints, badge, hardware)?);
    }
    let grants = grants.as_ref().expect("made above");
    let child = untyped.create_process(&program.name, program.label.encode()).map_err(k("create process"))?;
    let result = build(elf.data, &plan, program, untyped, child, generation)
        .and_then(|_| give_grants(program, child, grants, generation))
        .and_then(|_| child.set_schedule(program.priority, program.weight).map_err(k("set schedule")))
        .and_then(|_| child.spawn_thread(plan.entry, initial_rsp(program), info_va()).map_err(k("start thread")));
    if result.is_err() {
        let _ = caps::delete(child.slot());
    }
    result.map(|_| child)
}

fn build(
    data: &[u8],
    plan: &exo_elf::LoadPlan,
    program: &Program,
    untyped: Untyped,
    child: Process,
    generation: u64,
) -> Result<(), StartError> {
    for seg in &plan.segments {
        let va = seg.vaddr & !(PAGE_SIZE - 1);
        let skip = (seg.vaddr - va) as usize;
        let pages = segment_pages(seg);
        let bytes = &data[seg.file_offset as usize..(seg.file_offset + seg.file_size) as usize];
        let mut flags = map_flags::READ;
        if seg.writable {
            flags |= map_flags::WRITE;
        }
        if seg.executable {
            flags |= map_flags::EXECUTE;
        }
        place(untyped, child, va, pages, flags, Some(&mut |buf| buf[skip..skip + bytes.len()].copy_from_slice(bytes)))?;
    }
    // The heap needs no writing: mapped straight into the child. A program
    // that holds its budget gets its first megabyte now and maps the rest
    // as it needs it (`exo_rt`'s allocator): memory the kernel zeroes is
    // memory the host has to give QEMU first, and a 32 MiB heap took up to
    // 100 ms of the boot under TCG.
    let heap_len = first_heap(program);
    place(untyped, child, HEAP_BASE, heap_len / PAGE_SIZE, map_flags::READ | map_flags::WRITE, None)?;

    // Stack: the args and the start-up block sit in the top page.
    let stack_base = STACK_TOP - STACK_PAGES * PAGE_SIZE;
    let text = start_text(program);
    let args = text.as_bytes();
    let info_va = info_va();
    let args_va = args_va(program);
    let info = StartInfo {
        heap_base: HEAP_BASE,
        heap_len,
        heap_max: program.heap,
        args_ptr: args_va,
        args_len: args.len() as u64,
        generation,
        tls: plan.tls.map_or([0; 4], |t| [t.vaddr, t.file_size, t.mem_size, t.align]),
    };
    let mut start_block = |buf: &mut [u8]| {
        let off = |va: u64| (va - stack_base) as usize;
        buf[off(info_va)..off(info_va) + StartInfo::SIZE].copy_from_slice(&info.to_bytes());
        buf[off(args_va)..off(args_va) + args.len()].copy_from_slice(args);
    };
    place(untyped, child, stack_base, STACK_PAGES, map_flags::READ | map_flags::WRITE, Some(&mut start_block))?;
    Ok(())
}

/// The heap a program holding its own budget starts with; it maps the
/// rest of its `heap` itself, as it needs it.
const FIRST_HEAP: u64 = 1 << 20;

/// The bytes of `program`'s heap mapped before it starts: all of it,
/// unless it holds its budget (its `untyped` capability) to map the rest.
fn first_heap(program: &Program) -> u64 {
    let holds_budget = program.caps.iter().any(|c| matches!(c, CapGrant::Untyped));
    if holds_budget {
        program.heap.min(FIRST_HEAP)
    } else {
        program.heap
    }
}

/// Where the start-up block sits: the top of the stack.
fn info_va() -> u64 {
    STACK_TOP - StartInfo::SIZE as u64
}

/// What the program reads at start: its arguments, after a NUL the
/// names of its endpoints (`exo_rt::endpoint` finds one by name), after
/// another its working directory, and after another its environment, if
/// it was given them.
fn start_text(program: &Program) -> alloc::string::String {
    let cwd = if program.cwd.is_empty() { "/" } else { &program.cwd };
    match (program.endpoints.is_empty(), program.cwd.is_empty(), program.env.is_empty()) {
        (true, true, true) => program.args.clone(),
        (_, true, true) => alloc::format!("{}\0{}", program.args, program.endpoints.join(",")),
        (_, _, true) => alloc::format!("{}\0{}\0{cwd}", program.args, program.endpoints.join(",")),
        (_, _, false) => {
            alloc::format!("{}\0{}\0{cwd}\0{}", program.args, program.endpoints.join(","), program.env)
        }
    }
}

/// Where the start-up text sits: just below the start-up block.
fn args_va(program: &Program) -> u64 {
    (info_va() - start_text(program).len() as u64) & !0xf
}

/// The first thread's stack pointer: 16-byte aligned below the arguments,
/// as `_start` expects.
fn initial_rsp(program: &Program) -> u64 {
    args_va(program) & !0xf
}

/// One capability a program is given, kept by the root task as a sealed
/// token (HMAC-SHA256 under the kernel's boot key) of its own copy: every
/// restart gets exactly what the first start got, restored from the token,
/// and a revocation of the root task's original (which removes the copy
/// the token names) reaches every later instance too: the token then no
/// longer unseals, and the capability is not given again.
pub struct Granted {
    /// Where the program finds it.
    dst: u64,
    /// What it may do with it.
    rights: Rights,
    /// The root task's copy, sealed.
    token: caps::SealedToken,
    /// Where the root task holds that copy (the token names it).
    held: u64,
    /// What it is, for reports.
    what: String,
}

/// Everything a program is given, in slot order.
pub type Grants = alloc::vec::Vec<Granted>;

/// Lets go of the root task's copies behind `grants` (a program that will
/// not be started again): their slots are free, and what they held (a
/// budget split for the program) can go back.
pub fn release(grants: Grants) {
    for g in grants {
        let _ = caps::delete(g.held);
    }
}

/// What a program's capabilities are at its first start: its manifest
/// entry's `caps`, its supervisor notification, its endpoints (minted
/// with `badge`, every right but `CONTROL`: closing an endpoint is the
/// root task's) in manifest order from `ENDPOINT_SLOT_BASE`, and one PCI
/// function of each kind of device it lists from `DEVICE_SLOT_BASE`
/// (configuration read and write, no grant). Each is derived from the
/// root task's capability into a slot of its own, with the program's label
/// (and `GRANT`, which sealing needs; the program gets only `rights`), and
/// sealed.
fn first_grants(
    program: &Program,
    untyped: Untyped,
    endpoints: &Endpoints,
    badge: u64,
    hw: Hardware,
) -> Result<Grants, StartError> {
    let mut out = Grants::new();
    let label = Some(program.label.encode());
    let mut keep = |src: u64, dst: u64, rights: Rights, badge: Option<u64>, what: String| {
        let me = Process::from_slot(slot::SELF);
        let mine = me.give(src, None, rights.union(Rights::GRANT), label, badge).map_err(k("copy capability"))?;
        let token = caps::seal(mine, 0, dst).map_err(k("seal capability"))?;
        out.push(Granted { dst, rights, token, held: mine, what });
        Ok::<(), StartError>(())
    };
    for grant in &program.caps {
        match grant {
            CapGrant::Console => keep(slot::CONSOLE, slot::CONSOLE, Rights::WRITE, None, "console".into())?,
            CapGrant::Power => keep(slot::POWER, slot::POWER, Rights::WRITE, None, "power".into())?,
            CapGrant::Untyped => keep(untyped.slot(), slot::UNTYPED, Rights::ALL, None, "budget".into())?,
        }
    }
    let note = untyped.create_notification().map_err(k("create notification"))?;
    let all_but_control = Rights(Rights::ALL.0 & !Rights::CONTROL.0);
    keep(note.slot(), slot::SUPERVISOR, all_but_control, None, "supervisor notification".into())?;
    let _ = caps::delete(note.slot()); // the sealed copy holds it
    for (i, name) in program.endpoints.iter().enumerate() {
        let (_, ep) = endpoints.iter().find(|(n, _)| n == name).expect("created for every listed name");
        let dst = exo_manifest::ENDPOINT_SLOT_BASE + i as u64;
        keep(ep.slot(), dst, ENDPOINT_RIGHTS, Some(badge), alloc::format!("endpoint {name}"))?;
    }
    for (i, d) in program.devices.iter().enumerate() {
        let bdf = match hw.assigned.get(i) {
            Some(bdf) => *bdf,
            None => {
                let bdf = crate::pci::claim(hw.functions, *d).ok_or(StartError::NoDevice(d.name()))?;
                hw.assigned.push(bdf);
                bdf
            }
        };
        let f = hw.bus.open(bdf, None).map_err(k("open PCI function"))?;
        let dst = exo_manifest::DEVICE_SLOT_BASE + i as u64;
        let at = alloc::format!("{} at {:02x}:{:02x}.{}", d.name(), bdf >> 8, (bdf >> 3) & 31, bdf & 7);
        println!("root: {} drives {at}", program.name);
        keep(f.slot(), dst, Rights(Rights::READ.0 | Rights::WRITE.0), None, at)?;
        let _ = caps::delete(f.slot());
    }
    let platform = caps::Platform::from_slot(slot::PLATFORM);
    for (i, d) in program.legacy.iter().enumerate() {
        let (first, count, line) = d.resources();
        let base = exo_manifest::LEGACY_SLOT_BASE + 2 * i as u64;
        let rw = Rights(Rights::READ.0 | Rights::WRITE.0);
        let ports = platform.ioports(first, count, None).map_err(k("open I/O ports"))?;
        let what = alloc::format!("{} ports {first:#x}-{:#x}", d.name(), first + count - 1);
        keep(ports.slot(), base, rw, None, what)?;
        let _ = caps::delete(ports.slot());
        let irq = platform.irq_line(line, None).map_err(k("open interrupt line"))?;
        keep(irq.slot(), base + 1, rw, None, alloc::format!("{} interrupt line {line}", d.name()))?;
        let _ = caps::delete(irq.slot());
        println!(
            "root: {} drives {} (ports {first:#x}-{:#x}, interrupt line {line})",
            program.name,
            d.name(),
            first + count - 1
        );
    }
    Ok(out)
}

/// Gives `child` what `grants` record, each unsealed from its token into
/// a scratch slot, copied with the program's rights and dropped again. A
/// token that no longer unseals (its capability was revoked) is reported
/// and skipped: the program runs without it.
fn give_grants(program: &Program, child: Process, grants: &Grants, generation: u64) -> Result<(), StartError> {
    let mut restored = 0;
    for g in grants {
        let scratch = match caps::unseal(&g.token, None) {
            Ok(s) => s,
            Err(e) => {
                println!("root: {}: its {} was revoked ({}); not given again", program.name, g.what, e.name());
                continue;
            }
        };
        let given = child.give(scratch, Some(g.dst), g.rights, None, None);
        let _ = caps::delete(scratch);
        given.map_err(k("grant capability"))?;
        restored += 1;
    }
    if generation > 0 {
        println!("root: {}: {restored} capabilities restored from sealed tokens", program.name);
    }
    Ok(())
}

/// Signals `bits` on the supervisor notification recorded in `grants`
/// (through a scratch slot unsealed from its token).
pub fn signal_supervisor(grants: &Grants, bits: u64) -> Result<(), Error> {
    let g = grants.iter().find(|g| g.dst == slot::SUPERVISOR).ok_or(Error::InvalidCap)?;
    let scratch = caps::unseal(&g.token, None)?;
    let r = caps::Notification::from_slot(scratch).signal(bits);
    let _ = caps::delete(scratch);
    r
}
