//! Console input: the console driver (`drivers/console`) holds COM1's I/O
//! ports and interrupt line (manifest `legacy = com1`) and nothing else;
//! keys typed on QEMU's standard input arrive through the I/O APIC as
//! signals on its notification, and it edits and reports lines.

use exo_qemu_tests::boot_typing;
use std::time::Duration;

const READY: &str = "console: COM1 input on interrupt line 4";

#[test]
fn typed_lines_arrive_through_the_uart_interrupt_edited() {
    let b = boot_typing(
        "console.img",
        Duration::from_secs(120),
        &[],
        &[
            // Backspace (DEL) rubs out; Enter ends the line.
            (READY, b"hello wo\x7f\x7fworld\r"),
            // ^C drops what was typed; ^U clears; both go on.
            ("console: line 1: hello world", b"dropped\x03kept\x15again\r"),
            ("console: line 2: again", b"a third line, then the limit\r"),
        ],
    );
    b.expect_in_order(&[
        "root: console drives com1 (ports 0x3f8-0x3ff, interrupt line 4)",
        READY,
        "console: line 1: hello world",
        "console: line 2: again",
        "console: line 3: a third line, then the limit",
        "console: 3 lines in ",
    ]);
    b.expect_line("portcheck: 15/15 checks passed");
    b.expect_line("root: all 2 programs ended as expected");
    // The keys were echoed as typed, rubbed-out ones rubbed out on the
    // screen too, ^C shown.
    assert!(b.serial.contains("hello wo\x08 \x08\x08 \x08world\n"), "{:?}", b.serial);
    assert!(b.serial.contains("dropped^C\nkept\x08 \x08\x08 \x08\x08 \x08\x08 \x08again\n"), "{:?}", b.serial);
    // Woken by interrupts, not by polling: at least one, at most one per
    // key (the UART's FIFO may gather several keys into one).
    let i = b.expect_line("console: 3 lines in ");
    let n: u64 = b.lines()[i]["console: 3 lines in ".len()..].split(' ').next().unwrap().parse().unwrap();
    assert!((1..=70).contains(&n), "{n} interrupts: {}", b.serial);
    assert_eq!(b.status, Some(0), "{}", b.serial);
}
