//! A driver's PCI function, brought up as a virtio-drivers transport.

use crate::hal::{self, ExoHal};
use exo_drivers::config::{self, FunctionConfig, Mediated};
use exo_rt::abi::{slot, MSI_ADDRESS, PAGE_SIZE};
use exo_rt::caps::{self, Notification, PciFunction, Untyped};
use virtio_drivers::transport::pci::bus::{DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::PciTransport;

/// The function capability, as `exo_drivers::config` wants it.
struct Function {
    f: PciFunction,
    sizes: [Option<u64>; 6],
}

impl FunctionConfig for Function {
    fn function(&self) -> DeviceFunction {
        let b = self.f.bdf();
        DeviceFunction { bus: (b >> 8) as u8, device: (b >> 3) as u8 & 31, function: b as u8 & 7 }
    }
    fn read(&self, offset: u8) -> Option<u32> {
        self.f.read(offset, 4).ok()
    }
    fn write(&mut self, offset: u8, value: u32) -> bool {
        self.f.write(offset, 4, value).is_ok()
    }
    fn bar_size(&self, bar: u8) -> Option<u64> {
        self.sizes.get(bar as usize).copied().flatten()
    }
    fn duplicate(&self) -> Self {
        Function { f: self.f, sizes: self.sizes }
    }
}

/// The driver's device: its function and the transport to it.
pub struct Device {
    /// The function capability.
    pub function: PciFunction,
    /// Where it is.
    pub df: DeviceFunction,
    /// virtio-drivers' view of it.
    pub transport: PciTransport,
}

impl Device {
    /// The function in device slot 0, with every memory BAR the kernel
    /// gives mapped, as a virtio PCI transport. `kind` names the manifest
    /// device for the error message.
    pub fn open(kind: &str) -> Result<Device, alloc::string::String> {
        let f = PciFunction::from_slot(exo_manifest::DEVICE_SLOT_BASE).map_err(|e| {
            alloc::format!("no PCI function in device slot 0 ({}): list `devices = {kind}` in the manifest", e.name())
        })?;
        let mut sizes = [None; 6];
        for (bar, size) in sizes.iter_mut().enumerate() {
            let Ok(mem) = f.bar(bar as u8) else { continue };
            let (Ok(info), Ok(phys)) = (caps::info(mem.slot()), mem.phys(0)) else { continue };
            if hal::add_bar(bar as u8, mem, phys, info.pages).is_ok() {
                *size = Some(info.pages * PAGE_SIZE);
            }
        }
        // Memory decoding and bus mastering on, whatever an instance
        // before this one left: one killed while virtio-drivers sized a
        // BAR (decoding off, between two configuration writes) left the
        // device's registers unreachable to every later instance.
        let command = f.read(0x04, 2).map_err(|e| alloc::format!("command register unreadable: {}", e.name()))?;
        f.write(0x04, 2, command | COMMAND_MEMORY | COMMAND_MASTER)
            .map_err(|e| alloc::format!("command register not writable: {}", e.name()))?;
        let function = Function { f, sizes };
        let df = function.function();
        let mut root = PciRoot::new(Mediated::new(function));
        let transport = PciTransport::new::<ExoHal, _>(&mut root, df)
            .map_err(|e| alloc::format!("{df}: not a usable virtio device: {e}"))?;
        Ok(Device { function: f, df, transport })
    }
}

/// Command register bits: memory space decoding, bus mastering.
const COMMAND_MEMORY: u32 = 1 << 1;
const COMMAND_MASTER: u32 = 1 << 2;

/// The notification bit the device's interrupt sets.
pub const IRQ_BIT: u64 = 1;

/// Offsets in the virtio 1.x common configuration structure.
const MSIX_CONFIG: u64 = 0x10;
const QUEUE_SELECT: u64 = 0x16;
const QUEUE_MSIX_VECTOR: u64 = 0x1a;
/// "No vector" in the virtio MSI-X registers.
const NO_VECTOR: u16 = 0xffff;

/// Points MSI-X table entry 0 (which [`enable_interrupts`] set up) at a
/// new vector that signals `bits` on `note`: a client's notification, so
/// that the device's interrupts wake the client without waking the
/// driver. The vector bound before stays bound (the kernel frees vectors
/// with the function capability); the kernel allows a function a few, and
/// when none is left the entry is pointed at `fallback` (the driver's own
/// vector) and the error returned.
pub fn redirect_interrupts(f: PciFunction, note: Notification, bits: u64, fallback: u64) -> Result<u64, &'static str> {
    let read = |o: u8| f.read(o, 4).ok();
    let (msix, _) = config::capabilities(read).find(|(_, id)| *id == config::CAP_MSIX).ok_or("no MSI-X capability")?;
    let table = f.read(msix + 4, 4).map_err(|_| "MSI-X table unreadable")?;
    let (table_bar, table_offset) = ((table & 7) as u8, (table & !7) as u64);
    let (table_va, table_size) = hal::bar(table_bar).ok_or("MSI-X table in a BAR we do not have")?;
    if table_offset + 16 > table_size {
        return Err("MSI-X table outside its BAR");
    }
    let bound = f.irq_bind(note, bits);
    let vector = *bound.as_ref().unwrap_or(&fallback);
    let entry = (table_va + table_offset) as *mut u32;
    // SAFETY: entry 0 of the MSI-X table, inside a BAR mapped read-write
    // (checked above); device registers take volatile accesses only. The
    // entry is masked while its data changes (an interrupt meanwhile is
    // held pending by the device and sent with the new data).
    unsafe {
        entry.add(3).write_volatile(1);
        entry.add(2).write_volatile(vector as u32);
        entry.add(3).write_volatile(0);
    }
    bound.map_err(|_| "no interrupt vector left for the function")
}

