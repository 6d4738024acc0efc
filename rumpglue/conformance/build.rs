//! Compiles the C conformance suite (csrc/*.c) against the project's
//! rumpuser.h description (netbsd-sys/include).
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let include = dir.join("../../netbsd-sys/include");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("csrc"))
        .expect("csrc/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    println!("cargo:rerun-if-changed={}", dir.join("csrc").display());
    println!("cargo:rerun-if-changed={}", include.join("exo_rumpuser.h").display());
    cc::Build::new()
        .files(&files)
        .include(&include)
        .include(dir.join("csrc"))
        .flag("-std=gnu11")
        .flag("-Wall")
        .flag("-Wextra")
        .flag("-Werror")
        .flag("-Wno-unused-parameter")
        .compile("rumpuser_conformance");
}
