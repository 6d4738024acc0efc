//! The network device, driven on virtio-drivers' queues directly: frame
//! slots in the driver's DMA memory, which the device reads and fills as
//! they are (no bounce buffers, no allocation per frame), and the device
//! told of new buffers once a batch, not once a frame.
//!
//! Why not `VirtIONetRaw`: it notifies the device after every buffer, and
//! with `VIRTIO_F_EVENT_IDX` it does so whether the device asked or not;
//! each notification is a trap into the hypervisor. Here the event index
//! is not negotiated: the device says with its `NO_NOTIFY` flag whether
//! it wants to hear, and once a batch of receive slots has been given back
//! (or frames queued) it is told at most once.
//!
//! Interrupts, as NAPI does it: the first received frame interrupts, and
//! a receive that finds frames turns the receive interrupt off until a
//! receive finds the queue empty, when it is turned on again and the queue
//! looked at once more (a frame that came in between is not missed).
//!
//! Received frames are copied out of their slots, or lent: the client
//! reads them where the device put them (through a read-only mapping of
//! the slots) and their slots go back to the device when it asks for the
//! next frames ([`Nic::recv_lent`]).
//!
//! Sending does not wait: a frame is copied into a free send slot and
//! queued; slots the device is done with are taken back on later calls.
//! Only when all are in flight does sending wait, for the oldest.
//!
//! The unsafe calls of the queues are all here, each with the slot
//! bookkeeping that makes it sound.

use crate::hal::ExoHal;
use alloc::vec::Vec;
use bitflags::bitflags;
use rumpglue::exo::DMA;
use rumpglue::{DmaRegion, Memory as _};
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::Transport;
use virtio_drivers::Error;

/// Descriptors in each queue, and so slots each way.
pub const QUEUE: usize = 64;
/// Bytes of a slot: the virtio header and the largest frame fit.
const SLOT: usize = 2048;
/// The largest frame the device may hand us (Ethernet, no offloads).
const MAX_FRAME: usize = 1514;
/// How many looks at the send queue before a device that takes no frame
/// is called broken.
const SEND_SPINS: u32 = 50_000_000;
/// Queue numbers.
const RX: u16 = 0;
const TX: u16 = 1;

bitflags! {
    /// The features this driver takes (virtio 1.x, 5.1.3).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Features: u64 {
        /// The device has a MAC address in its configuration.
        const MAC = 1 << 5;
        /// Virtio 1.x (the header has `num_buffers`).
        const VERSION_1 = 1 << 32;
    }
}

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
    /// The device must not hold slot `i` (between `add` and `pop_used` of
    /// it), and no other reference to it may live.
    unsafe fn slot(&mut self, i: usize) -> &mut [u8] {
        assert!(i < QUEUE);
        // SAFETY: the region is QUEUE * SLOT bytes of memory mapped for
        // this process alone, for as long as `self` lives; exclusivity is
        // the caller's promise.
        unsafe { core::slice::from_raw_parts_mut(self.region.virt.add(i * SLOT), SLOT) }
    }
}

/// The device, its queues, its slots and which of them it holds.
pub struct Nic {
    transport: PciTransport,
    rx: VirtQueue<ExoHal, QUEUE>,
    tx: VirtQueue<ExoHal, QUEUE>,
    rx_slots: Slots,
    tx_slots: Slots,
    /// Bytes of the virtio header before each frame.
    header: usize,
    mac: [u8; 6],
    /// By descriptor token: the receive slot the device fills.
    rx_slot: [Option<usize>; QUEUE],
    /// Receive slots emptied and not yet given back.
    rx_free: Vec<usize>,
    /// Receive slots whose frames are lent to the client.
    rx_lent: Vec<usize>,
    /// By descriptor token: the send slot and its length, in flight.
    tx_slot: [Option<(usize, usize)>; QUEUE],
    /// Send slots not in flight.
    tx_free: Vec<usize>,
}

