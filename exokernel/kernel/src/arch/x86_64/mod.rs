//! x86_64: everything that touches the CPU directly lives below here.
pub mod apic;
pub mod boot;
pub mod cpu;
pub mod ioapic;
pub mod pci;
pub mod rtc;
pub mod serial;
pub mod trap;
