//! Out of memory, reported as such.
//!
//! The server runs under a memory limit (RLIMIT_AS), and a hostile image
//! can make it ask for more (a symlink claiming 4 GiB, a directory that
//! never ends). Rust's default reaction to a failed allocation asks the
//! kernel for more than the sandbox allows (the working directory, for a
//! backtrace) and the server would die of SIGSYS, as if it had broken
//! out. This allocator forwards to the system's; when an allocation
//! fails it writes one line, [`MARKER`] and the size, to standard error
//! with a single `write` and aborts (SIGABRT, which the sandbox allows).
//! The client recognises the line ([`Relay`](crate::client)) and reports
//! the server out of memory.
//!
//! Every allocation failure aborts, those of fallible calls
//! (`try_reserve`) too: the stable `GlobalAlloc` cannot tell them apart.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

/// What the line says, after the program's name.
pub const MARKER: &str = "out of memory (";

/// Set in the server process: its messages say `exo-fs-server`.
static SERVER: AtomicBool = AtomicBool::new(false);

/// Marks this process as the server, for the name in the message.
pub fn set_server() {
    SERVER.store(true, Ordering::Relaxed);
}

/// The system allocator, aborting with a one-line report when it fails.
pub struct ReportingAlloc;

#[global_allocator]
static ALLOC: ReportingAlloc = ReportingAlloc;

/// Writes `<name>: out of memory (N bytes)` to standard error in one
/// `write` (allocating nothing) and aborts.
#[cold]
fn out_of_memory(size: usize) -> ! {
    let mut line = [0u8; 96];
    let mut n = 0;
    let name: &[u8] = if SERVER.load(Ordering::Relaxed) { b"exo-fs-server: " } else { b"exo-img: " };
    for part in [name, MARKER.as_bytes()] {
        line[n..n + part.len()].copy_from_slice(part);
        n += part.len();
    }
    let mut digits = [0u8; 20];
    let mut k = digits.len();
    let mut v = size;
    loop {
        k -= 1;
        digits[k] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let tail = b" bytes)\n";
    for part in [&digits[k..], &tail[..]] {
        line[n..n + part.len()].copy_from_slice(part);
        n += part.len();
    }
    // SAFETY: writes `n` initialised bytes of `line` to descriptor 2; a
    // failure (no standard error) is of no consequence.
    unsafe {
        libc::write(2, line.as_ptr().cast(), n);
    }
    std::process::abort()
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees hold; on failure it does not return.
unsafe impl GlobalAlloc for ReportingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc_zeroed` is passed on.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract for `realloc` is passed on.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            out_of_memory(new_size);
        }
        p
    }
}

/// Whether `text` (a server's last messages) holds the out-of-memory line.
pub fn reported_in(text: &[u8]) -> bool {
    let marker = [b"exo-fs-server: ".as_slice(), MARKER.as_bytes()].concat();
    text.windows(marker.len()).any(|w| w == marker.as_slice())
}
