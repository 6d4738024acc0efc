/*
 * NetBSD's PCI hypercalls (rumpcomp_pci_*) on ExoV6, called as the rump
 * libpci component calls them: a bus scan finds exactly the functions the
 * process was given, a memory BAR maps, DMA memory has physical addresses
 * that virt_to_mach finds again, the I/O BAR opens to in/out, and an
 * established interrupt runs its handler: one read request through a
 * legacy virtio queue, driven here by hand as NetBSD's virtio driver
 * would, raises the device's INTx line.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct rumpcomp_pci_dmaseg {
	unsigned long ds_pa;
	unsigned long ds_len;
	unsigned long ds_vacookie;
};

/* The rump libpci component's pci_user.h. */
void *rumpcomp_pci_map(unsigned long, unsigned long);
int rumpcomp_pci_confread(unsigned, unsigned, unsigned, int, unsigned int *);
int rumpcomp_pci_confwrite(unsigned, unsigned, unsigned, int, unsigned int);
int rumpcomp_pci_irq_map(unsigned, unsigned, unsigned, int, unsigned);
void *rumpcomp_pci_irq_establish(unsigned, int (*)(void *), void *);
int rumpcomp_pci_dmalloc(size_t, size_t, unsigned long *, unsigned long *);
void rumpcomp_pci_dmafree(unsigned long, size_t);
int rumpcomp_pci_dmamem_map(struct rumpcomp_pci_dmaseg *, size_t, size_t, void **);
unsigned long rumpcomp_pci_virt_to_mach(void *);
int rumpcomp_pci_iospace_init(void);
int rumpuser_clock_sleep(int, int64_t, long);

static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "d"(port)); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "d"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "d"(port)); return v; }
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "d"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "d"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "d"(port)); }

/* Legacy virtio PCI registers (I/O BAR 0). */
#define VIO_HOST_FEATURES 0
#define VIO_GUEST_FEATURES 4
#define VIO_QUEUE_PFN 8
#define VIO_QUEUE_SIZE 12
#define VIO_QUEUE_SELECT 14
#define VIO_QUEUE_NOTIFY 16
#define VIO_STATUS 18
#define VIO_ISR 19

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

#define CHECK(c) do { if (!(c)) { snprintf(msg, len, "line %d: %s", __LINE__, #c); return 1; } } while (0)

static volatile int interrupts;
static uint16_t io_base;

/* The interrupt handler, as virtio's: reading the ISR acknowledges. */
static int
handler(void *arg)
{
	(void)arg;
	if (inb(io_base + VIO_ISR) == 0)
		return 0;
	interrupts++;
	return 1;
}

#define ALIGN4K(x) (((x) + 4095UL) & ~4095UL)

/*
 * One read of sector 0 through virtqueue 0 of the legacy virtio-blk
 * device at I/O port `base`: 0, or the line that failed.
 */
static int
virtio_read(char *msg, size_t len, uint16_t base)
{
	unsigned long rpa, rva, qpa, qva, n, used_off, i;
	struct vring_desc *desc;
	volatile uint16_t *avail, *used;
	volatile uint8_t *status;

	outb(base + VIO_STATUS, 0);		/* reset */
	outb(base + VIO_STATUS, 1 | 2);		/* acknowledge, driver */
	CHECK(inl(base + VIO_HOST_FEATURES) != 0xffffffffu);
	outl(base + VIO_GUEST_FEATURES, 0);
	outw(base + VIO_QUEUE_SELECT, 0);
	n = inw(base + VIO_QUEUE_SIZE);
	CHECK(n >= 4 && n <= 1024);
	used_off = ALIGN4K(16 * n + 6 + 2 * n);
	CHECK(rumpcomp_pci_dmalloc(used_off + ALIGN4K(6 + 8 * n), 4096, &qpa, &qva) == 0);
	CHECK(rumpcomp_pci_dmalloc(4096, 4096, &rpa, &rva) == 0);
	for (i = 0; i < used_off + ALIGN4K(6 + 8 * n); i++)
		((volatile char *)qva)[i] = 0;
	outl(base + VIO_QUEUE_PFN, (uint32_t)(qpa >> 12));
	outb(base + VIO_STATUS, 1 | 2 | 4);	/* driver ready */

	/* Header (read sector 0) at 0, data at 512, status byte at 1024. */
	((volatile uint32_t *)rva)[0] = 0;
	((volatile uint32_t *)rva)[1] = 0;
	((volatile uint64_t *)rva)[1] = 0;
	status = (volatile uint8_t *)(rva + 1024);
	*status = 0xff;
	desc = (struct vring_desc *)qva;
	desc[0] = (struct vring_desc){ rpa, 16, 1, 1 };
	desc[1] = (struct vring_desc){ rpa + 512, 512, 1 | 2, 2 };
	desc[2] = (struct vring_desc){ rpa + 1024, 1, 2, 0 };
	avail = (volatile uint16_t *)(qva + 16 * n);
	avail[2] = 0;				/* ring[0]: descriptor 0 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	avail[1] = 1;				/* idx */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	outw(base + VIO_QUEUE_NOTIFY, 0);

	/* The device answers by interrupt: wait up to 10 s for the handler. */
	for (i = 0; i < 1000 && interrupts == 0; i++)
		rumpuser_clock_sleep(0, 0, 10 * 1000 * 1000);
	CHECK(interrupts == 1);
	used = (volatile uint16_t *)(qva + used_off);
	CHECK(used[1] == 1);			/* used idx */
	CHECK(*status == 0);			/* VIRTIO_BLK_S_OK */
	outb(base + VIO_STATUS, 0);		/* reset: no more DMA */
	rumpcomp_pci_dmafree(rpa, 4096);
	rumpcomp_pci_dmafree(qpa, used_off + ALIGN4K(6 + 8 * n));
	return 0;
}

