//! virtio-blk and virtio-net drivers on the virtio-drivers crate, run as isolated user processes.
//!
//! Not written yet: this crate holds the place its issue will fill (see
//! README.md, "Status"). It contains no code, so nothing can mistake it
//! for a working component.
#![no_std]
#![forbid(unsafe_code)]
