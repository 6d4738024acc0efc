//! Links the program as every ExoV6 user program (the shared user build
//! script), and compiles the conformance suite (../csrc/suite.c, with
//! `__EXOV6__`) and the few C library functions it calls (csrc/libc.c,
//! include/), freestanding.
#[path = "../../../exokernel/user/user-build.rs"]
mod user;

fn main() {
    user::main();
    let dir = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    for f in
        ["../csrc/suite.c", "csrc/libc.c", "csrc/pcicheck.c", "include/stdio.h", "include/stdlib.h", "include/string.h"]
    {
        println!("cargo:rerun-if-changed={}", dir.join(f).display());
    }
    cc::Build::new()
        .file(dir.join("../csrc/suite.c"))
        .file(dir.join("csrc/libc.c"))
        .file(dir.join("csrc/pcicheck.c"))
        .include(dir.join("include"))
        .include(dir.join("../../../netbsd-sys/include"))
        .define("__EXOV6__", None)
        .flag("-std=gnu11")
        .flag("-ffreestanding")
        .flag("-fno-stack-protector")
        .flag("-Wall")
        .flag("-Wextra")
        .flag("-Werror")
        .flag("-Wno-unused-parameter")
        .compile("rumpconf");
}