int
pci_check(char *msg, size_t len)
{
	unsigned int v, id = 0, bar, hi;
	unsigned dev, found = 0, mine = 0;
	int b, mapped = 0;
	unsigned long pa, va;
	void *p;
	struct rumpcomp_pci_dmaseg seg;

	/* Bus 0: only the process's own function answers. */
	for (dev = 0; dev < 32; dev++) {
		CHECK(rumpcomp_pci_confread(0, dev, 0, 0, &v) == 0);
		if (v != 0xffffffffu) {
			found++;
			mine = dev;
			id = v;
		}
	}
	CHECK(found == 1);
	CHECK(id == 0x10011af4u);	/* virtio-blk, transitional */
	/* Writes elsewhere are dropped, reads still see nothing there. */
	CHECK(rumpcomp_pci_confwrite(0, mine == 0 ? 1 : 0, 0, 4, 7) == 0);
	CHECK(rumpcomp_pci_confread(0, mine == 0 ? 1 : 0, 0, 0, &v) == 0 && v == 0xffffffffu);

	/* Every memory BAR maps, and an address in none does not. */
	for (b = 0; b < 6; b++) {
		CHECK(rumpcomp_pci_confread(0, mine, 0, 0x10 + 4 * b, &bar) == 0);
		if (bar == 0 || (bar & 1) != 0)
			continue;	/* unused, or I/O space */
		pa = bar & ~0xfUL;
		if ((bar & 6) == 4) {	/* 64-bit: the next register is the top */
			CHECK(rumpcomp_pci_confread(0, mine, 0, 0x14 + 4 * b, &hi) == 0);
			pa |= (unsigned long)hi << 32;
			b++;
		}
		p = rumpcomp_pci_map(pa, 4096);
		CHECK(p != NULL);
		CHECK(rumpcomp_pci_map(pa, 4096) == p);	/* mapped once */
		(void)*(volatile uint32_t *)p;
		mapped++;
	}
	CHECK(mapped >= 1);
	CHECK(rumpcomp_pci_map(0x1000, 4096) == NULL);

	/* DMA memory: page-aligned, its physical address found again. */
	CHECK(rumpcomp_pci_dmalloc(8192, 4096, &pa, &va) == 0);
	CHECK(pa != 0 && (pa & 4095) == 0 && va != 0);
	((volatile char *)va)[8191] = 1;
	CHECK(rumpcomp_pci_virt_to_mach((void *)(va + 100)) == pa + 100);
	seg.ds_pa = pa;
	seg.ds_len = 8192;
	seg.ds_vacookie = va;
	CHECK(rumpcomp_pci_dmamem_map(&seg, 1, 8192, &p) == 0 && p == (void *)va);
	rumpcomp_pci_dmafree(pa, 8192);

	/* I/O space: BAR 0 of a transitional virtio device, open to in/out. */
	CHECK(rumpcomp_pci_confread(0, mine, 0, 0x10, &bar) == 0 && (bar & 1) == 1);
	io_base = (uint16_t)(bar & ~3u);
	CHECK(rumpcomp_pci_iospace_init() == 0);

	/* Interrupts: mapped for the own function only; an unmapped cookie
	 * is not established, a mapped one runs its handler. */
	CHECK(rumpcomp_pci_irq_map(0, mine, 0, 11, 7) == 0);
	CHECK(rumpcomp_pci_irq_map(0, mine == 0 ? 1 : 0, 0, 11, 8) == 19);
	CHECK(rumpcomp_pci_irq_establish(8, handler, NULL) == NULL);
	CHECK(rumpcomp_pci_irq_establish(7, handler, NULL) != NULL);
	return virtio_read(msg, len, io_base);
}
