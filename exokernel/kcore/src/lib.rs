//! Kernel logic that does not touch the CPU, so it is tested on the host:
//! the physical frame allocator, the x86_64 page-table mapper (over an
//! abstract physical memory), the capability table, the kernel's wait
//! queues, the capability derivation tree, the security lattice and the
//! rules of PCI configuration-space mediation.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod captable;
pub mod cdt;
pub mod fifo;
pub mod frame;
/// The security lattice lives in the ABI (user space names labels too).
pub use exo_abi::lattice;
pub mod paging;
pub mod pci;
pub mod sched;
pub mod time;
