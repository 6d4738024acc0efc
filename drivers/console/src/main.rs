//! The serial console's input as a driver process: it holds COM1's I/O
//! ports and its interrupt line (manifest `legacy = com1`), nothing else.
//! The UART raises line 4 when a byte arrives; the kernel turns that into
//! a signal on this program's notification and masks the line until the
//! driver acknowledges it; the driver then reads every byte the UART
//! holds. No polling: between keystrokes it sleeps in `wait`.
//!
//! Lines are edited as a terminal would: printable characters echo,
//! backspace (DEL or ^H) rubs out, ^U clears the line, ^C drops it, Enter
//! ends it, ^D on an empty line ends the input. Keys typed while no client
//! waits for a line (a program runs) are kept as typed and edited, echo
//! and all, when a client next reads: a script typed ahead shows each
//! command after the output of the one before, not inside it. Finished
//! lines are served to clients with the console protocol
//! (`exo_protocols::console`) on the program's first endpoint: a client
//! (the shell, or a program reading its standard input) subscribes a
//! notification, is signalled when a line waits or ^C is typed, and reads
//! the line. The kernel's log keeps writing COM1's transmit register;
//! this driver never touches the line settings.
//!
//! Arguments: `lines N`: no clients; each line is printed as `console:
//! line N: TEXT` and the driver ends after N lines (for tests).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use exo_protocols::console::{self, Request, Status};
use exo_protocols::session;
use exo_protocols::session::server::{self, Ended, Serve, Sessions};
use exo_rt::abi::{slot, FOREVER, NOTIFY_BADGE};
use exo_rt::caps::{Endpoint, IoPorts, IrqLine, Message, Notification};
use exo_rt::{print, println};

exo_rt::entry!(main);

/// The UART's registers and bits.
use exo_rt::port::uart::{DATA_READY, IER, LSR, MCR, MCR_ON, RBR, RECEIVED};
/// Most bytes one line holds.
const MAX_LINE: usize = console::MAX_LINE;
/// Most bytes of finished lines kept for clients (a script typed ahead,
/// `scripts/run-qemu -c`, may hold many lines).
const MAX_QUEUED: usize = 64 << 10;
/// Where clients' buffers are mapped, one window each.
const CLIENT_VA: u64 = 0x20_0000_0000;
const CLIENT_WINDOW: u64 = 64 << 10;
const MAX_CLIENTS: usize = 8;
/// The notification bit the interrupt line signals.
const IRQ_BIT: u64 = 1;

/// What to do with the line being typed.
enum Edit {
    Go,
    Line(String),
    Interrupt,
    End,
}

/// The line being typed.
#[derive(Default)]
struct Typing {
    line: String,
    /// The first bytes of a UTF-8 character being typed.
    pending: Vec<u8>,
    /// Keys were lost to a full line: it is dropped when it ends, not run
    /// cut short.
    overflow: bool,
    /// Keys typed ahead were lost from the line: dropped as well.
    cut: bool,
}

/// Applies key `c` to the line, echoing what a terminal shows. A
/// character of several UTF-8 bytes gathers until whole; bytes that make
/// no character are dropped.
fn edit(t: &mut Typing, c: u8) -> Edit {
    if c >= 0x80 {
        t.pending.push(c);
        match core::str::from_utf8(&t.pending) {
            Ok(ch) => {
                if t.line.len() + ch.len() <= MAX_LINE {
                    t.line.push_str(ch);
                    print!("{ch}");
                } else {
                    t.overflow = true;
                }
                t.pending.clear();
            }
            // Not a character, and none can follow.
            Err(e) if e.error_len().is_some() => t.pending.clear(),
            Err(_) => {}
        }
        return Edit::Go;
    }
    t.pending.clear();
    match c {
        b'\r' | b'\n' => {
            println!();
            let line = core::mem::take(&mut t.line);
            if core::mem::take(&mut t.overflow) {
                println!("console: a line longer than {MAX_LINE} bytes: dropped, not run cut short");
                return Edit::Line(String::new());
            }
            if core::mem::take(&mut t.cut) {
                println!("console: a line that lost keys (too much typed ahead): dropped, not run cut short");
                return Edit::Line(String::new());
            }
            Edit::Line(line)
        }
        0x7f | 0x08 => {
            if t.line.pop().is_some() {
                print!("\x08 \x08");
            }
            Edit::Go
        }
        0x15 => {
            for _ in 0..t.line.chars().count() {
                print!("\x08 \x08");
            }
            t.line.clear();
            (t.overflow, t.cut) = (false, false);
            Edit::Go
        }
        0x03 => {
            println!("^C");
            t.line.clear();
            (t.overflow, t.cut) = (false, false);
            Edit::Interrupt
        }
        0x04 if t.line.is_empty() => Edit::End,
        b'\t' | 0x20..=0x7e => {
            if t.line.len() < MAX_LINE {
                t.line.push(c as char);
                print!("{}", c as char);
            } else {
                t.overflow = true;
            }
            Edit::Go
        }
        _ => Edit::Go, // other control bytes
    }
}

