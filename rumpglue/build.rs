//! With the `rumpuser` feature, compiles the small C shim that holds the
//! hypercalls Rust cannot define on stable: the variadic
//! `rumpuser_dprintf` and `rumpuser_thread_exit`, which ends the thread
//! through pthread_exit and must not unwind through Rust frames.
fn main() {
    println!("cargo:rerun-if-changed=src/rumpuser/shim.c");
    #[cfg(feature = "rumpuser")]
    cc::Build::new()
        .file("src/rumpuser/shim.c")
        .flag("-std=gnu11")
        .flag("-Wall")
        .flag("-Wextra")
        .flag("-Werror")
        .compile("rumpglue_shim");
}
