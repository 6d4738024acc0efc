//! A first-in first-out queue of small `Copy` items: the kernel's wait
//! queues (threads waiting to send or receive on an endpoint, or for a
//! signal).
//!
//! The items sit in a ring whose size is a power of two, so that looking
//! at the front, dropping it and appending are a handful of instructions
//! with no call and no wrap-around branch: the IPC fast path does each
//! once per message. Growing (doubling) is the one slow step, and it is
//! out of line.

use alloc::vec::Vec;

/// A FIFO queue in a power-of-two ring.
#[derive(Debug, Clone)]
pub struct Fifo<T> {
    /// The ring: empty, or a power of two long.
    slots: Vec<T>,
    /// Index of the front item (meaningful when `len > 0`).
    head: usize,
    /// Number of items.
    len: usize,
}

impl<T: Copy> Default for Fifo<T> {
    fn default() -> Self {
        Fifo::new()
    }
}

impl<T: Copy> Fifo<T> {
    /// An empty queue (allocates nothing until the first push).
    pub const fn new() -> Self {
        Fifo { slots: Vec::new(), head: 0, len: 0 }
    }

    /// Number of items.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the queue holds nothing.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The front item, left in place.
    #[inline(always)]
    pub fn front(&self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.slots.get(self.head).copied()
    }

    /// Removes the front item (nothing if empty).
    #[inline(always)]
    pub fn drop_front(&mut self) {
        if self.len > 0 {
            self.head = (self.head + 1) & self.mask();
            self.len -= 1;
        }
    }

    /// Removes and returns the front item.
    #[inline(always)]
    pub fn pop_front(&mut self) -> Option<T> {
        let item = self.front()?;
        self.drop_front();
        Some(item)
    }

    /// Appends `item` at the back.
    #[inline(always)]
    pub fn push_back(&mut self, item: T) {
        if self.len == self.slots.len() {
            self.grow(item);
        }
        let i = (self.head + self.len) & self.mask();
        self.slots[i] = item;
        self.len += 1;
    }

    /// True if [`Fifo::push_back_in_place`] will succeed.
    #[inline(always)]
    pub fn has_room(&self) -> bool {
        self.len < self.slots.len()
    }

    /// Appends `item` at the back if that needs no allocation; else gives
    /// it back. (The IPC fast path's push, which must not allocate.)
    #[inline(always)]
    pub fn push_back_in_place(&mut self, item: T) -> Result<(), T> {
        if !self.has_room() {
            return Err(item);
        }
        let i = (self.head + self.len) & self.mask();
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = item;
            self.len += 1;
        }
        Ok(())
    }

    /// Puts `item` in front of all others.
    pub fn push_front(&mut self, item: T) {
        if self.len == self.slots.len() {
            self.grow(item);
        }
        self.head = (self.head + self.mask()) & self.mask();
        self.slots[self.head] = item;
        self.len += 1;
    }

    /// Keeps only the items for which `keep` is true, in their order.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let mask = self.mask();
        let mut kept = 0;
        for i in 0..self.len {
            let item = self.slots[(self.head + i) & mask];
            if keep(&item) {
                self.slots[(self.head + kept) & mask] = item;
                kept += 1;
            }
        }
        self.len = kept;
    }

    /// The items, front first.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        let mask = self.mask();
        (0..self.len).map(move |i| self.slots[(self.head + i) & mask])
    }

    /// Doubles the ring (4 slots at first), the items moved to its start
    /// and the free slots filled with copies of `fill`.
    #[inline(never)]
    #[cold]
    fn grow(&mut self, fill: T) {
        let size = (self.slots.len() * 2).max(4);
        let mut slots = Vec::with_capacity(size);
        slots.extend(self.iter());
        slots.resize(size, fill);
        self.slots = slots;
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        PushBack(u32),
        PushInPlace(u32),
        PushFront(u32),
        Pop,
        DropFront,
        Retain(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => any::<u32>().prop_map(Op::PushBack),
            2 => any::<u32>().prop_map(Op::PushInPlace),
            1 => any::<u32>().prop_map(Op::PushFront),
            3 => Just(Op::Pop),
            1 => Just(Op::DropFront),
            1 => (2u32..5).prop_map(Op::Retain),
        ]
    }

    proptest! {
        /// Every operation agrees with the standard library's deque, across
        /// wrap-around and growth.
        #[test]
        fn behaves_like_vecdeque(ops in proptest::collection::vec(op(), 0..300)) {
            let mut q = Fifo::<u32>::new();
            let mut model = VecDeque::new();
            for op in ops {
                match op {
                    Op::PushBack(v) => { q.push_back(v); model.push_back(v); }
                    Op::PushInPlace(v) => {
                        let room = q.has_room();
                        prop_assert_eq!(q.push_back_in_place(v), if room { Ok(()) } else { Err(v) });
                        if room { model.push_back(v); }
                    }
                    Op::PushFront(v) => { q.push_front(v); model.push_front(v); }
                    Op::Pop => prop_assert_eq!(q.pop_front(), model.pop_front()),
                    Op::DropFront => { q.drop_front(); model.pop_front(); }
                    Op::Retain(d) => { q.retain(|v| v % d != 0); model.retain(|v| v % d != 0); }
                }
                prop_assert_eq!(q.len(), model.len());
                prop_assert_eq!(q.front(), model.front().copied());
                prop_assert!(q.iter().eq(model.iter().copied()));
            }
        }
    }

    #[test]
    fn grows_in_powers_of_two_and_keeps_order() {
        let mut q = Fifo::new();
        for i in 0..3 {
            q.push_back(i);
        }
        q.drop_front(); // head moves, so the next pushes wrap
        for i in 3..20 {
            q.push_back(i);
        }
        assert_eq!(q.slots.len(), 32);
        assert!(q.iter().eq(1..20));
        assert_eq!(q.pop_front(), Some(1));
        assert_eq!(Fifo::<u8>::new().front(), None);
    }
}
