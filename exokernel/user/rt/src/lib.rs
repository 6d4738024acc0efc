//! The runtime every bare-metal ExoV6 program links.
//!
//! It provides the entry point (`_start`, which sets up the heap from the
//! start-up block and calls the program's `main`), typed wrappers for the
//! system calls, a global allocator, `print!`/`println!` on the console
//! capability, and a panic handler that reports and exits with code 101.
//!
//! A program:
//! ```ignore
//! #![no_std]
//! #![no_main]
//! exo_rt::entry!(main);
//! fn main(args: &str) -> i32 { exo_rt::println!("hi {args}"); 0 }
//! ```
#![no_std]
#![warn(missing_docs)]

extern crate alloc;

pub mod caps;
mod heap;
pub mod io;
pub mod mem;
pub mod port;
pub mod sync;
pub mod sys;
pub mod thread;
pub mod tls;

pub use exo_abi as abi;
#[allow(unused_imports)] // linked for memcpy & co.
use exo_freestanding as _;
pub use heap::free as heap_free;
pub use heap::size as heap_size;

use exo_abi::StartInfo;

core::arch::global_asm!(
    r#"
    .section .text.entry, "ax"
    .global _start
_start:
    xor ebp, ebp
    call {start}
    ud2
    "#,
    start = sym rt_start,
);

extern "Rust" {
    /// The program's main function, named by [`entry!`].
    fn __exo_main(args: &str) -> i32;
}

static GENERATION: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// How many times the supervisor started this program before this
/// instance (0 for the first).
pub fn generation() -> u64 {
    GENERATION.load(core::sync::atomic::Ordering::Relaxed)
}

/// The names of the endpoints this program was given, comma-separated,
/// the first at [`abi::slot::FIRST_ENDPOINT`] (from the start-up text; it
/// stays in the top page of the first stack for the process's life).
static ENDPOINT_NAMES: sync::SpinLock<&'static str> = sync::SpinLock::new("");

/// The directory this program was started in (`/` unless the one who
/// started it said).
static CWD: sync::SpinLock<&'static str> = sync::SpinLock::new("/");

/// The environment this program was started with (`NAME=VALUE` lines).
static ENV: sync::SpinLock<&'static str> = sync::SpinLock::new("");

/// The environment this program was started with: `(NAME, VALUE)` pairs
/// (from the process service; manifest programs have none).
pub fn start_env() -> impl Iterator<Item = (&'static str, &'static str)> {
    let env = *ENV.lock();
    env.lines().filter_map(|l| l.split_once('=')).filter(|(n, _)| !n.is_empty())
}

/// The directory this program was started in: `/` unless the process
/// service was given one (the shell gives its own).
pub fn start_dir() -> &'static str {
    *CWD.lock()
}

/// The endpoint this program was given under `name` (its manifest
/// entry's `endpoints`, or those a process service passed on), if any.
pub fn endpoint(name: &str) -> Option<caps::Endpoint> {
    let names = *ENDPOINT_NAMES.lock();
    let i = names.split(',').position(|n| !n.is_empty() && n == name)?;
    Some(caps::Endpoint::from_slot(abi::slot::FIRST_ENDPOINT + i as u64))
}

/// The names of every endpoint this program was given, in slot order.
pub fn endpoint_names() -> impl Iterator<Item = &'static str> {
    let names = *ENDPOINT_NAMES.lock();
    names.split(',').filter(|n| !n.is_empty())
}

/// Runs in the new process with `rdi` = address of its [`StartInfo`].
extern "C" fn rt_start(info: *const [u8; StartInfo::SIZE]) -> ! {
    // SAFETY: the parent (root task or kernel) wrote the start-up block at
    // this address in our stack before starting us.
    let info = StartInfo::from_bytes(unsafe { &*info });
    GENERATION.store(info.generation, core::sync::atomic::Ordering::Relaxed);
    heap::init(info.heap_base, info.heap_len, info.heap_max);
    if tls::init(info.tls).is_err() {
        println!("exo-rt: no memory for the first thread's thread-local storage");
        sys::exit(101);
    }
    run_constructors();
    let args = if info.args_len == 0 {
        ""
    } else {
        // SAFETY: the parent placed `args_len` bytes of args at `args_ptr`
        // in our stack; invalid UTF-8 is replaced below.
        let bytes = unsafe { core::slice::from_raw_parts(info.args_ptr as *const u8, info.args_len as usize) };
        core::str::from_utf8(bytes).unwrap_or("")
    };
    // After a NUL: the names of the endpoints the program was given;
    // after another, its working directory; after another, its
    // environment.
    let mut parts = args.split('\0');
    let args = parts.next().unwrap_or("");
    *ENDPOINT_NAMES.lock() = parts.next().unwrap_or("");
    *CWD.lock() = parts.next().filter(|d| d.starts_with('/')).unwrap_or("/");
    *ENV.lock() = parts.next().unwrap_or("");
    // SAFETY: `entry!` defines `__exo_main` with this signature.
    let code = unsafe { __exo_main(args) };
    sys::exit(code as u32)
}

extern "C" {
    /// The bounds of `.init_array` (user.ld).
    static __init_array_start: [Option<extern "C" fn()>; 0];
    static __init_array_end: [Option<extern "C" fn()>; 0];
}

/// Calls the program's constructors (`.init_array`, in link order), as a
/// C runtime does before `main`: C code's `__attribute__((constructor))`
/// functions, a rump kernel's module constructors.
fn run_constructors() {
    // SAFETY: user.ld places both symbols around `.init_array`, an array
    // of function pointers the linker filled.
    let (start, end) = unsafe { (__init_array_start.as_ptr(), __init_array_end.as_ptr()) };
    let n = (end as usize - start as usize) / core::mem::size_of::<Option<extern "C" fn()>>();
    // SAFETY: `n` entries lie between the bounds.
    for f in unsafe { core::slice::from_raw_parts(start, n) }.iter().flatten() {
        f();
    }
}

/// Declares the program's main function: `fn main(args: &str) -> i32`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[no_mangle]
        fn __exo_main(args: &str) -> i32 {
            let f: fn(&str) -> i32 = $main;
            f(args)
        }
    };
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    eprintln!("panic: {}", info);
    sys::exit(101)
}
