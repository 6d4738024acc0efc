//! Who runs next: strict priorities between levels, weighted shares
//! between the processes of a level, round robin between the threads of a
//! process.
//!
//! Fairness is per process, not per thread: a program does not get more
//! of the processor by starting more threads. Within a priority level the
//! turns are dealt by the golden-ratio sequence. Turn `n` takes the point
//! `x_n = frac(n / φ)` of the unit circle (in fixed point: `n *
//! ⌊2^32 / φ⌋ mod 2^32`, one multiplication, no floating point), and each
//! runnable process owns an arc of the circle proportional to its weight;
//! the process whose arc holds `x_n` gets the turn. For two processes with
//! weights in the ratio 1 : φ, the heavier one's turns are exactly the
//! Beatty sequence `⌊mφ⌋` (m = 1, 2, ...) and the lighter one's the
//! complementary Beatty sequence `⌊mφ²⌋` (and turn 0). For any weights, the three-gap theorem keeps the points
//! spread evenly around the circle at every `n`, so each process gets its
//! share in every window of turns, not in long runs as a lottery would
//! give it, and with no per-process counters to overflow or to reset when
//! a process comes and goes (as stride scheduling needs).
//!
//! Priorities are strict, as in seL4: a runnable thread of a higher level
//! always runs first. The root task (the supervisor) sits above every
//! program it starts, so it notices a death the moment it happens.
//!
//! Cost: a pick is O(k) in the runnable processes of the top level (a walk
//! over their weights), which is a handful in any system this kernel runs.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// Number of priority levels: 0 (lowest) to `PRIORITIES - 1`.
pub const PRIORITIES: usize = 4;
/// The level of the root task (the supervisor).
pub const SUPERVISOR_PRIORITY: u8 = (PRIORITIES - 1) as u8;
/// The level of a new process (capped at its creator's).
pub const DEFAULT_PRIORITY: u8 = 1;
/// Weight of a new process.
pub const DEFAULT_WEIGHT: u32 = 1;
/// Largest weight.
pub const MAX_WEIGHT: u32 = 1000;
/// ⌊2^32 / φ⌋: one turn's step around the circle.
pub const GOLDEN_STEP: u32 = 0x9e37_79b9;

/// Scheduling parameters of one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Level, 0 to `PRIORITIES - 1`.
    pub priority: u8,
    /// Share among the runnable processes of its level, 1 to
    /// [`MAX_WEIGHT`].
    pub weight: u32,
}

impl Params {
    /// `Some` if both values are in range.
    pub fn new(priority: u64, weight: u64) -> Option<Params> {
        let ok = (priority as usize) < PRIORITIES && (1..=MAX_WEIGHT as u64).contains(&weight);
        ok.then_some(Params { priority: priority as u8, weight: weight as u32 })
    }
}

impl Default for Params {
    fn default() -> Self {
        Params { priority: DEFAULT_PRIORITY, weight: DEFAULT_WEIGHT }
    }
}

struct Member<T> {
    params: Params,
    /// Runnable threads, in the order they get turns.
    threads: VecDeque<T>,
}

#[derive(Default)]
struct Level {
    /// Processes of this level with runnable threads, in arc order: by
    /// process number, so a process keeps its arc when it stops and
    /// starts being runnable (as the running one does at every turn).
    runnable: Vec<u32>,
    /// Sum of their weights.
    total: u64,
    /// Turns dealt at this level so far.
    turn: u32,
}

/// The run queues. `T` is a thread id; processes are small integers.
pub struct Scheduler<T> {
    members: Vec<Option<Member<T>>>,
    levels: [Level; PRIORITIES],
    /// Bit `l` set: level `l` has runnable processes.
    busy: u8,
}

impl<T: Copy + PartialEq> Default for Scheduler<T> {
    fn default() -> Self {
        Scheduler::new()
    }
}

impl<T: Copy + PartialEq> Scheduler<T> {
    /// No processes.
    pub fn new() -> Self {
        Scheduler { members: Vec::new(), levels: Default::default(), busy: 0 }
    }

    /// Registers process `p` with `params` (replacing what it had; it
    /// must have no runnable threads).
    pub fn add_process(&mut self, p: u32, params: Params) {
        let i = p as usize;
        if self.members.len() <= i {
            self.members.resize_with(i + 1, || None);
        }
        self.remove_process(p);
        self.members[i] = Some(Member { params, threads: VecDeque::new() });
    }

    /// Forgets process `p` and its runnable threads.
    pub fn remove_process(&mut self, p: u32) {
        if let Some(m) = self.members.get_mut(p as usize).and_then(Option::take) {
            if !m.threads.is_empty() {
                self.unlist(p, m.params);
            }
        }
    }

