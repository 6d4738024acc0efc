//! What ExoV6's device drivers share that needs no kernel, so it is tested
//! on the host.
//!
//! The drivers themselves are user processes (`drivers/virtio-blk`): each
//! holds a capability to its one PCI function, memory capabilities to the
//! function's registers, and memory for DMA, and nothing else. They run
//! the virtio-drivers crate over those capabilities; [`config`] is the
//! piece between the crate's view of PCI (a configuration space it may
//! write freely) and the kernel's (BARs locked).
#![no_std]
#![deny(unsafe_code)]

pub mod config;
