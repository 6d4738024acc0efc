//! PCI configuration access for virtio-drivers through a mediated
//! function capability.
//!
//! virtio-drivers sizes a BAR the standard way: it writes all ones and
//! reads the mask back, then writes the old value. The kernel refuses
//! every BAR write (a driver must not move its registers), and sizes BARs
//! itself. So [`Mediated`] answers the probe from the size the kernel
//! reports, without sending BAR writes anywhere; every other access goes
//! to the function, and functions other than the driver's own look
//! absent. The probe also turns the function's decoding off and on around
//! it: with the probe answered here that is moot, and under QEMU each
//! switch rebuilds the machine's memory map (milliseconds, several a
//! BAR), so a command write that only switches decoding is held back
//! until something else is read or written, and dropped if the next one
//! puts decoding back as it was.

use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};

/// One function's configuration space as a driver's capability reaches
/// it.
pub trait FunctionConfig {
    /// The function.
    fn function(&self) -> DeviceFunction;
    /// The dword at `offset` (4-aligned, below 256); `None` if refused.
    fn read(&self, offset: u8) -> Option<u32>;
    /// Writes the dword at `offset`; false if refused.
    fn write(&mut self, offset: u8, value: u32) -> bool;
    /// Size in bytes of memory BAR `bar`, as the kernel reports it.
    fn bar_size(&self, bar: u8) -> Option<u64>;
    /// A second handle on the same function.
    fn duplicate(&self) -> Self;
}

/// Offset of BAR 0; BARs are six dwords from here.
const BAR0: u8 = 0x10;

/// [`ConfigurationAccess`] over a [`FunctionConfig`], answering BAR
/// probes itself.
pub struct Mediated<F: FunctionConfig> {
    inner: F,
    /// BAR dwords that were last written all ones (a probe under way).
    probing: [bool; 6],
    /// Writes the function refused (other than BAR probes).
    refused: u32,
    /// A command register write held back (it only switched decoding).
    held: Option<u32>,
}

/// The command register's decoding bits: I/O and memory space.
const DECODING: u32 = 0b11;

impl<F: FunctionConfig> Mediated<F> {
    /// Wraps `inner`.
    pub fn new(inner: F) -> Self {
        Mediated { inner, probing: [false; 6], refused: 0, held: None }
    }

    /// Sends the command write held back, if any.
    fn release(&mut self) {
        if let Some(command) = self.held.take() {
            if !self.inner.write(0x04, command) {
                self.refused += 1;
            }
        }
    }

    /// How many writes the kernel refused.
    pub fn refused(&self) -> u32 {
        self.refused
    }

    /// The function.
    pub fn function(&self) -> DeviceFunction {
        self.inner.function()
    }

    /// What a BAR dword reads as while it is being probed: the size mask
    /// (with the type bits) for a memory BAR's low dword, the upper half of
    /// the mask for a 64-bit BAR's high dword, 0 (unimplemented) when the
    /// size is not known.
    fn probe_answer(&self, i: u8) -> u32 {
        let real = |i: u8| self.inner.read(BAR0 + 4 * i).unwrap_or(0);
        let mask = |bar: u8| self.inner.bar_size(bar).filter(|s| s.is_power_of_two()).map(|s| !(s - 1));
        if i > 0 && real(i - 1) & 0b111 == 0b100 {
            return mask(i - 1).map_or(0, |m| (m >> 32) as u32); // high dword of a 64-bit BAR
        }
        let low = real(i);
        if low & 1 != 0 {
            return 0; // an I/O BAR: no size from the kernel
        }
        mask(i).map_or(0, |m| (m as u32 & !0xf) | (low & 0xf))
    }
}

/// The capability list of a function, given a way to read its dwords:
/// `(position, ID)` of each entry, following the links from 0x34 when the
/// status register says there is a list. At most 48 entries, so that a
/// device that links them in a loop cannot hang the driver.
pub fn capabilities(read: impl Fn(u8) -> Option<u32>) -> impl Iterator<Item = (u8, u8)> {
    let start = match read(0x04) {
        Some(status) if status & (0x10 << 16) != 0 => read(0x34).map_or(0, |p| p as u8 & 0xfc),
        _ => 0,
    };
    let mut next = start;
    core::iter::from_fn(move || {
        if next < 0x40 {
            return None;
        }
        let at = next;
        let head = read(at)?;
        next = (head >> 8) as u8 & 0xfc;
        Some((at, head as u8))
    })
    .take(48)
}

/// PCI capability ID of vendor-specific capabilities (virtio's).
pub const CAP_VENDOR: u8 = 0x09;
/// PCI capability ID of MSI-X.
pub const CAP_MSIX: u8 = 0x11;

