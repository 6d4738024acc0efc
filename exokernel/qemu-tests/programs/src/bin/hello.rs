//! The smallest ExoV6 program: greets, shows its arguments, exits 0.
#![no_std]
#![no_main]

exo_rt::entry!(main);

fn main(args: &str) -> i32 {
    exo_rt::println!("hello: hello from user space (args: {args:?})");
    0
}
