//! What the virtio drivers share: bringing a PCI function up as a
//! virtio-drivers transport over capabilities ([`device`]) and the `Hal`
//! over DMA memory and device registers ([`hal`]), and the network
//! device's queues without waiting ([`net`]).
#![no_std]

extern crate alloc;

pub mod device;
pub mod hal;
pub mod net;
