/*
 * md: a memory disk in the shape of a NetBSD block driver, using only the
 * rumpuser(3) hypercalls, so it runs wherever rumpglue does: hosted on
 * Linux today, in an ExoV6 process with the exokernel backend.
 *
 * What it shows (docs/porting.md, "Worked example"):
 *  - memory from rumpuser_malloc, never from the host C library;
 *  - a driver thread from rumpuser_thread_create, joined at detach;
 *  - a kernel mutex and a condition variable guarding the request queue
 *    (blocking calls give the rump CPU back by themselves);
 *  - requests checked before they are queued: a bad one completes at once
 *    with an error, never touches memory outside the disk;
 *  - completion through the request's iodone callback, as biodone does.
 */
#include "md.h"
#include "exo_rumpuser.h"

#define EINVAL 22
#define ENOMEM 12

struct md_softc {
	uint8_t *sc_data;		/* the disk */
	uint64_t sc_nblocks;
	struct rumpuser_mtx *sc_lock;	/* protects everything below */
	struct rumpuser_cv *sc_cv;	/* the queue changed */
	struct md_buf *sc_head, **sc_tailp;
	uint64_t sc_done;
	int sc_dying;
	void *sc_thread;
};

static void
md_copy(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;

	while (n-- > 0)
		*d++ = *s++;
}

static void
md_zero(void *dst, size_t n)
{
	uint8_t *d = dst;

	while (n-- > 0)
		*d++ = 0;
}

/* Does one transfer and completes it. */
static void
md_dotransfer(struct md_softc *sc, struct md_buf *bp)
{
	uint8_t *disk = sc->sc_data + (uint64_t)bp->b_blkno * MD_BSIZE;

	if (bp->b_flags & B_READ)
		md_copy(bp->b_data, disk, bp->b_bcount);
	else
		md_copy(disk, bp->b_data, bp->b_bcount);
	bp->b_error = 0;
	bp->b_resid = 0;
	bp->b_iodone(bp);
}

/* The driver thread: serves the queue until detach. */
static void *
md_worker(void *arg)
{
	struct md_softc *sc = arg;
	struct md_buf *bp;

	rumpuser_mutex_enter(sc->sc_lock);
	for (;;) {
		while (sc->sc_head == NULL && !sc->sc_dying)
			rumpuser_cv_wait(sc->sc_cv, sc->sc_lock);
		if (sc->sc_head == NULL)
			break;		/* dying, and nothing left to do */
		bp = sc->sc_head;
		sc->sc_head = bp->b_next;
		if (sc->sc_head == NULL)
			sc->sc_tailp = &sc->sc_head;
		rumpuser_mutex_exit(sc->sc_lock);

		md_dotransfer(sc, bp);

		rumpuser_mutex_enter(sc->sc_lock);
		sc->sc_done++;
		rumpuser_cv_broadcast(sc->sc_cv);
	}
	rumpuser_mutex_exit(sc->sc_lock);
	return NULL;
}

int
md_attach(uint64_t nblocks, struct md_softc **scp)
{
	struct md_softc *sc;
	void *mem;
	int error;

	if (nblocks == 0 || nblocks > (UINT64_C(1) << 40) / MD_BSIZE)
		return EINVAL;
	if ((error = rumpuser_malloc(sizeof(*sc), 0, &mem)) != 0)
		return error;
	sc = mem;
	md_zero(sc, sizeof(*sc));
	if ((error = rumpuser_malloc(nblocks * MD_BSIZE, 4096, &mem)) != 0) {
		rumpuser_free(sc, sizeof(*sc));
		return error;
	}
	sc->sc_data = mem;
	md_zero(sc->sc_data, nblocks * MD_BSIZE);
	sc->sc_nblocks = nblocks;
	rumpuser_mutex_init(&sc->sc_lock, RUMPUSER_MTX_KMUTEX);
	rumpuser_cv_init(&sc->sc_cv);
	sc->sc_tailp = &sc->sc_head;
	error = rumpuser_thread_create(md_worker, sc, "md0", 1, 0, -1, &sc->sc_thread);
	if (error != 0) {
		rumpuser_cv_destroy(sc->sc_cv);
		rumpuser_mutex_destroy(sc->sc_lock);
		rumpuser_free(sc->sc_data, nblocks * MD_BSIZE);
		rumpuser_free(sc, sizeof(*sc));
		return error;
	}
	*scp = sc;
	return 0;
}

void
md_strategy(struct md_softc *sc, struct md_buf *bp)
{
	uint64_t nblk;

	bp->b_next = NULL;
	/* Refuse what does not fit the disk: complete at once, with EINVAL. */
	if (bp->b_bcount % MD_BSIZE != 0 || bp->b_blkno < 0 ||
	    (uint64_t)bp->b_blkno > sc->sc_nblocks) {
		bp->b_error = EINVAL;
		bp->b_resid = bp->b_bcount;
		bp->b_iodone(bp);
		return;
	}
	nblk = bp->b_bcount / MD_BSIZE;
	if (nblk > sc->sc_nblocks - (uint64_t)bp->b_blkno) {
		bp->b_error = EINVAL;
		bp->b_resid = bp->b_bcount;
		bp->b_iodone(bp);
		return;
	}
	rumpuser_mutex_enter(sc->sc_lock);
	*sc->sc_tailp = bp;
	sc->sc_tailp = &bp->b_next;
	rumpuser_cv_broadcast(sc->sc_cv);
	rumpuser_mutex_exit(sc->sc_lock);
}

uint64_t
md_size(struct md_softc *sc)
{
	return sc->sc_nblocks;
}

uint64_t
md_completed(struct md_softc *sc)
{
	uint64_t n;

	rumpuser_mutex_enter(sc->sc_lock);
	n = sc->sc_done;
	rumpuser_mutex_exit(sc->sc_lock);
	return n;
}

void
md_detach(struct md_softc *sc)
{
	rumpuser_mutex_enter(sc->sc_lock);
	sc->sc_dying = 1;
	rumpuser_cv_broadcast(sc->sc_cv);
	rumpuser_mutex_exit(sc->sc_lock);
	rumpuser_thread_join(sc->sc_thread);	/* it drains the queue first */
	rumpuser_cv_destroy(sc->sc_cv);
	rumpuser_mutex_destroy(sc->sc_lock);
	rumpuser_free(sc->sc_data, sc->sc_nblocks * MD_BSIZE);
	rumpuser_free(sc, sizeof(*sc));
}
