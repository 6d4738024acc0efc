//! With the `rumpuser` feature, compiles the small C shim that holds the
//! hypercalls Rust cannot define on stable: the variadic
//! `rumpuser_dprintf` and `rumpuser_thread_exit`, which ends the thread
//! through pthread_exit and must not unwind through Rust frames.
//!
//! With `rumpuser-exo` (and not `host`) it compiles the ExoV6 shim
//! instead: `rumpuser_dprintf` with a formatter of its own, freestanding
//! (ExoV6 programs have no C library).
fn main() {
    println!("cargo:rerun-if-changed=src/rumpuser/shim.c");
    println!("cargo:rerun-if-changed=src/rumpuser/shim_exo.c");
    #[cfg(feature = "rumpuser")]
    cc::Build::new()
        .file("src/rumpuser/shim.c")
        .flag("-std=gnu11")
        .flag("-Wall")
        .flag("-Wextra")
        .flag("-Werror")
        .compile("rumpglue_shim");
    #[cfg(all(feature = "rumpuser-exo", not(feature = "host")))]
    cc::Build::new()
        .file("src/rumpuser/shim_exo.c")
        .flag("-std=gnu11")
        .flag("-ffreestanding")
        .flag("-fno-stack-protector")
        .flag("-Wall")
        .flag("-Wextra")
        .flag("-Werror")
        .compile("rumpglue_shim_exo");
}
