//! Bitmap allocator of 4 KiB physical frames (bit set = used).

/// Size of a frame.
pub const FRAME_SIZE: u64 = 4096;

/// Why a frame could not be freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The address is not frame-aligned.
    NotAligned,
    /// The frame is beyond the managed range.
    OutOfRange,
    /// The frame is already free.
    DoubleFree,
}

/// Hands out physical frames; every frame starts used until a free range
/// covers it.
pub struct FrameAllocator<'a> {
    bitmap: &'a mut [u64],
    free: usize,
    managed: usize,
    hint: usize,
}

impl<'a> FrameAllocator<'a> {
    /// Words of bitmap needed for physical addresses below `phys_limit`.
    pub const fn bitmap_words(phys_limit: u64) -> usize {
        let frames = phys_limit.div_ceil(FRAME_SIZE);
        frames.div_ceil(64) as usize
    }

    /// An allocator over `bitmap`, with every frame used.
    pub fn new(bitmap: &'a mut [u64]) -> Self {
        bitmap.fill(u64::MAX);
        FrameAllocator { bitmap, free: 0, managed: 0, hint: 0 }
    }

    fn frames(&self) -> u64 {
        self.bitmap.len() as u64 * 64
    }

    fn is_used(&self, f: u64) -> bool {
        self.bitmap[(f / 64) as usize] & (1 << (f % 64)) != 0
    }

    fn set(&mut self, f: u64, used: bool) {
        let w = &mut self.bitmap[(f / 64) as usize];
        if used {
            *w |= 1 << (f % 64);
        } else {
            *w &= !(1 << (f % 64));
        }
    }

    /// Marks `[start, end)` free, rounding inward to whole frames; the
    /// part beyond the bitmap is ignored.
    pub fn add_free_range(&mut self, start: u64, end: u64) {
        let first = start.div_ceil(FRAME_SIZE);
        let last = (end / FRAME_SIZE).min(self.frames());
        for f in first..last.max(first) {
            if self.is_used(f) {
                self.set(f, false);
                self.free += 1;
                self.managed += 1;
            }
        }
        self.hint = 0;
    }

    /// Marks `[start, end)` used, rounding outward to whole frames.
    pub fn reserve_range(&mut self, start: u64, end: u64) {
        let first = start / FRAME_SIZE;
        let last = end.div_ceil(FRAME_SIZE).min(self.frames());
        for f in first..last.max(first) {
            if !self.is_used(f) {
                self.set(f, true);
                self.free -= 1;
                self.managed -= 1;
            }
        }
    }

    /// The lowest free frame, now used; `None` when none is left.
    pub fn alloc(&mut self) -> Option<u64> {
        if self.free == 0 {
            return None;
        }
        let words = self.bitmap.len();
        for i in 0..words {
            let w = (self.hint + i) % words;
            let word = self.bitmap[w];
            if word != u64::MAX {
                let bit = (!word).trailing_zeros() as u64;
                let f = w as u64 * 64 + bit;
                self.set(f, true);
                self.free -= 1;
                self.hint = w;
                return Some(f * FRAME_SIZE);
            }
        }
        None
    }

    /// `count` physically contiguous free frames, now used; the first
    /// frame's address.
    pub fn alloc_contiguous(&mut self, count: usize) -> Option<u64> {
        if count == 0 || count > self.free {
            return None;
        }
        let mut run = 0u64;
        for f in 0..self.frames() {
            if self.is_used(f) {
                run = 0;
                continue;
            }
            run += 1;
            if run == count as u64 {
                let first = f + 1 - run;
                for g in first..=f {
                    self.set(g, true);
                }
                self.free -= count;
                return Some(first * FRAME_SIZE);
            }
        }
        None
    }

    /// Returns a frame. The bitmap is unchanged on error.
    pub fn free(&mut self, frame: u64) -> Result<(), FrameError> {
        if !frame.is_multiple_of(FRAME_SIZE) {
            return Err(FrameError::NotAligned);
        }
        let f = frame / FRAME_SIZE;
        if f >= self.frames() {
            return Err(FrameError::OutOfRange);
        }
        if !self.is_used(f) {
            return Err(FrameError::DoubleFree);
        }
        self.set(f, false);
        self.free += 1;
        self.hint = self.hint.min((f / 64) as usize);
        Ok(())
    }