impl Nic {
    /// Brings the device up with every receive slot given to it.
    pub fn new(mut transport: PciTransport) -> Result<Nic, Error> {
        let features = transport.begin_init(Features::MAC | Features::VERSION_1);
        let mut mac = [0u8; 6];
        for (i, b) in mac.iter_mut().enumerate() {
            *b = transport.read_config_space::<u8>(i)?;
        }
        let rx = VirtQueue::new(&mut transport, RX, false, false)?;
        let mut tx = VirtQueue::new(&mut transport, TX, false, false)?;
        transport.finish_init();
        // Sent frames are taken back when we next send: no interrupts.
        tx.set_dev_notify(false);
        // virtio_net_hdr: 10 bytes, 12 with num_buffers (virtio 1.x).
        let header = if features.contains(Features::VERSION_1) { 12 } else { 10 };
        let mut nic = Nic {
            transport,
            rx,
            tx,
            rx_slots: Slots::new()?,
            tx_slots: Slots::new()?,
            header,
            mac,
            rx_slot: [None; QUEUE],
            rx_free: (0..QUEUE).collect(),
            rx_lent: Vec::new(),
            tx_slot: [None; QUEUE],
            tx_free: (0..QUEUE).rev().collect(),
        };
        nic.refill()?;
        Ok(nic)
    }

    /// Gives the emptied receive slots back to the device, and tells it
    /// once if it wants to hear.
    fn refill(&mut self) -> Result<(), Error> {
        let given = !self.rx_free.is_empty();
        while let Some(i) = self.rx_free.pop() {
            // SAFETY: slot `i` is ours (fresh, or emptied by `recv`); from
            // now on only the device touches it, and `rx_slot` records it
            // under its token until `pop_used`.
            let token = unsafe { self.rx.add(&[], &mut [self.rx_slots.slot(i)]) };
            let token = match token {
                Ok(t) => t,
                Err(e) => {
                    self.rx_free.push(i);
                    return Err(e);
                }
            };
            *self.rx_slot.get_mut(token as usize).ok_or(Error::WrongToken)? = Some(i);
        }
        if given && self.rx.should_notify() {
            self.transport.notify(RX);
        }
        Ok(())
    }

    /// The MAC address.
    pub fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    /// Whether a received frame is waiting.
    pub fn can_recv(&self) -> bool {
        self.rx.can_pop()
    }

    /// Turns the receive interrupt off, until a receive empties the queue.
    pub fn quiet(&mut self) {
        self.rx.set_dev_notify(false);
    }

    /// Starts the receive interrupt: on until frames come, as at the end
    /// of a receive that emptied the queue.
    pub fn listen(&mut self) {
        self.rx.set_dev_notify(true);
    }

    /// Hands received frames to `take`, in order, while it returns true
    /// and frames are waiting; gives their slots back to the device at
    /// the end. When the queue is found empty the receive interrupt is
    /// turned on again. Whether more frames are waiting.
    pub fn recv(&mut self, mut take: impl FnMut(&[u8]) -> bool) -> Result<bool, Error> {
        self.receive(false, |frame, _| take(frame))
    }

    /// As [`Nic::recv`], but lends the frames: `take` gets where each lies
    /// in the receive memory ([`Nic::rx_memory`]) and its length, and the
    /// slots stay out of the device's reach until the next call (or
    /// [`Nic::give_back`]). The frames lent before are given back first.
    pub fn recv_lent(&mut self, mut take: impl FnMut(u32, u16) -> bool) -> Result<bool, Error> {
        self.give_back();
        self.receive(true, |frame, offset| take(offset, frame.len() as u16))
    }

    /// Gives the slots of lent frames back (to the device at the next
    /// receive): the client will not read them again.
    pub fn give_back(&mut self) {
        self.rx_free.append(&mut self.rx_lent);
    }

    /// The receive memory (every slot; frames lent lie in it), and its
    /// length.
    pub fn rx_memory(&self) -> Option<(exo_rt::caps::Memory, usize)> {
        DMA.memory(self.rx_slots.region.phys).map(|m| (m, self.rx_slots.region.len))
    }

