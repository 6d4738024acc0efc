//! bindgen-generated bindings of NetBSD's rump interfaces and types.
//!
//! Not written yet: this crate holds the place its issue will fill (see
//! README.md, "Status"). It contains no code, so nothing can mistake it
//! for a working component.
#![no_std]
#![forbid(unsafe_code)]