    /// Frames free now.
    pub fn free_count(&self) -> usize {
        self.free
    }

    /// Frames of RAM under management (free ranges minus reservations).
    pub fn managed_count(&self) -> usize {
        self.managed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn bitmap(frames: u64) -> Vec<u64> {
        vec![0; FrameAllocator::bitmap_words(frames * FRAME_SIZE)]
    }

    #[test]
    fn ranges_round_inward_and_reserve_wins() {
        let mut bm = bitmap(128);
        let mut a = FrameAllocator::new(&mut bm);
        a.add_free_range(0x1800, 0x6800); // frames 2..6
        assert_eq!(a.free_count(), 4);
        a.reserve_range(0x2fff, 0x3001); // frames 2 and 3
        assert_eq!(a.free_count(), 2);
        assert_eq!(a.alloc(), Some(0x4000));
        assert_eq!(a.alloc(), Some(0x5000));
        assert_eq!(a.alloc(), None);
    }

    #[test]
    fn ranges_beyond_bitmap_are_ignored() {
        let mut bm = bitmap(64);
        let mut a = FrameAllocator::new(&mut bm);
        a.add_free_range(60 * FRAME_SIZE, 1 << 40);
        assert_eq!(a.free_count(), 4);
        assert_eq!(a.managed_count(), 4);
    }

    #[test]
    fn free_detects_errors_and_leaves_state() {
        let mut bm = bitmap(64);
        let mut a = FrameAllocator::new(&mut bm);
        a.add_free_range(0, 4 * FRAME_SIZE);
        let f = a.alloc().unwrap();
        assert_eq!(a.free(f + 1), Err(FrameError::NotAligned));
        assert_eq!(a.free(1 << 30), Err(FrameError::OutOfRange));
        assert_eq!(a.free(f), Ok(()));
        assert_eq!(a.free(f), Err(FrameError::DoubleFree));
        assert_eq!(a.free_count(), 4);
    }

    #[test]
    fn contiguous_skips_holes() {
        let mut bm = bitmap(128);
        let mut a = FrameAllocator::new(&mut bm);
        a.add_free_range(0, 16 * FRAME_SIZE);
        a.reserve_range(3 * FRAME_SIZE, 4 * FRAME_SIZE);
        assert_eq!(a.alloc_contiguous(4), Some(4 * FRAME_SIZE));
        assert_eq!(a.alloc_contiguous(3), Some(0));
        assert_eq!(a.alloc_contiguous(9), None);
        assert_eq!(a.alloc_contiguous(8), Some(8 * FRAME_SIZE));
        assert_eq!(a.free_count(), 0);
        assert_eq!(a.alloc_contiguous(0), None);
    }

    proptest! {
        #[test]
        fn random_alloc_free_matches_model(ops in proptest::collection::vec(any::<(bool, u8)>(), 1..300)) {
            let mut bm = bitmap(200);
            let mut a = FrameAllocator::new(&mut bm);
            a.add_free_range(FRAME_SIZE * 10, FRAME_SIZE * 150);
            let mut held: Vec<u64> = Vec::new();
            let mut seen: HashSet<u64> = HashSet::new();
            for (alloc, pick) in ops {
                if alloc || held.is_empty() {
                    if let Some(f) = a.alloc() {
                        prop_assert!((FRAME_SIZE * 10..FRAME_SIZE * 150).contains(&f));
                        prop_assert!(seen.insert(f), "frame {f:#x} handed out twice");
                        held.push(f);
                    } else {
                        prop_assert_eq!(held.len(), 140);
                    }
                } else {
                    let f = held.swap_remove(pick as usize % held.len());
                    seen.remove(&f);
                    prop_assert_eq!(a.free(f), Ok(()));
                }
                prop_assert_eq!(a.free_count(), 140 - held.len());
            }
        }
    }
}
