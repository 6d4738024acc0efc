//! Manifest parser tests: the good path and every error.

use super::*;

const GOOD: &str = "\
# a comment
[system]
on_idle = shutdown   # trailing comment

[program b]
binary = spin
args = B 40
caps = console, power
after = a
heap = 128K
restart = on-failure
expect = fault 14
label = network
endpoints = echo, log
devices = virtio-net, virtio-blk, virtio-blk

[program a]
binary = hello
expect = exit 3
";

#[test]
fn parses_and_orders() {
    let m = parse(GOOD).unwrap();
    assert_eq!(m.system.on_idle, OnIdle::Shutdown);
    let names: Vec<_> = m.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a", "b"], "a must start before b");
    let b = &m.programs[1];
    assert_eq!(b.binary, "spin");
    assert_eq!(b.args, "B 40");
    assert_eq!(b.caps, [CapGrant::Console, CapGrant::Power]);
    assert_eq!(b.heap, 128 * 1024);
    assert_eq!(b.restart, Restart::OnFailure);
    assert_eq!(b.expect, Some(Expect::Fault(Some(14))));
    assert_eq!(b.label, Label::NETWORK);
    assert_eq!(b.endpoints, ["echo", "log"]);
    assert!(m.programs[0].endpoints.is_empty());
    // Two of a kind: two functions of that kind, in slot order.
    assert_eq!(b.devices, [Device::VirtioNet, Device::VirtioBlk, Device::VirtioBlk]);
    assert!(m.programs[0].devices.is_empty());
    assert_eq!(m.programs[0].label, Label::USER, "default label");
    let a = &m.programs[0];
    assert_eq!((a.heap, a.restart, a.expect), (DEFAULT_HEAP, Restart::Never, Some(Expect::Exit(3))));
    assert!(a.caps.is_empty() && a.args.is_empty());
}

#[test]
fn defaults_and_file_order() {
    let m = parse("[program x]\nbinary = x\n[program y]\nbinary = y\nexpect = fault\nheap = 1M\n").unwrap();
    assert_eq!(m.system.on_idle, OnIdle::Halt);
    assert_eq!(m.programs[0].name, "x");
    assert_eq!(m.programs[1].expect, Some(Expect::Fault(None)));
    assert_eq!(m.programs[1].heap, 1 << 20);
    assert_eq!((m.programs[0].priority, m.programs[0].weight), (DEFAULT_PRIORITY, DEFAULT_WEIGHT));
    assert_eq!((m.programs[0].memory, m.programs[0].kernel), (DEFAULT_MEMORY, DEFAULT_KERNEL));
}

#[test]
fn schedule_and_budget() {
    let m = parse("[program x]\nbinary = x\npriority = 2\nweight = 1000\nmemory = 1G\nkernel = 100K\n").unwrap();
    let x = &m.programs[0];
    assert_eq!((x.priority, x.weight, x.memory, x.kernel), (2, 1000, 1 << 30, 100 << 10));
    let m = parse("[program x]\nbinary = x\nmax_restarts = 0\nrestart_window = 5s\nstable_after = 0\n").unwrap();
    let x = &m.programs[0];
    assert_eq!((x.max_restarts, x.restart_window_s, x.stable_after_s), (0, 5, 0));
    let d = &parse("[program x]\nbinary = x\n").unwrap().programs[0];
    assert_eq!((d.max_restarts, d.restart_window_s, d.stable_after_s), (5, 60, 10));
}

fn error(text: &str) -> ManifestError {
    parse(text).expect_err(text)
}

