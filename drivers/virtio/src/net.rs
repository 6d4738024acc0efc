//! The network device without waiting: virtio-drivers' `VirtIONetRaw`
//! over frame slots in the driver's DMA memory, which the device reads
//! and fills as they are (no bounce buffers, no allocation per frame).
//!
//! Every receive slot is with the device until a frame lands in it; a
//! frame is copied out and the slot given back at once. Frames to send
//! are copied into a free send slot and queued, and the call returns:
//! slots the device is done with are taken back on later calls. Only
//! when all are in flight does sending wait, for the oldest.
//!
//! This is the one place where the driver hands memory to the device, so
//! the unsafe calls of the raw driver are kept here, each with the slot
//! bookkeeping that makes it sound.

use crate::hal::ExoHal;
use alloc::vec::Vec;
use rumpglue::exo::DMA;
use rumpglue::{DmaRegion, Memory as _};
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::Error;

/// Descriptors in each queue, and so slots each way.
pub const QUEUE: usize = 64;
/// Bytes of a slot: the virtio header and the largest frame fit.
const SLOT: usize = 2048;
/// How many looks at the send queue before a device that takes no frame
/// is called broken.
const SEND_SPINS: u32 = 50_000_000;

/// `QUEUE` slots in one physically contiguous DMA region.
struct Slots {
    region: DmaRegion,
}

impl Slots {
    fn new() -> Result<Slots, Error> {
        let pages = (QUEUE * SLOT).div_ceil(exo_rt::abi::PAGE_SIZE as usize);
        let region = DMA.alloc_dma(pages).map_err(|_| Error::DmaError)?;
        Ok(Slots { region })
    }

    /// Slot `i`.
    ///
    /// # Safety
    ///
    /// The device must not own slot `i` (between `*_begin` and
    /// `*_complete` of it), and no other reference to it may live.
    unsafe fn slot(&mut self, i: usize) -> &mut [u8] {
        assert!(i < QUEUE);
        // SAFETY: the region is QUEUE * SLOT bytes of memory mapped for
        // this process alone, for as long as `self` lives; exclusivity is
        // the caller's promise.
        unsafe { core::slice::from_raw_parts_mut(self.region.virt.add(i * SLOT), SLOT) }
    }
}

/// The device, its slots and which of them it holds.
pub struct Nic {
    raw: VirtIONetRaw<ExoHal, PciTransport, QUEUE>,
    rx: Slots,
    tx: Slots,
    /// By descriptor token: the receive slot the device fills.
    rx_slot: [Option<usize>; QUEUE],
    /// By descriptor token: the send slot and its length, in flight.
    tx_slot: [Option<(usize, usize)>; QUEUE],
    /// Send slots not in flight.
    tx_free: Vec<usize>,
}

impl Nic {
    /// Brings the device up with every receive slot given to it.
    pub fn new(transport: PciTransport) -> Result<Nic, Error> {
        let raw = VirtIONetRaw::new(transport)?;
        let mut nic = Nic {
            raw,
            rx: Slots::new()?,
            tx: Slots::new()?,
            rx_slot: [None; QUEUE],
            tx_slot: [None; QUEUE],
            tx_free: (0..QUEUE).rev().collect(),
        };
        for i in 0..QUEUE {
            nic.give_rx(i)?;
        }
        Ok(nic)
    }

    /// Hands receive slot `i` (not the device's) to the device.
    fn give_rx(&mut self, i: usize) -> Result<(), Error> {
        // SAFETY: slot `i` is ours (fresh, or just completed) and from now
        // on only the device touches it: `rx_slot` records it under its
        // token until `receive_complete`.
        let token = unsafe { self.raw.receive_begin(self.rx.slot(i))? };
        *self.rx_slot.get_mut(token as usize).ok_or(Error::WrongToken)? = Some(i);
        Ok(())
    }

    /// The MAC address.
    pub fn mac_address(&self) -> [u8; 6] {
        self.raw.mac_address()
    }

    /// Acknowledges the device's interrupt.
    pub fn ack_interrupt(&mut self) {
        self.raw.ack_interrupt();
    }

    /// Whether a received frame is waiting.
    pub fn can_recv(&self) -> bool {
        self.raw.poll_receive().is_some()
    }

    /// The next received frame copied into `out` (its length), `Ok(None)`
    /// when none is waiting. A frame longer than `out` is dropped
    /// (`Error::InvalidParam`): the device was not offered larger ones.
    pub fn recv(&mut self, out: &mut [u8]) -> Result<Option<usize>, Error> {
        let Some(token) = self.raw.poll_receive() else { return Ok(None) };
        let i = self.rx_slot.get_mut(token as usize).and_then(Option::take).ok_or(Error::WrongToken)?;
        // SAFETY: the device is done with slot `i` (it used the descriptor
        // chain `token`, which holds exactly that slot).
        let got = unsafe { self.raw.receive_complete(token, self.rx.slot(i)) };
        // SAFETY: completed above; the reference ends before `give_rx`.
        let slot = unsafe { self.rx.slot(i) };
        let copied = got.and_then(|(header, len)| {
            let frame = slot.get(header..header + len).ok_or(Error::IoError)?;
            let dst = out.get_mut(..len).ok_or(Error::InvalidParam)?;
            dst.copy_from_slice(frame);
            Ok(len)
        });
        self.give_rx(i)?;
        copied.map(Some)
    }

    /// Takes back the send slots the device is done with.
    fn reclaim(&mut self) -> Result<(), Error> {
        while let Some(token) = self.raw.poll_transmit() {
            let (i, len) = self.tx_slot.get_mut(token as usize).and_then(Option::take).ok_or(Error::WrongToken)?;
            // SAFETY: the device used chain `token`: slot `i`'s first
            // `len` bytes, as handed over by `send`.
            unsafe { self.raw.transmit_complete(token, &self.tx.slot(i)[..len])? };
            self.tx_free.push(i);
        }
        Ok(())
    }

    /// Queues `frame` for sending and returns; waits only while every
    /// send slot is in flight.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), Error> {
        self.reclaim()?;
        let mut spins = 0;
        while self.tx_free.is_empty() {
            spins += 1;
            if spins > SEND_SPINS {
                return Err(Error::IoError);
            }
            core::hint::spin_loop();
            self.reclaim()?;
        }
        let i = self.tx_free.pop().expect("a free slot");
        // SAFETY: slot `i` was free: the device does not hold it.
        let buf = unsafe { self.tx.slot(i) };
        let header = self.raw.fill_buffer_header(buf)?;
        let len = header + frame.len();
        let Some(dst) = buf.get_mut(header..len) else {
            self.tx_free.push(i);
            return Err(Error::InvalidParam);
        };
        dst.copy_from_slice(frame);
        // SAFETY: slot `i` now belongs to the device until `reclaim` sees
        // its token completed; `tx_slot` remembers it and its length.
        match unsafe { self.raw.transmit_begin(&buf[..len]) } {
            Ok(token) => {
                *self.tx_slot.get_mut(token as usize).ok_or(Error::WrongToken)? = Some((i, len));
                Ok(())
            }
            Err(e) => {
                self.tx_free.push(i);
                Err(e)
            }
        }
    }
}
