/*
 * md: a memory disk, written in the shape of a NetBSD block driver (softc,
 * attach/detach, strategy with asynchronous completion), using nothing
 * but the rumpuser(3) hypercalls. The worked example of docs/porting.md.
 */
#ifndef EXO_MD_H
#define EXO_MD_H

#include <stddef.h>
#include <stdint.h>

#define MD_BSIZE 512

/* A transfer request, in the manner of NetBSD's struct buf. */
struct md_buf {
	int b_flags;			/* B_READ or B_WRITE */
#define B_WRITE 0x0
#define B_READ  0x1
	void *b_data;			/* the caller's buffer */
	size_t b_bcount;		/* bytes to move, a multiple of MD_BSIZE */
	int64_t b_blkno;		/* first block */
	int b_error;			/* set on completion (NetBSD errno) */
	size_t b_resid;			/* bytes not moved */
	void (*b_iodone)(struct md_buf *);	/* called once, from the driver's thread */
	void *b_private;		/* the caller's */
	struct md_buf *b_next;		/* the driver's queue */
};

struct md_softc;

/* Attaches a disk of `nblocks` blocks; 0 or a NetBSD errno. */
int md_attach(uint64_t nblocks, struct md_softc **scp);
/* Queues a transfer; completion comes through bp->b_iodone. */
void md_strategy(struct md_softc *sc, struct md_buf *bp);
/* Disk size in blocks. */
uint64_t md_size(struct md_softc *sc);
/* Transfers completed so far. */
uint64_t md_completed(struct md_softc *sc);
/* Waits for queued transfers, stops the driver thread, frees the disk. */
void md_detach(struct md_softc *sc);

#endif /* EXO_MD_H */
