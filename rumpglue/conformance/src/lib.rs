//! The rumpuser(3) conformance suite. The cases are C (csrc/), calling the
//! hypercalls exactly as a rump kernel does, including the scheduling
//! upcalls of a small fake rump kernel; tests/conformance.rs runs each one.
//! Only the suite's harness is here; the code under test is rumpglue's
//! `rumpuser` module.

// Link rumpglue's hypercalls into everything that links this crate.
pub use rumpglue::rumpuser::HYPERCALLS;