/// Routes the interrupts of the device's `queues` to a new notification
/// (bit [`IRQ_BIT`]): a vector from the kernel (`irq_bind`), MSI-X table
/// entry 0 pointed at it and MSI-X enabled, then each queue told to use
/// entry 0 (and configuration changes no entry).
pub fn enable_interrupts(f: PciFunction, queues: &[u16]) -> Result<(Notification, u64), &'static str> {
    let read = |o: u8| f.read(o, 4).ok();
    let (msix, _) = config::capabilities(read).find(|(_, id)| *id == config::CAP_MSIX).ok_or("no MSI-X capability")?;
    let control = f.read(msix + 2, 2).map_err(|_| "MSI-X control unreadable")?;
    let table = f.read(msix + 4, 4).map_err(|_| "MSI-X table unreadable")?;
    let (table_bar, table_offset) = ((table & 7) as u8, (table & !7) as u64);
    let (common_bar, common_offset, _) = config::virtio_structure(read, 1).ok_or("no common configuration")?;
    let (table_va, table_size) = hal::bar(table_bar).ok_or("MSI-X table in a BAR we do not have")?;
    let (common_va, common_size) = hal::bar(common_bar).ok_or("common configuration in a BAR we do not have")?;
    if table_offset + 16 > table_size || common_offset as u64 + 0x20 > common_size {
        return Err("MSI-X table or common configuration outside its BAR");
    }
    let note = Untyped::from_slot(slot::UNTYPED).create_notification().map_err(|_| "no notification")?;
    let vector = f.irq_bind(note, IRQ_BIT).map_err(|_| "no interrupt vector")?;
    let entry = (table_va + table_offset) as *mut u32;
    let common = common_va + common_offset as u64;
    // SAFETY: entry 0 of the MSI-X table and the common configuration lie
    // inside BARs mapped read-write (checked above); device registers are
    // accessed with volatile writes only.
    let vector_taken = unsafe {
        entry.write_volatile(MSI_ADDRESS as u32); // message address
        entry.add(1).write_volatile((MSI_ADDRESS >> 32) as u32);
        entry.add(2).write_volatile(vector as u32); // message data
        entry.add(3).write_volatile(0); // unmasked
        ((common + MSIX_CONFIG) as *mut u16).write_volatile(NO_VECTOR);
        queues.iter().all(|q| {
            ((common + QUEUE_SELECT) as *mut u16).write_volatile(*q);
            ((common + QUEUE_MSIX_VECTOR) as *mut u16).write_volatile(0);
            ((common + QUEUE_MSIX_VECTOR) as *mut u16).read_volatile() == 0
        })
    };
    // Enable MSI-X, function not masked.
    f.write(msix + 2, 2, (control | 0x8000) & !0x4000).map_err(|_| "MSI-X could not be enabled")?;
    if !vector_taken {
        return Err("the device took no MSI-X vector for a queue");
    }
    Ok((note, vector))
}