#[test]
fn every_error_names_its_line() {
    let p = "[program p]\nbinary = p\n";
    let cases: &[(&str, usize, &str)] = &[
        ("binary = x\n", 1, "outside any section"),
        ("[bogus]\n", 1, "unknown section"),
        ("[program p\n", 1, "must end with `]`"),
        ("[program]\n", 1, "needs a name"),
        ("[program Bad!]\nbinary = x\n", 1, "invalid program name"),
        ("[program p]\nbinary = p\n[program p]\nbinary = p\n", 3, "defined twice"),
        ("[program p]\nbinary = p\nbinary = q\n", 3, "given twice"),
        ("[program p]\nbinary = p\nheapp = 4K\n", 3, "unknown key `heapp`"),
        ("[program p]\nargs = x\n", 1, "has no `binary`"),
        ("[program p]\nbinary = p\ncaps = console, disk\n", 3, "unknown capability `disk`"),
        ("[program p]\nbinary = p\ncaps = console, console\n", 3, "listed twice"),
        ("[program p]\nbinary = p\nheap = lots\n", 3, "invalid heap size"),
        ("[program p]\nbinary = p\nheap = 0\n", 3, "multiple of 4K"),
        ("[program p]\nbinary = p\nheap = 5000\n", 3, "multiple of 4K"),
        ("[program p]\nbinary = p\nheap = 128M\n", 3, "multiple of 4K"),
        ("[program p]\nbinary = p\nheap = 99999999999999999999K\n", 3, "invalid heap size"),
        ("[program p]\nbinary = p\nheap = 18014398509481984K\n", 3, "invalid heap size"),
        ("[program p]\nbinary = p\nrestart = sometimes\n", 3, "restart must be"),
        ("[program p]\nbinary = p\ntest_kill_gap = 5ms\n", 3, "test_kill_gap must be 10ms to 600s"),
        ("[program p]\nbinary = p\non_dependency_restart = later\n", 3, "on_dependency_restart must be reattach or restart"),
        ("[program p]\nbinary = p\ntest_kills_after = soon\n", 3, "test_kills_after must be 0 to 600s"),
        ("[program p]\nbinary = p\nexpect = crash\n", 3, "expect must be"),
        ("[program p]\nbinary = p\nexpect = fault 99\n", 3, "expect must be"),
        ("[program p]\nbinary = p\nexpect = exit 1 2\n", 3, "expect must be"),
        ("[system]\non_idle = explode\n[program p]\nbinary = p\n", 2, "on_idle must be"),
        ("[system]\ncolor = red\n", 2, "unknown key `color` in [system]"),
        ("[system]\n[system]\n", 2, "second [system]"),
        ("[program p]\nbinary = p\nafter = ghost\n", 1, "unknown program `ghost`"),
        ("[program p]\nbinary = p\nafter = p\n", 1, "after itself"),
        ("[program p]\nbinary = p\nthis is not a pair\n", 3, "expected `key = value`"),
        ("[program p]\nbinary = a/b\n", 2, "invalid binary name"),
        ("[program p]\nbinary = p\nlabel = admin\n", 3, "unknown label `admin` (one of root, system"),
        ("[program p]\nbinary = p\ndevices = e1000\n", 3, "unknown device `e1000` (one of virtio-blk, virtio-net, virtio-console)"),
        ("[program p]\nbinary = p\ndevices = virtio-blk, virtio-blk, virtio-blk, virtio-blk, virtio-blk, virtio-blk, virtio-blk, virtio-blk, virtio-blk\n", 3, "more than 8 devices"),
        ("[program p]\nbinary = p\npriority = 3\n", 3, "priority must be 0 to 2"),
        ("[program p]\nbinary = p\nweight = 0\n", 3, "weight must be 1 to 1000"),
        ("[program p]\nbinary = p\nweight = 1001\n", 3, "weight must be 1 to 1000"),
        ("[program p]\nbinary = p\nmemory = 5000\n", 3, "memory must be a size"),
        ("[program p]\nbinary = p\nmemory = 8G\n", 3, "memory must be a size"),
        ("[program p]\nbinary = p\nkernel = 0\n", 3, "kernel must be a size"),
        ("[program p]\nbinary = p\nkernel = 65M\n", 3, "kernel must be a size"),
        ("[program p]\nbinary = p\nendpoints = a\nserves = b\n", 1, "serves `b`, which is not among its endpoints"),
        ("[program p]\nbinary = p\nendpoints = a\nserves = a, a\n", 4, "listed twice in serves"),
        ("[program p]\nbinary = p\nmax_restarts = 101\n", 3, "max_restarts must be 0 to 100"),
        ("[program p]\nbinary = p\nrestart_window = 0s\n", 3, "restart_window must be 1 to 3600 seconds"),
        ("[program p]\nbinary = p\nstable_after = soon\n", 3, "stable_after must be 0 to 3600 seconds"),
        ("# nothing\n", 0, "no [program] sections"),
        ("", 0, "no [program] sections"),
    ];
    for (text, line, needle) in cases {
        let e = error(text);
        assert_eq!(e.line, *line, "{text:?}: {e}");
        assert!(e.message.contains(needle), "{text:?}: {e} does not mention {needle:?}");
    }
    assert!(parse(p).is_ok());
}

