//! The architecture facade: the rest of the kernel names `arch::...` only.
mod x86_64;
pub use self::x86_64::*;
