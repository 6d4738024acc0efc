//! Kernel logic that does not touch the CPU, so it is tested on the host:
//! the physical frame allocator, the x86_64 page-table mapper (over an
//! abstract physical memory) and the capability table.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod captable;
pub mod frame;
pub mod paging;
