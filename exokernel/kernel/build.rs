//! Links the kernel as a freestanding higher-half ELF with a PVH note and
//! generates the 256 interrupt entry stubs.
use std::fmt::Write as _;
use std::{env, fs, path::PathBuf};

/// Vectors for which the CPU pushes an error code itself.
const HAS_ERROR_CODE: [u32; 9] = [8, 10, 11, 12, 13, 14, 17, 21, 30];

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let ld = dir.join("link.ld");
    println!("cargo:rerun-if-changed={}", ld.display());
    for arg in ["-nostartfiles", "-nostdlib", "-static", "-no-pie", "-Wl,--build-id=none", "-Wl,-z,max-page-size=4096"]
    {
        println!("cargo:rustc-link-arg-bin=exokernel={arg}");
    }
    println!("cargo:rustc-link-arg-bin=exokernel=-T{}", ld.display());

    // One stub per vector: push a zero error code where the CPU does not,
    // push the vector number, jump to the common entry.
    let mut s = String::from(".section .text.vectors, \"ax\"\n.code64\n");
    for v in 0..256u32 {
        writeln!(s, ".balign 16\nexo_vector_{v}:").unwrap();
        if !HAS_ERROR_CODE.contains(&v) {
            s.push_str("    push 0\n");
        }
        writeln!(s, "    push {v}\n    jmp exo_interrupt_common").unwrap();
    }
    s.push_str(".section .rodata.vectors, \"a\"\n.balign 8\n.global EXO_VECTOR_STUBS\nEXO_VECTOR_STUBS:\n");
    for v in 0..256u32 {
        writeln!(s, "    .quad exo_vector_{v}").unwrap();
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("vectors.s");
    fs::write(out, s).unwrap();
}
