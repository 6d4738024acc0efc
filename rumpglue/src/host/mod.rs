//! The Linux backend: each hypercall becomes Linux system calls. Used by
//! hosted mode and by the tests of everything written against rumpglue.

mod block;
mod sys;

pub use block::FileDevice;
pub use sys::{HostClock, HostConsole, HostMemory, HostRandom, HostThreads};

/// The host backend's hypercalls, ready to hand to a server.
pub fn host() -> crate::Host<'static> {
    static CLOCK: HostClock = HostClock;
    static CONSOLE: HostConsole = HostConsole;
    static RANDOM: HostRandom = HostRandom;
    static MEMORY: HostMemory = HostMemory;
    static THREADS: std::sync::OnceLock<HostThreads> = std::sync::OnceLock::new();
    crate::Host {
        clock: &CLOCK,
        console: &CONSOLE,
        random: &RANDOM,
        memory: &MEMORY,
        threads: THREADS.get_or_init(HostThreads::default),
    }
}
