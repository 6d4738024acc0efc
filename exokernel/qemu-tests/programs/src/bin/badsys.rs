//! Hands the kernel bad system-call arguments and checks that each gets
//! the precise error code, never a crash. Exits 0 when every check holds.
#![no_std]
#![no_main]

use exo_rt::abi::{slot, Error, Sys, NO_CAP, STACK_TOP, USER_END};
use exo_rt::println;
use exo_rt::sys::{call, raw_number};

exo_rt::entry!(main);

const KERNEL_DIRECT_MAP: u64 = 0xffff_8000_0000_0000;
const KERNEL_TEXT: u64 = 0xffff_ffff_8010_0000;

/// A named check: what the kernel answered, what it should have.
type Check = (&'static str, Result<u64, Error>, Result<u64, Error>);

fn main(_args: &str) -> i32 {
    let msg = b"badsys: a valid write still works\n";
    let good = msg.as_ptr() as u64;
    let checks: &[Check] = &[
        (
            "valid console write",
            call(Sys::ConsoleWrite, [slot::CONSOLE, good, msg.len() as u64, 0, 0, 0]),
            Ok(msg.len() as u64),
        ),
        (
            "kernel direct-map pointer",
            call(Sys::ConsoleWrite, [slot::CONSOLE, KERNEL_DIRECT_MAP, 16, 0, 0, 0]),
            Err(Error::BadAddress),
        ),
        (
            "kernel text pointer",
            call(Sys::ConsoleWrite, [slot::CONSOLE, KERNEL_TEXT, 16, 0, 0, 0]),
            Err(Error::BadAddress),
        ),
        ("unmapped pointer", call(Sys::ConsoleWrite, [slot::CONSOLE, 0x1234_5000, 8, 0, 0, 0]), Err(Error::BadAddress)),
        ("null pointer", call(Sys::ConsoleWrite, [slot::CONSOLE, 0, 1, 0, 0, 0]), Err(Error::BadAddress)),
        (
            "range past the user half",
            call(Sys::ConsoleWrite, [slot::CONSOLE, USER_END - 4, 16, 0, 0, 0]),
            Err(Error::BadAddress),
        ),
        (
            "range running off the stack",
            call(Sys::ConsoleWrite, [slot::CONSOLE, STACK_TOP - 8, 16, 0, 0, 0]),
            Err(Error::BadAddress),
        ),
        ("huge length", call(Sys::ConsoleWrite, [slot::CONSOLE, good, u64::MAX, 0, 0, 0]), Err(Error::InvalidArgument)),
        ("unknown syscall 999", exo_rt::abi::decode_result(raw_number(999, [0; 6])), Err(Error::InvalidSyscall)),
        (
            "unknown syscall u64::MAX",
            exo_rt::abi::decode_result(raw_number(u64::MAX, [0; 6])),
            Err(Error::InvalidSyscall),
        ),
        ("slot out of range", call(Sys::ConsoleWrite, [300, good, 1, 0, 0, 0]), Err(Error::InvalidCap)),
        ("empty slot", call(Sys::ConsoleWrite, [200, good, 1, 0, 0, 0]), Err(Error::InvalidCap)),
        ("wrong capability type", call(Sys::ConsoleWrite, [slot::SELF, good, 1, 0, 0, 0]), Err(Error::WrongType)),
        (
            "unknown map flags",
            call(Sys::Map, [slot::SELF, slot::CONSOLE, 0x100_0000, 0x80, 0, 0]),
            Err(Error::InvalidArgument),
        ),
        ("map a console", call(Sys::Map, [slot::SELF, slot::CONSOLE, 0x100_0000, 1, 0, 0]), Err(Error::WrongType)),
        (
            "thread at kernel address",
            call(Sys::ThreadCreate, [slot::SELF, KERNEL_TEXT, 0x10_0000, 0, 0, 0]),
            Err(Error::InvalidArgument),
        ),
        ("wait for itself", call(Sys::ProcessWait, [slot::SELF, 0, 0, 0, 0, 0]), Err(Error::InvalidArgument)),
        ("shutdown without power", call(Sys::Shutdown, [slot::POWER, 0, 0, 0, 0, 0]), Err(Error::InvalidCap)),
        (
            "unknown rights bits",
            call(Sys::CapCopy, [slot::SELF, slot::CONSOLE, 20, 1 << 20, NO_CAP, NO_CAP]),
            Err(Error::InvalidArgument),
        ),
        ("unmap nothing", call(Sys::Unmap, [slot::SELF, 0x7000_0000, 0, 0, 0, 0]), Err(Error::NotMapped)),
        ("alloc without untyped", call(Sys::MemAlloc, [slot::UNTYPED, 1, 0, 0, 0, 0]), Err(Error::InvalidCap)),
        (
            "thread pointer in the kernel",
            call(Sys::ThreadSetTls, [KERNEL_TEXT, 0, 0, 0, 0, 0]),
            Err(Error::InvalidArgument),
        ),
        (
            "non-canonical thread pointer",
            call(Sys::ThreadSetTls, [1 << 63, 0, 0, 0, 0, 0]),
            Err(Error::InvalidArgument),
        ),
    ];
    let mut passed = 0;
    for (name, got, want) in checks {
        if got == want {
            passed += 1;
            println!("badsys: {name}: {} ok", describe(*got));
        } else {
            println!("badsys: {name}: got {}, want {} FAILED", describe(*got), describe(*want));
        }
    }
    println!("badsys: {passed}/{} checks passed", checks.len());
    if passed == checks.len() {
        0
    } else {
        1
    }
}

fn describe(r: Result<u64, Error>) -> &'static str {
    match r {
        Ok(_) => "success",
        Err(e) => e.name(),
    }
}