/// COM1 and its line.
struct Uart {
    ports: IoPorts,
    irq: IrqLine,
    interrupts: u64,
}

impl Uart {
    fn reg(&self, r: u16) -> Result<u8, exo_rt::abi::Error> {
        self.ports.read8(BASE + r)
    }

    /// After an interrupt: acknowledges it, then hands `each` every byte
    /// the UART holds (a byte that arrives meanwhile raises the line
    /// again).
    fn keys(&mut self, mut each: impl FnMut(u8)) {
        self.interrupts += 1;
        let _ = self.irq.ack();
        while let Ok(status) = self.reg(LSR) {
            if status & DATA_READY == 0 {
                break;
            }
            let Ok(c) = self.reg(RBR) else { break };
            each(c);
        }
    }
}

/// COM1's first port.
const BASE: u16 = 0x3f8;

fn main(args: &str) -> i32 {
    let limit = match args.split_whitespace().collect::<alloc::vec::Vec<_>>()[..] {
        ["lines", n] => n.parse::<u64>().ok(),
        _ => None,
    };
    let ports = IoPorts::from_slot(exo_manifest::LEGACY_SLOT_BASE);
    let irq = IrqLine::from_slot(exo_manifest::LEGACY_SLOT_BASE + 1);
    let note = Notification::from_slot(slot::SUPERVISOR);
    let vector = match irq.bind(note, IRQ_BIT, 0) {
        Ok(v) => v,
        Err(e) => {
            println!("console: cannot bind COM1's interrupt line: {}", e.name());
            return 1;
        }
    };
    let uart = Uart { ports, irq, interrupts: 0 };
    if ports.write8(BASE + IER, RECEIVED).and_then(|()| ports.write8(BASE + MCR, MCR_ON)).is_err() {
        println!("console: cannot program COM1");
        return 1;
    }
    // Keys typed before now (while ExoV6 booted) wait in the UART, and
    // QEMU holds back those that did not fit: they are kept, read as if
    // their interrupt had come.
    let _ = note.signal(IRQ_BIT);
    println!("console: COM1 input on interrupt line 4 (vector {vector:#x}): type a line");
    match limit {
        Some(n) => print_lines(uart, note, n),
        None => serve(uart, note),
    }
}

/// Test mode: prints each line, ends after `limit`.
fn print_lines(mut uart: Uart, note: Notification, limit: u64) -> i32 {
    let (mut lines, mut typing) = (0u64, Typing::default());
    loop {
        match note.wait(FOREVER) {
            Ok(bits) if bits & IRQ_BIT != 0 => {}
            Ok(_) => continue,
            Err(e) => {
                println!("console: wait failed: {}", e.name());
                return 1;
            }
        }
        let mut end = false;
        uart.keys(|c| match edit(&mut typing, c) {
            Edit::Line(text) if !end => {
                lines += 1;
                println!("console: line {lines}: {text}");
                end = lines >= limit;
            }
            Edit::End => end = true,
            _ => {}
        });
        if end {
            println!("console: {lines} lines in {} interrupts; stopping", uart.interrupts);
            return 0;
        }
    }
}

/// What was typed, between the UART and the clients.
///
/// Keys are edited (and echoed) while a client waits for a line. Keys
/// typed ahead, while no client waits (a program runs, or the shell is
/// busy with the last line), are kept as typed and edited when a client
/// next reads, so their echo comes after what the running program prints
/// and after the next prompt, not in the middle of the output. ^C is
/// acted on at once, and drops what was typed ahead, as on Unix.
#[derive(Default)]
struct Keyboard {
    typing: Typing,
    /// Keys typed ahead, not yet edited.
    ahead: VecDeque<u8>,
    /// Finished lines not yet read.
    queue: VecDeque<String>,
    /// ^D on an empty line, not yet read.
    ended: bool,
    /// A client was told there is no line and waits for one.
    reading: bool,
    /// Keys are dropped up to the end of the line (too many wait).
    skipping: bool,
    /// The line being typed lost its start too: it is dropped at its end.
    cut: bool,
}

impl Keyboard {
    /// Bytes waiting: finished lines and keys typed ahead.
    fn held(&self) -> usize {
        self.queue.iter().map(|l| l.len() + 1).sum::<usize>() + self.ahead.len()
    }

    /// Key `c` from the UART: the news for clients (`console::INTERRUPT`,
    /// `console::LINE_READY`).
    fn key(&mut self, c: u8) -> u64 {
        if c == 0x03 {
            self.ahead.clear();
            (self.skipping, self.cut) = (false, false);
            // The reader is interrupted: what is typed next waits for its
            // next read (after the shell's fresh prompt).
            self.reading = false;
            return self.edit(c);
        }
        let line_end = c == b'\r' || c == b'\n';
        if self.skipping {
            // The rest of a line that lost keys; its end ends the part
            // kept, if any, which is then dropped.
            self.skipping = !line_end;
            if line_end && core::mem::take(&mut self.cut) {
                self.ahead.push_back(c);
            }
            return 0;
        }
        if self.reading && self.ahead.is_empty() {
            return self.edit(c);
        }
        if self.held() + self.typing.line.len() >= MAX_QUEUED {
            self.overflow();
            return self.key(c);
        }
        self.ahead.push_back(c);
        0
    }

