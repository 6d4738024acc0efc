//! Generates the bindings with bindgen (libclang, from Debian's
//! libclang-dev) from the project's own header, include/exo_rumpuser.h.
//!
//! With `RUMP_SYSROOT` pointing at a real rump kernel installation, it
//! also generates bindings from that installation's rump/rumpuser.h, and
//! the tests compare the two declaration by declaration.
use std::env;
use std::path::{Path, PathBuf};

/// What to take from a header.
struct Allow {
    functions: &'static str,
    types: &'static str,
    vars: &'static str,
}

const RUMPUSER: Allow = Allow {
    functions: "rumpuser_.*",
    types: "rumpuser_.*|rump_.*|rumpclock|rumplwpop|rumprwlock",
    vars: "RUMPUSER_.*",
};

const RUMP: Allow = Allow {
    functions: "rump_init|rump_pub_etfs_.*|rump_sys_.*",
    types: "netbsd_.*|rump_etfs_type",
    vars: "NETBSD_.*|RUMP_ETFS_.*",
};

fn generate(header: &Path, allow: &Allow, defines: &[&str], out: &Path) {
    try_generate(header, allow, defines, out).unwrap_or_else(|e| {
        panic!(
            "bindgen failed on {}: {e}\n(netbsd-sys needs libclang: install Debian's libclang-dev; scripts/test does)",
            header.display()
        )
    })
}

fn try_generate(header: &Path, allow: &Allow, defines: &[&str], out: &Path) -> Result<(), String> {
    let prelude = format!("#include <stdint.h>\n#include <stddef.h>\n#include \"{}\"\n", header.display());
    let mut b = bindgen::Builder::default()
        .header_contents("exo_prelude.h", &prelude)
        .use_core()
        .ctypes_prefix("core::ffi")
        .allowlist_function(allow.functions)
        .allowlist_type(allow.types)
        .allowlist_var(allow.vars)
        .layout_tests(true)
        .generate_comments(false)
        .derive_default(true);
    for d in defines {
        b = b.clang_arg(format!("-D{d}"));
    }
    let bindings = b.generate().map_err(|e| e.to_string())?;
    bindings.write_to_file(out).map_err(|e| e.to_string())
}

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let ours = dir.join("include/exo_rumpuser.h");
    let rump = dir.join("include/exo_rump.h");
    println!("cargo:rerun-if-changed={}", ours.display());
    println!("cargo:rerun-if-changed={}", rump.display());
    println!("cargo:rerun-if-env-changed=RUMP_SYSROOT");
    println!("cargo::rustc-check-cfg=cfg(real_rumpuser)");
    println!("cargo::rustc-check-cfg=cfg(real_rump)");
    generate(&ours, &RUMPUSER, &[], &out.join("rumpuser.rs"));
    generate(&rump, &RUMP, &[], &out.join("rump.rs"));
    if let Some(root) = env::var_os("RUMP_SYSROOT") {
        let root = PathBuf::from(root);
        real_rump(&root, &out);
        let real = root.join("include/rump/rumpuser.h");
        println!("cargo:rerun-if-changed={}", real.display());
        if real.exists() {
            generate(
                &real,
                &RUMPUSER,
                &["LIBRUMPUSER", "_RUMP_SYSPROXY", "__dead=", "__printflike(a,b)=", "pid_t=int32_t"],
                &out.join("real_rumpuser.rs"),
            );
            println!("cargo:rustc-cfg=real_rumpuser");
        } else {
            println!("cargo:warning=RUMP_SYSROOT is set but {} does not exist", real.display());
        }
    }
}

/// The entry points and system calls of a real rump installation, for the
/// test that compares them with include/exo_rump.h. Its headers expect a
/// NetBSD-like set of system types; when the host's cannot stand in, the
/// comparison is skipped with a warning that says why.
fn real_rump(root: &Path, out: &Path) {
    let inc = root.join("include");
    let header = out.join("real_rump_prelude.h");
    let text = "#include <stdint.h>\n#include <sys/types.h>\n#include <rump/rump.h>\n#include <rump/rump_syscalls.h>\n";
    std::fs::write(&header, text).expect("write prelude");
    let allow = Allow {
        functions: "rump_init|rump_pub_etfs_register|rump_pub_etfs_register_withsize|rump_pub_etfs_remove|rump_sys_(open|close|read|pread|pwrite|stat|lstat|fstat|getdents|readlink|mkdir|unlink|rmdir|rename|fsync|mount|unmount|ioctl)",
        types: "rump_etfs_type",
        vars: "RUMP_ETFS_.*|RUMP_E[A-Z0-9]+",
    };
    let defines = [&*format!("-I{}", inc.display())];
    let mut b = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .clang_arg(defines[0])
        .use_core()
        .ctypes_prefix("core::ffi")
        .allowlist_function(allow.functions)
        .allowlist_type(allow.types)
        .allowlist_var(allow.vars)
        .layout_tests(false)
        .generate_comments(false);
    b = b.clang_arg("-D_KERNTYPES");
    match b.generate() {
        Ok(g) => {
            g.write_to_file(out.join("real_rump.rs")).expect("write bindings");
            println!("cargo:rustc-cfg=real_rump");
        }
        Err(e) => println!("cargo:warning=cannot read the real rump.h/rump_syscalls.h under {}: {e}", inc.display()),
    }
}