    /// The parameters of process `p`, if registered.
    pub fn params(&self, p: u32) -> Option<Params> {
        self.member(p).map(|m| m.params)
    }

    /// Changes the parameters of process `p`; its runnable threads move
    /// with it. False if `p` is not registered.
    pub fn set_params(&mut self, p: u32, params: Params) -> bool {
        let Some(m) = self.member(p) else { return false };
        let (old, listed) = (m.params, !m.threads.is_empty());
        if listed {
            self.unlist(p, old);
        }
        self.members[p as usize].as_mut().expect("checked").params = params;
        if listed {
            self.list(p, params);
        }
        true
    }

    /// Makes thread `t` of process `p` runnable, behind the process's
    /// other runnable threads. Returns the process's priority, or `None`
    /// (and does nothing) if `p` is not registered.
    pub fn push(&mut self, p: u32, t: T) -> Option<u8> {
        let m = self.members.get_mut(p as usize)?.as_mut()?;
        let params = m.params;
        let first = m.threads.is_empty();
        m.threads.push_back(t);
        if first {
            self.list(p, params);
        }
        Some(params.priority)
    }

    /// Takes thread `t` of process `p` off the run queue, if it is there.
    pub fn remove(&mut self, p: u32, t: T) {
        let Some(Some(m)) = self.members.get_mut(p as usize) else { return };
        let before = m.threads.len();
        m.threads.retain(|x| *x != t);
        if before > 0 && m.threads.is_empty() {
            let params = m.params;
            self.unlist(p, params);
        }
    }

    /// The highest level with a runnable thread.
    #[inline]
    pub fn top_priority(&self) -> Option<u8> {
        (self.busy != 0).then(|| 7 - self.busy.leading_zeros() as u8)
    }