    /// Too much was typed ahead: the line being typed loses its keys and
    /// is dropped whole, never run cut short; the lines before it stay.
    fn overflow(&mut self) {
        println!("console: {} KiB typed ahead wait unread; the line being typed is dropped", MAX_QUEUED >> 10);
        match self.ahead.iter().rposition(|&c| c == b'\r' || c == b'\n') {
            Some(end) => self.ahead.truncate(end + 1),
            None => {
                // It began before the keys typed ahead.
                self.ahead.clear();
                self.typing.cut = true;
                self.cut = true;
            }
        }
        self.skipping = true;
    }

    /// Edits with key `c` (echoing it): the news for clients.
    fn edit(&mut self, c: u8) -> u64 {
        match edit(&mut self.typing, c) {
            Edit::Line(text) => {
                self.queue.push_back(text);
                self.reading = false; // the line is the waiting reader's
                console::LINE_READY
            }
            Edit::End => {
                self.ended = true;
                self.reading = false;
                console::LINE_READY
            }
            Edit::Interrupt => console::INTERRUPT,
            Edit::Go => 0,
        }
    }

    /// A client reads: the next line, `Err(())` for the end of input, or
    /// `Ok(None)` when none is finished (the client then waits, and keys
    /// echo as they are typed). Keys typed ahead are edited now, up to the
    /// end of one line.
    fn read(&mut self) -> Result<Option<String>, ()> {
        while self.queue.is_empty() && !self.ended {
            let Some(c) = self.ahead.pop_front() else { break };
            let _ = self.edit(c);
        }
        if let Some(line) = self.queue.pop_front() {
            return Ok(Some(line));
        }
        if core::mem::take(&mut self.ended) {
            return Err(()); // said once; the next ^D says it again
        }
        self.reading = true;
        Ok(None)
    }

    /// Whether a read would find something.
    fn waiting(&self) -> bool {
        !self.queue.is_empty() || self.ended || !self.ahead.is_empty()
    }
}

/// Serves finished lines to clients.
fn serve(mut uart: Uart, note: Notification) -> i32 {
    let ep = Endpoint::from_slot(exo_manifest::ENDPOINT_SLOT_BASE);
    let mut sessions = Sessions::new(CLIENT_VA, CLIENT_WINDOW, MAX_CLIENTS, console::MIN_BUFFER);
    let mut keyboard = Keyboard::default();
    let how =
        Serve { name: "console", clients: None, bound: Some(note), timeout: FOREVER, takes_cap: &[console::SUBSCRIBE] };
    let r = server::serve(ep, how, |msg| {
        let msg = msg?;
        if msg.badge == NOTIFY_BADGE {
            if msg.words[0] & IRQ_BIT != 0 {
                let mut bits = 0;
                uart.keys(|c| bits |= keyboard.key(c));
                if bits != 0 {
                    for s in sessions.iter_mut() {
                        if let Some(n) = s.note {
                            let _ = n.signal(bits);
                        }
                    }
                }
            }
            return None;
        }
        Some(handle(&mut sessions, &mut keyboard, msg))
    });
    match r {
        Ended::Served(_) => 0,
        Ended::Failed(_) => 1,
    }
}

/// One client message: the answer words.
fn handle(sessions: &mut Sessions, keyboard: &mut Keyboard, msg: &Message) -> [u64; 3] {
    let request = match Request::decode(msg.words) {
        Ok(r) => r,
        Err(s) => {
            server::drop_passed_cap(msg);
            return [s as u64, 0, 0];
        }
    };
    match request {
        Request::Attach => session::answer(sessions.attach(msg).map(|s| (s.bytes(), 0))),
        Request::Detach => session::answer(sessions.detach(msg.badge).map(|()| (0, 0))),
        Request::Subscribe => {
            let Some(cap) = msg.cap else { return [Status::BadRequest as u64, 0, 0] };
            match sessions.subscribe(msg.badge, cap) {
                Ok(note) => {
                    if keyboard.waiting() {
                        let _ = note.signal(console::LINE_READY);
                    }
                    [Status::Ok as u64, 0, 0]
                }
                Err(e) => [e as u64, 0, 0],
            }
        }
        Request::Read => {
            let s = match sessions.get(msg.badge) {
                Ok(s) => s,
                Err(e) => return [e as u64, 0, 0],
            };
            match keyboard.read() {
                Ok(Some(line)) => {
                    let n = line.len().min(s.buffer().len());
                    s.buffer()[..n].copy_from_slice(&line.as_bytes()[..n]);
                    [Status::Ok as u64, n as u64, 0]
                }
                Err(()) => [Status::Ok as u64, 0, console::END_OF_INPUT],
                Ok(None) => [Status::Empty as u64, 0, 0],
            }
        }
    }
}