    /// The receive loop of [`Nic::recv`] and [`Nic::recv_lent`]: `take`
    /// gets each frame and its offset in the receive memory; its slot is
    /// emptied, or `lend`s.
    fn receive(&mut self, lend: bool, mut take: impl FnMut(&[u8], u32) -> bool) -> Result<bool, Error> {
        if self.rx.can_pop() {
            self.quiet(); // the client is here: no interrupts while it drains
        }
        let result = loop {
            let Some(token) = self.rx.peek_used() else {
                // Empty: interrupts on, then one more look, for a frame
                // that came before the device saw them on.
                self.listen();
                if self.rx.can_pop() {
                    self.quiet();
                    continue;
                }
                break Ok(false);
            };
            let Some(i) = self.rx_slot.get_mut(token as usize).and_then(Option::take) else {
                break Err(Error::WrongToken);
            };
            // SAFETY: the device is done with slot `i`: it used the chain
            // `token`, which holds exactly that slot, given by `refill`.
            let len = unsafe { self.rx.pop_used(token, &[], &mut [self.rx_slots.slot(i)]) };
            let len = match len {
                Ok(len) => len as usize,
                Err(e) => {
                    self.rx_free.push(i);
                    break Err(e);
                }
            };
            // A frame longer than offered (or shorter than its header) is
            // dropped, as a network would, and its slot goes back.
            if len <= self.header || len - self.header > MAX_FRAME {
                self.rx_free.push(i);
                continue;
            }
            if lend {
                self.rx_lent.push(i);
            } else {
                self.rx_free.push(i);
            }
            // SAFETY: popped above; the reference ends before `refill`,
            // and a lent slot is not given to the device again before
            // `give_back`.
            let slot = unsafe { self.rx_slots.slot(i) };
            let offset = (i * SLOT + self.header) as u32;
            if !take(&slot[self.header..len], offset) {
                break Ok(true);
            }
        };
        self.refill()?;
        result
    }

    /// Takes back the send slots the device is done with.
    fn reclaim(&mut self) -> Result<(), Error> {
        while let Some(token) = self.tx.peek_used() {
            let (i, len) = self.tx_slot.get_mut(token as usize).and_then(Option::take).ok_or(Error::WrongToken)?;
            // SAFETY: the device used chain `token`: slot `i`'s first
            // `len` bytes, as `send` handed them over.
            unsafe { self.tx.pop_used(token, &[&self.tx_slots.slot(i)[..len]], &mut [])? };
            self.tx_free.push(i);
        }
        Ok(())
    }

    /// Queues `frames` for sending, tells the device once, and returns;
    /// waits only while every send slot is in flight.
    pub fn send<'a>(&mut self, frames: impl IntoIterator<Item = &'a [u8]>) -> Result<(), Error> {
        let mut queued = false;
        let mut result = Ok(());
        for frame in frames {
            if let Err(e) = self.queue(frame, queued) {
                result = Err(e);
                break;
            }
            queued = true;
        }
        if queued {
            self.kick();
        }
        result
    }

    /// Puts `frame` in a free send slot and hands it to the device, once a
    /// slot is free (the device told of the frames already `queued`, so
    /// that one comes free).
    fn queue(&mut self, frame: &[u8], queued: bool) -> Result<(), Error> {
        if frame.len() > MAX_FRAME {
            return Err(Error::InvalidParam);
        }
        self.reclaim()?;
        if self.tx_free.is_empty() && queued {
            self.kick();
        }
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
        let len = self.header + frame.len();
        // SAFETY: slot `i` was free: the device does not hold it.
        let buf = unsafe { self.tx_slots.slot(i) };
        buf[..self.header].fill(0); // no offloads asked
        buf[self.header..len].copy_from_slice(frame);
        // SAFETY: slot `i` now belongs to the device until `reclaim` sees
        // its token used; `tx_slot` remembers it and its length.
        match unsafe { self.tx.add(&[&buf[..len]], &mut []) } {
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

    /// Tells the device of the frames queued, if it wants to hear.
    fn kick(&mut self) {
        if self.tx.should_notify() {
            self.transport.notify(TX);
        }
    }
}