/// Where the virtio structure of `cfg_type` (1 common, 2 notify, 3 ISR,
/// 4 device) is: BAR, offset and length, from the first such capability.
pub fn virtio_structure(read: impl Fn(u8) -> Option<u32> + Copy, cfg_type: u8) -> Option<(u8, u32, u32)> {
    capabilities(read).filter(|(_, id)| *id == CAP_VENDOR).find_map(|(at, _)| {
        let head = read(at)?;
        ((head >> 24) as u8 == cfg_type).then_some((read(at + 4)? as u8, read(at + 8)?, read(at + 12)?))
    })
}

fn bar_index(offset: u8) -> Option<u8> {
    (BAR0..BAR0 + 24).contains(&offset).then(|| (offset - BAR0) / 4)
}

impl<F: FunctionConfig> ConfigurationAccess for Mediated<F> {
    fn read_word(&self, df: DeviceFunction, offset: u8) -> u32 {
        if df != self.inner.function() {
            return u32::MAX; // nothing answers there, for this driver
        }
        match (bar_index(offset), self.held) {
            (Some(i), _) if self.probing[i as usize] => self.probe_answer(i),
            // The command as written, the status as it is.
            (None, Some(command)) if offset == 0x04 => {
                self.inner.read(offset).map_or(u32::MAX, |real| real & !0xffff | command & 0xffff)
            }
            _ => self.inner.read(offset).unwrap_or(u32::MAX),
        }
    }

    fn write_word(&mut self, df: DeviceFunction, offset: u8, data: u32) {
        if df != self.inner.function() {
            return;
        }
        match bar_index(offset) {
            // All ones starts a probe; anything else (the old value) ends it.
            Some(i) => self.probing[i as usize] = data == u32::MAX,
            None => {
                // A command write with no status bits (they clear on
                // writing ones) that changes decoding alone waits; one
                // that puts the device's own value back cancels it.
                let real = if offset == 0x04 { self.inner.read(0x04) } else { None };
                if let Some(real) = real {
                    if data >> 16 == 0 && (data ^ real) & 0xffff & !DECODING == 0 {
                        self.held = (data & 0xffff != real & 0xffff).then_some(data);
                        return;
                    }
                }
                self.release();
                if !self.inner.write(offset, data) {
                    self.refused += 1;
                }
            }
        }
    }

    #[allow(unsafe_code)] // the trait's signature; nothing unsafe happens here
    unsafe fn unsafe_clone(&self) -> Self {
        Mediated { inner: self.inner.duplicate(), probing: self.probing, refused: 0, held: self.held }
    }
}

impl<F: FunctionConfig> Drop for Mediated<F> {
    /// A command write still held back goes out after all.
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::cell::RefCell;
    use std::rc::Rc;
    use std::vec::Vec;
    use virtio_drivers::transport::pci::bus::{BarInfo, MemoryBarType, PciRoot};

    /// A function as the kernel shows it: BAR writes refused, sizes known.
    #[derive(Clone)]
    struct Fake {
        space: Rc<RefCell<[u32; 64]>>,
        sizes: [Option<u64>; 6],
        writes: Rc<RefCell<Vec<(u8, u32)>>>,
    }

    const DF: DeviceFunction = DeviceFunction { bus: 0, device: 2, function: 0 };

    impl FunctionConfig for Fake {
        fn function(&self) -> DeviceFunction {
            DF
        }
        fn read(&self, offset: u8) -> Option<u32> {
            Some(self.space.borrow()[offset as usize / 4])
        }
        fn write(&mut self, offset: u8, value: u32) -> bool {
            self.writes.borrow_mut().push((offset, value));
            if (0x10..0x28).contains(&offset) {
                return false; // as the kernel does
            }
            self.space.borrow_mut()[offset as usize / 4] = value;
            true
        }
        fn bar_size(&self, bar: u8) -> Option<u64> {
            self.sizes[bar as usize]
        }
        fn duplicate(&self) -> Self {
            self.clone()
        }
    }

    fn fake() -> Fake {
        let mut space = [0u32; 64];
        space[0] = 0x1001_1af4;
        space[1] = 0x0010_0007; // status: capabilities; command: I/O, memory, master
        space[4] = 0xc041; // BAR 0: I/O at 0xc040
        space[5] = 0xfeb0_0000; // BAR 1: 32-bit memory, 4 KiB
        space[8] = 0xfe00_000c; // BAR 4: 64-bit prefetchable memory, 16 KiB
        space[9] = 0;
        Fake {
            space: Rc::new(RefCell::new(space)),
            sizes: [None, Some(0x1000), None, None, Some(0x4000), None],
            writes: Rc::default(),
        }
    }