#[test]
fn devices_match_transitional_and_modern_ids() {
    assert!(Device::VirtioBlk.matches(0x1af4, 0x1001) && Device::VirtioBlk.matches(0x1af4, 0x1042));
    assert!(Device::VirtioNet.matches(0x1af4, 0x1000) && Device::VirtioNet.matches(0x1af4, 0x1041));
    assert!(!Device::VirtioBlk.matches(0x1af4, 0x1000) && !Device::VirtioNet.matches(0x8086, 0x1000));
    assert_eq!(Device::VirtioNet.name(), "virtio-net");
    assert!(Device::VirtioConsole.matches(0x1af4, 0x1003) && Device::VirtioConsole.matches(0x1af4, 0x1043));
    assert_eq!(Device::VirtioConsole.name(), "virtio-console");
}

#[test]
fn cycles_are_named() {
    let e = error("[program a]\nbinary = a\nafter = c\n[program b]\nbinary = b\nafter = a\n[program c]\nbinary = c\nafter = b\n[program d]\nbinary = d\n");
    assert_eq!(e.line, 0);
    assert!(e.message.contains("dependency cycle among: a, b, c"), "{e}");
    assert_eq!(e.to_string(), "manifest: dependency cycle among: a, b, c");
    assert_eq!(error("[program]\n").to_string(), "manifest line 1: [program] needs a name: [program NAME]");
}

/// What every answer of `parse(text)` must satisfy: a manifest is fully
/// checked and in a valid start order; an error names a line of `text`
/// (or the whole file) and says something.
fn assert_sound(text: &str, r: &Result<Manifest, ManifestError>) {
    match r {
        Ok(m) => {
            assert!(!m.programs.is_empty(), "{text:?}");
            for (i, p) in m.programs.iter().enumerate() {
                assert!(valid_name(&p.name), "{text:?}: name {:?}", p.name);
                assert!(m.programs[..i].iter().all(|q| q.name != p.name), "{text:?}: {} twice", p.name);
                assert!(!p.binary.is_empty() && !p.binary.contains('/'), "{text:?}: binary {:?}", p.binary);
                assert!(p.heap > 0 && p.heap % PAGE == 0 && p.heap <= MAX_HEAP, "{text:?}: heap {}", p.heap);
                assert!(p.priority <= MAX_PRIORITY && (1..=MAX_WEIGHT).contains(&p.weight), "{text:?}");
                assert!(p.endpoints.len() <= MAX_ENDPOINTS && p.devices.len() <= MAX_DEVICES, "{text:?}");
                assert!(p.endpoints.iter().all(|e| valid_name(e)), "{text:?}: {:?}", p.endpoints);
                for a in &p.after {
                    assert!(m.programs[..i].iter().any(|q| &q.name == a), "{text:?}: {} before {a}", p.name);
                }
                if let Some(Expect::Fault(Some(v))) = p.expect {
                    assert!(v < 32, "{text:?}: vector {v}");
                }
            }
        }
        Err(e) => {
            assert!(e.line <= text.lines().count(), "{text:?}: {e} is past the last line");
            assert!(!e.message.is_empty(), "{text:?}");
            let shown = e.to_string();
            assert!(shown.starts_with("manifest") && shown.ends_with(&e.message), "{shown}");
        }
    }
}

#[test]
fn heartbeats_take_milliseconds_or_seconds() {
    let m = parse("[program a]\nbinary = a\nendpoints = e\nserves = e\nheartbeat = 250ms\n").unwrap();
    assert_eq!(m.programs[0].heartbeat_ms, 250);
    let m = parse("[program a]\nbinary = a\nendpoints = e\nserves = e\nheartbeat = 2s\n").unwrap();
    assert_eq!(m.programs[0].heartbeat_ms, 2000);
    let m = parse("[program a]\nbinary = a\n").unwrap();
    assert_eq!(m.programs[0].heartbeat_ms, 0, "none unless asked for");
}

