//! Generates the bindings with bindgen (libclang, from Debian's
//! libclang-dev) from the project's own header, include/exo_rumpuser.h.
//!
//! With `RUMP_SYSROOT` pointing at a real rump kernel installation, it
//! also generates bindings from that installation's rump/rumpuser.h, and
//! the tests compare the two declaration by declaration.
use std::env;
use std::path::{Path, PathBuf};

fn generate(header: &Path, defines: &[&str], out: &Path) {
    let prelude = format!("#include <stdint.h>\n#include <stddef.h>\n#include \"{}\"\n", header.display());
    let mut b = bindgen::Builder::default()
        .header_contents("exo_prelude.h", &prelude)
        .use_core()
        .ctypes_prefix("core::ffi")
        .allowlist_function("rumpuser_.*")
        .allowlist_type("rumpuser_.*|rump_.*|rumpclock|rumplwpop|rumprwlock")
        .allowlist_var("RUMPUSER_.*")
        .layout_tests(true)
        .generate_comments(false)
        .derive_default(true);
    for d in defines {
        b = b.clang_arg(format!("-D{d}"));
    }
    let bindings = b.generate().unwrap_or_else(|e| {
        panic!(
            "bindgen failed on {}: {e}\n(netbsd-sys needs libclang: install Debian's libclang-dev; scripts/test does)",
            header.display()
        )
    });
    bindings.write_to_file(out).expect("write bindings");
}

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let ours = dir.join("include/exo_rumpuser.h");
    println!("cargo:rerun-if-changed={}", ours.display());
    println!("cargo:rerun-if-env-changed=RUMP_SYSROOT");
    println!("cargo::rustc-check-cfg=cfg(real_rumpuser)");
    generate(&ours, &[], &out.join("rumpuser.rs"));
    if let Some(root) = env::var_os("RUMP_SYSROOT") {
        let real = PathBuf::from(root).join("include/rump/rumpuser.h");
        println!("cargo:rerun-if-changed={}", real.display());
        if real.exists() {
            generate(
                &real,
                &["LIBRUMPUSER", "_RUMP_SYSPROXY", "__dead=", "__printflike(a,b)=", "pid_t=int32_t"],
                &out.join("real_rumpuser.rs"),
            );
            println!("cargo:rustc-cfg=real_rumpuser");
        } else {
            println!("cargo:warning=RUMP_SYSROOT is set but {} does not exist", real.display());
        }
    }
}
