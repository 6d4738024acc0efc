//! Compiles the driver (csrc/md.c) against the project's rumpuser.h.
fn main() {
    let dir = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let include = dir.join("../../netbsd-sys/include");
    println!("cargo:rerun-if-changed=csrc/md.c");
    println!("cargo:rerun-if-changed=csrc/md.h");
    cc::Build::new()
        .file(dir.join("csrc/md.c"))
        .include(&include)
        .include(dir.join("csrc"))
        .flag("-std=gnu11")
        .flag("-Wall")
        .flag("-Wextra")
        .flag("-Werror")
        .flag("-ffreestanding")
        .compile("rump_md");
}