#[test]
fn garbage_gets_a_precise_error() {
    let cases: &[(&str, usize, &str)] = &[
        ("[", 1, "section header must end with `]`"),
        ("]", 1, "expected `key = value`, found `]`"),
        ("=", 1, "`` outside any section"),
        ("[program \u{1F600}]", 1, "invalid program name `\u{1F600}`"),
        ("[program a]\n=\n", 2, "unknown key `` in [program a]"),
        ("\u{0}\u{0}", 1, "expected `key = value`, found `\u{0}\u{0}`"),
        ("[system]\non_idle=", 2, "on_idle must be shutdown or halt, not ``"),
        ("[program a]\nheap = K\n", 2, "invalid heap size `K`"),
        ("[program a]\nheartbeat = 5ms\n", 2, "heartbeat must be 10ms to 600s"),
        ("[program a]\nheartbeat = soon\n", 2, "heartbeat must be 10ms to 600s"),
        ("[program a]\nbinary = a\nheartbeat = 1s\n", 1, "has a heartbeat but serves no endpoint"),
        ("[program a]\nlegacy = com9\n", 2, "unknown legacy device `com9` (one of com1, com2)"),
        ("[program a]\nlegacy = com1, com1\n", 2, "legacy device `com1` listed twice"),
        (
            "[program a]\nbinary = a\nlegacy = com1\n[program b]\nbinary = b\nlegacy = com2, com1\n",
            1,
            "[program a] and [program b] both list `com1`",
        ),
    ];
    for (text, line, needle) in cases {
        let r = parse(text);
        assert_sound(text, &r);
        let e = r.expect_err(text);
        assert_eq!(e.line, *line, "{text:?}: {e}");
        assert!(e.message.contains(needle), "{text:?}: {e} does not mention {needle:?}");
    }
}

#[test]
fn mutated_manifests_give_sound_answers() {
    // Every cut, and every character replaced by each of a few that
    // matter to the syntax: each answer is a checked manifest or an
    // error on a real line.
    let chars: Vec<(usize, char)> = GOOD.char_indices().collect();
    let mut accepted = 0;
    for &(at, c) in &chars {
        let r = parse(&GOOD[..at]);
        assert_sound(&GOOD[..at], &r);
        accepted += usize::from(r.is_ok());
        for with in ['[', ']', '=', '#', ',', '\n', ' ', 'x', '0', '\u{e9}'] {
            if with == c {
                continue;
            }
            let text = format!("{}{with}{}", &GOOD[..at], &GOOD[at + c.len_utf8()..]);
            let r = parse(&text);
            assert_sound(&text, &r);
            accepted += usize::from(r.is_ok());
        }
    }
    // Comments, values like args and some cuts still give manifests:
    // the checks of accepted manifests above ran.
    assert!(accepted > 50, "only {accepted} mutants parsed");
}

#[test]
fn dependency_policy_and_the_after_limit() {
    let m = parse("[program a]\nbinary = a\n[program b]\nbinary = b\nafter = a\non_dependency_restart = restart\n")
        .unwrap();
    assert_eq!(m.programs[0].on_dependency_restart, OnDependencyRestart::Reattach, "the default");
    assert_eq!(m.programs[1].on_dependency_restart, OnDependencyRestart::Restart);
    // One supervisor notification bit per program in `after`: at most 32.
    let mut text = String::new();
    for i in 0..33 {
        text.push_str(&format!("[program p{i}]\nbinary = p\n"));
    }
    let all: Vec<String> = (0..33).map(|i| format!("p{i}")).collect();
    text.push_str(&format!("[program last]\nbinary = l\nafter = {}\n", all.join(", ")));
    assert!(error(&text).message.contains("more than 32 programs in after"), "{}", error(&text));
}

#[test]
fn legacy_devices_are_listed_in_slot_order() {
    let m = parse("[program console]\nbinary = console\nlegacy = com2, com1\n").unwrap();
    assert_eq!(m.programs[0].legacy, [Legacy::Com2, Legacy::Com1]);
    assert_eq!(Legacy::Com1.resources(), (0x3f8, 8, 4));
    assert!(exo_abi::ioports_allowed(0x3f8, 8) && exo_abi::irq_line_allowed(4));
    assert!(exo_abi::ioports_allowed(0x2f8, 8) && exo_abi::irq_line_allowed(3));
}
