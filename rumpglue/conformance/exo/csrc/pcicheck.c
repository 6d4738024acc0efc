/*
 * NetBSD's PCI hypercalls (rumpcomp_pci_*) on ExoV6, called as the rump
 * libpci component calls them: a bus scan finds exactly the functions the
 * process was given, a memory BAR maps, DMA memory has physical addresses
 * that virt_to_mach finds again, and interrupts are mapped (establishing
 * them is not there yet, and says so).
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

#define CHECK(c) do { if (!(c)) { snprintf(msg, len, "line %d: %s", __LINE__, #c); return 1; } } while (0)

static int
never(void *arg)
{
	(void)arg;
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
	CHECK(rumpcomp_pci_virt_to_mach(&found) == 0);
	seg.ds_pa = pa;
	seg.ds_len = 8192;
	seg.ds_vacookie = va;
	CHECK(rumpcomp_pci_dmamem_map(&seg, 1, 8192, &p) == 0 && p == (void *)va);
	rumpcomp_pci_dmafree(pa, 8192);
	CHECK(rumpcomp_pci_virt_to_mach((void *)(va + 100)) == 0);

	/* Interrupts: mapped for the own function only; not established yet. */
	CHECK(rumpcomp_pci_irq_map(0, mine, 0, 11, 7) == 0);
	CHECK(rumpcomp_pci_irq_map(0, mine == 0 ? 1 : 0, 0, 11, 8) == 19);
	CHECK(rumpcomp_pci_irq_establish(7, never, NULL) == NULL);
	return 0;
}