    /// True if nothing is runnable.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.busy == 0
    }

    /// Takes the next thread to run off the queue: from the highest level
    /// with runnable threads, the process whose arc holds this turn's
    /// point, its first runnable thread.
    pub fn pick(&mut self) -> Option<(u32, T)> {
        let level = &mut self.levels[self.top_priority()? as usize];
        let point = level.turn.wrapping_mul(GOLDEN_STEP);
        level.turn = level.turn.wrapping_add(1);
        let mut chosen = *level.runnable.last().expect("level is not empty");
        if level.runnable.len() > 1 {
            // Scale the point to [0, total): the arcs are the weights in
            // order.
            let target = (u64::from(point) * level.total) >> 32;
            let mut end = 0u64;
            for &p in &level.runnable {
                end += u64::from(self.members[p as usize].as_ref().expect("listed").params.weight);
                if target < end {
                    chosen = p;
                    break;
                }
            }
        }
        let m = self.members[chosen as usize].as_mut().expect("listed");
        let t = m.threads.pop_front().expect("listed processes have threads");
        if m.threads.is_empty() {
            let params = m.params;
            self.unlist(chosen, params);
        }
        Some((chosen, t))
    }

    fn member(&self, p: u32) -> Option<&Member<T>> {
        self.members.get(p as usize)?.as_ref()
    }

    fn list(&mut self, p: u32, params: Params) {
        let level = &mut self.levels[params.priority as usize];
        let at = level.runnable.binary_search(&p).unwrap_or_else(|i| i);
        level.runnable.insert(at, p);
        level.total += u64::from(params.weight);
        self.busy |= 1 << params.priority;
    }

    fn unlist(&mut self, p: u32, params: Params) {
        let level = &mut self.levels[params.priority as usize];
        if let Ok(i) = level.runnable.binary_search(&p) {
            level.runnable.remove(i);
            level.total -= u64::from(params.weight);
            if level.runnable.is_empty() {
                self.busy &= !(1 << params.priority);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `turns` turns where every process always has a runnable thread
    /// (the picked thread goes back at once) and counts turns per process.
    fn shares(sched: &mut Scheduler<u32>, procs: u32, turns: usize) -> Vec<usize> {
        let mut counts = alloc::vec![0; procs as usize];
        for _ in 0..turns {
            let (p, t) = sched.pick().expect("runnable");
            counts[p as usize] += 1;
            sched.push(p, t);
        }
        counts
    }

    fn params(priority: u8, weight: u32) -> Params {
        Params { priority, weight }
    }

    #[test]
    fn shares_follow_weights_not_thread_counts() {
        let mut s = Scheduler::new();
        s.add_process(0, params(1, 1));
        s.add_process(1, params(1, 3));
        // Process 0 has eight threads, process 1 one.
        for t in 0..8 {
            s.push(0, t);
        }
        s.push(1, 100);
        let c = shares(&mut s, 2, 100);
        assert!((23..=27).contains(&c[0]), "weight 1 of 4 in 100 turns: {c:?}");
        // Every window of 20 turns gives each its share, give or take one
        // or two: turns are spread, not bunched.
        let mut s2 = Scheduler::new();
        s2.add_process(0, params(1, 1));
        s2.add_process(1, params(1, 1));
        s2.push(0, 0);
        s2.push(1, 1);
        let order: Vec<u32> = (0..1000)
            .map(|_| {
                let (p, t) = s2.pick().unwrap();
                s2.push(p, t);
                p
            })
            .collect();
        for w in order.windows(20) {
            let zeros = w.iter().filter(|p| **p == 0).count();
            assert!((8..=12).contains(&zeros), "window {w:?}");
        }
    }

    #[test]
    fn two_processes_in_golden_ratio_take_beatty_turns() {
        // Weights 382 : 618 ≈ 1/φ² : 1/φ (the arcs [0, 1/φ²) and
        // [1/φ², 1)): the heavier process takes turn n exactly when
        // frac(n/φ) ≥ 1/φ², i.e. when n = ⌊mφ⌋.
        let mut s = Scheduler::new();
        s.add_process(0, params(1, 382));
        s.add_process(1, params(1, 618));
        s.push(0, 0);
        s.push(1, 1);
        let phi = (1.0 + 5f64.sqrt()) / 2.0;
        let mut m = 1;
        for n in 0..200u32 {
            let (p, t) = s.pick().unwrap();
            s.push(p, t);
            let beatty = (m as f64 * phi).floor() as u32;
            if p == 1 {
                assert_eq!(n, beatty, "turn {n} went to the heavier process; Beatty term {m} is {beatty}");
                m += 1;
            } else {
                assert_ne!(n, beatty, "turn {n} is Beatty term {m} but went to the lighter process");
            }
        }
        assert!(m > 120, "about 200/φ turns for the heavier process, got {}", m - 1);
    }

    #[test]
    fn higher_priority_always_first_and_threads_take_turns() {
        let mut s = Scheduler::new();
        s.add_process(0, params(1, 1));
        s.add_process(1, params(3, 1));
        s.push(0, 10);
        s.push(1, 20);
        s.push(1, 21);
        assert_eq!(s.top_priority(), Some(3));
        assert_eq!(s.pick(), Some((1, 20)));
        s.push(1, 20);
        assert_eq!(s.pick(), Some((1, 21)), "threads of a process take turns");
        assert_eq!(s.pick(), Some((1, 20)));
        assert_eq!(s.pick(), Some((0, 10)), "lower level runs when the higher is idle");
        assert!(s.is_empty());
        assert_eq!(s.pick(), None);
    }

    #[test]
    fn removal_and_parameter_changes_keep_the_books() {
        let mut s = Scheduler::new();
        s.add_process(0, params(1, 5));
        s.add_process(1, params(1, 5));
        s.push(0, 1);
        s.push(0, 2);
        s.push(1, 3);
        s.remove(0, 1);
        s.remove(0, 2);
        assert_eq!(s.levels[1].total, 5);
        assert!(s.set_params(1, params(2, 7)));
        assert_eq!(s.levels[1].total, 0);
        assert_eq!(s.levels[2].total, 7);
        assert_eq!(s.pick(), Some((1, 3)));
        s.push(0, 4);
        s.remove_process(0);
        assert!(s.is_empty());
        assert_eq!(s.push(0, 5), None, "a forgotten process takes no threads");
        assert!(!s.set_params(9, params(0, 1)));
        assert_eq!(Params::new(4, 1), None);
        assert_eq!(Params::new(0, 0), None);
        assert_eq!(Params::new(0, 1001), None);
        assert_eq!(Params::new(3, 1000), Some(params(3, 1000)));
    }

    proptest::proptest! {
        /// Any weights, any thread counts: over 1000 turns each process's
        /// share is within 2% of its weight's share.
        #[test]
        fn shares_match_weights(weights in proptest::collection::vec(1u32..=MAX_WEIGHT, 1..6),
                                threads in proptest::collection::vec(1u32..=8, 6)) {
            let mut s = Scheduler::new();
            for (p, w) in weights.iter().enumerate() {
                s.add_process(p as u32, params(1, *w));
                for t in 0..threads[p] {
                    s.push(p as u32, p as u32 * 100 + t);
                }
            }
            let turns = 1000;
            let c = shares(&mut s, weights.len() as u32, turns);
            let total: u32 = weights.iter().sum();
            for (p, w) in weights.iter().enumerate() {
                let want = turns as f64 * *w as f64 / total as f64;
                proptest::prop_assert!((c[p] as f64 - want).abs() <= 20.0, "process {p}: {} turns, want {want:.1} ({weights:?})", c[p]);
            }
        }
    }
}