    #[test]
    fn virtio_drivers_sizes_bars_without_writing_them() {
        let f = fake();
        let mut root = PciRoot::new(Mediated::new(f.clone()));
        assert_eq!(
            root.bar_info(DF, 4).unwrap(),
            Some(BarInfo::Memory {
                address_type: MemoryBarType::Width64,
                prefetchable: true,
                address: 0xfe00_0000,
                size: 0x4000
            })
        );
        assert_eq!(
            root.bar_info(DF, 1).unwrap(),
            Some(BarInfo::Memory {
                address_type: MemoryBarType::Width32,
                prefetchable: false,
                address: 0xfeb0_0000,
                size: 0x1000
            })
        );
        // An I/O BAR the kernel cannot size reads as unimplemented.
        assert_eq!(root.bar_info(DF, 0).unwrap(), None);
        // Nothing reached the function: no BAR write, and not the command
        // register's decoding off and back on around each probe (held
        // back, then cancelled), which ends as it was.
        let writes = f.writes.borrow().clone();
        assert!(writes.is_empty(), "{writes:x?}");
        assert_eq!(f.space.borrow()[1] & 0xffff, 0x0007);
        // BARs read normally again after the probes.
        assert_eq!(root.bar_info(DF, 4).unwrap().and_then(|b| b.memory_address_size()), Some((0xfe00_0000, 0x4000)));
    }

    #[test]
    fn a_command_write_held_back_goes_out_before_other_writes_and_at_the_end() {
        let f = fake();
        let mut m = Mediated::new(f.clone());
        // Decoding off: held back, but the driver reads what it wrote.
        m.write_word(DF, 0x04, 0x0004);
        assert!(f.writes.borrow().is_empty());
        assert_eq!(m.read_word(DF, 0x04) & 0xffff, 0x0004);
        // Another register written: the held write goes first.
        m.write_word(DF, 0x0c, 0x10);
        assert_eq!(f.writes.borrow()[..2], [(0x04, 0x0004), (0x0c, 0x10)]);
        // Held again, then dropped: it goes out at the end.
        m.write_word(DF, 0x04, 0x0007);
        m.write_word(DF, 0x04, 0x0006);
        assert_eq!(f.writes.borrow().len(), 2, "{:x?}", f.writes.borrow());
        drop(m);
        assert_eq!(f.writes.borrow().last(), Some(&(0x04, 0x0006)));
        // A write with status bits (write-one-to-clear) or other command
        // bits is never held.
        let mut m = Mediated::new(f.clone());
        m.write_word(DF, 0x04, 0x0100_0006);
        assert_eq!(f.writes.borrow().last(), Some(&(0x04, 0x0100_0006)));
        m.write_word(DF, 0x04, 0x0406);
        assert_eq!(f.writes.borrow().last(), Some(&(0x04, 0x0406)));
    }

    #[test]
    fn capability_lists_are_walked_and_loops_end() {
        let f = fake();
        {
            let mut space = f.space.borrow_mut();
            space[0x34 / 4] = 0x40;
            space[0x40 / 4] = 0x0100_5009; // virtio, next 0x50, type 1 (common)
            space[0x44 / 4] = 4; // BAR 4
            space[0x48 / 4] = 0x0;
            space[0x4c / 4] = 0x1000;
            space[0x50 / 4] = 0x0000_6011; // MSI-X, next 0x60
            space[0x60 / 4] = 0x0300_4009; // virtio, type 3 (ISR), next 0x40: a loop
            space[0x64 / 4] = 4;
            space[0x68 / 4] = 0x1000;
            space[0x6c / 4] = 0x1000;
        }
        let read = |o: u8| f.read(o);
        let list: Vec<(u8, u8)> = capabilities(read).collect();
        assert_eq!(&list[..4], [(0x40, 9), (0x50, 0x11), (0x60, 9), (0x40, 9)]);
        assert_eq!(list.len(), 48, "the loop is cut");
        assert_eq!(virtio_structure(read, 1), Some((4, 0, 0x1000)));
        assert_eq!(virtio_structure(read, 3), Some((4, 0x1000, 0x1000)));
        assert_eq!(virtio_structure(read, 2), None);
        f.space.borrow_mut()[1] = 0x0000_0007; // no capability list
        assert_eq!(capabilities(|o: u8| f.read(o)).count(), 0);
    }

    #[test]
    fn other_functions_look_absent_and_refusals_are_counted() {
        let mut m = Mediated::new(fake());
        let other = DeviceFunction { bus: 0, device: 3, function: 0 };
        assert_eq!(m.read_word(other, 0), u32::MAX);
        m.write_word(other, 0x04, 0);
        assert_eq!(m.read_word(DF, 0x04) & 0xffff, 0x0007, "a write to another function went nowhere");
        assert_eq!(m.read_word(DF, 0), 0x1001_1af4);
        assert_eq!(m.refused(), 0);
    }
}
