/*
 * rumpuser(3) conformance cases, calling the hypercalls as a rump kernel
 * does. A small fake rump kernel provides the upcalls: one virtual CPU,
 * built only from the _nowrap hypercalls (which never call back), and
 * per-thread counters that let the cases check the scheduling contract.
 * No pthreads: the same file is meant to run against other backends.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "exo_rumpuser.h"

struct lwp { int id; };

static struct rumpuser_mtx *cpu_mtx;
static struct rumpuser_cv *cpu_cv;
static int cpu_busy;
static _Thread_local int on_cpu;
static _Thread_local int unscheds, scheds;
static _Thread_local int biglocks = 3;	/* handed out and checked back */
static int lwp_ids;

#define CHECK(c) do { if (!(c)) { snprintf(msg, len, "line %d: %s", __LINE__, #c); return 1; } } while (0)
#define CHECKV(c, v) do { if (!(c)) { snprintf(msg, len, "line %d: %s (got %ld)", __LINE__, #c, (long)(v)); return 1; } } while (0)

static void
hyp_schedule(void)
{
	rumpuser_mutex_enter_nowrap(cpu_mtx);
	while (cpu_busy)
		rumpuser_cv_wait_nowrap(cpu_cv, cpu_mtx);
	cpu_busy = 1;
	on_cpu = 1;
	rumpuser_mutex_exit(cpu_mtx);
}

static void
hyp_unschedule(void)
{
	if (!on_cpu) {
		fprintf(stderr, "fake kernel: unschedule without the CPU\n");
		abort();
	}
	rumpuser_mutex_enter_nowrap(cpu_mtx);
	cpu_busy = 0;
	on_cpu = 0;
	rumpuser_cv_broadcast(cpu_cv);
	rumpuser_mutex_exit(cpu_mtx);
}

static void
hyp_backend_unschedule(int nlocks, int *countp, void *interlock)
{
	unscheds++;
	*countp = biglocks;
	hyp_unschedule();
}

static void
hyp_backend_schedule(int nlocks, void *interlock)
{
	scheds++;
	if (nlocks != biglocks) {
		fprintf(stderr, "fake kernel: %d big locks came back, %d went\n", nlocks, biglocks);
		abort();
	}
	hyp_schedule();
}

static void
hyp_backend_schedule0(int nlocks, void *interlock)
{
	/* bio completions schedule with 0 locks */
	scheds++;
	hyp_schedule();
}

static int
hyp_newlwp(int32_t pid)
{
	struct lwp *l = malloc(sizeof(*l));

	l->id = __atomic_add_fetch(&lwp_ids, 1, __ATOMIC_SEQ_CST);
	rumpuser_curlwpop(RUMPUSER_LWP_CREATE, l);
	rumpuser_curlwpop(RUMPUSER_LWP_SET, l);
	return 0;
}

static struct lwp *
hyp_curlwp(void)
{
	return rumpuser_curlwp();
}

static void
unexpected(void)
{
	fprintf(stderr, "fake kernel: unexpected upcall\n");
	abort();
}

static void
dispatch_schedule(int nlocks, void *interlock)
{
	if (nlocks == 0)
		hyp_backend_schedule0(nlocks, interlock);
	else
		hyp_backend_schedule(nlocks, interlock);
}

static struct rumpuser_hyperup fake = {
	.hyp_schedule = hyp_schedule,
	.hyp_unschedule = hyp_unschedule,
	.hyp_backend_unschedule = hyp_backend_unschedule,
	.hyp_backend_schedule = dispatch_schedule,
	.hyp_lwproc_switch = (void (*)(struct lwp *))unexpected,
	.hyp_lwproc_release = unexpected,
	.hyp_lwproc_newlwp = hyp_newlwp,
	.hyp_lwproc_curlwp = hyp_curlwp,
	.hyp_lwpexit = unexpected,
};

int
conf_setup(void)
{
	static int done;

	if (done)
		return 0;
	rumpuser_mutex_init(&cpu_mtx, RUMPUSER_MTX_SPIN);
	rumpuser_cv_init(&cpu_cv);
	done = 1;
	return rumpuser_init(RUMPUSER_VERSION, &fake);
}

static int64_t
now_ns(void)
{
	int64_t s;
	long ns;

	rumpuser_clock_gettime(RUMPUSER_CLOCK_ABSMONO, &s, &ns);
	return s * 1000000000 + ns;
}

int
conf_init_version(char *msg, size_t len)
{
	CHECKV(rumpuser_init(16, &fake) == 75, rumpuser_init(16, &fake));
	CHECK(rumpuser_init(RUMPUSER_VERSION, &fake) == 0);
	return 0;
}

/* A contended mutex_enter gives the CPU back while it blocks. */
static struct rumpuser_mtx *m;
static volatile int b_got;

static void *
contender(void *arg)
{
	hyp_schedule();
	rumpuser_mutex_enter(m);	/* held by main: must unschedule */
	b_got = 1;
	rumpuser_mutex_exit(m);
	hyp_unschedule();
	return NULL;
}

int
conf_mutex_enter_unschedules(char *msg, size_t len)
{
	void *cookie;
	struct lwp *owner;
	int n;

	hyp_schedule();
	hyp_newlwp(0);
	rumpuser_mutex_init(&m, RUMPUSER_MTX_KMUTEX);
	rumpuser_mutex_enter(m);
	rumpuser_mutex_owner(m, &owner);
	CHECK(owner == rumpuser_curlwp() && owner != NULL);
	CHECK(rumpuser_thread_create(contender, NULL, "contender", 1, 0, -1, &cookie) == 0);
	n = unscheds;
	rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 0, 50000000);	/* B takes the CPU, blocks on m */
	CHECK(unscheds == n + 1);
	CHECK(b_got == 0);
	rumpuser_mutex_exit(m);		/* only reached if B gave the CPU back */
	CHECK(rumpuser_thread_join(cookie) == 0);
	CHECK(b_got == 1);
	CHECK(rumpuser_mutex_tryenter(m) == 0);
	CHECK(rumpuser_mutex_tryenter(m) != 0);
	rumpuser_mutex_exit(m);
	rumpuser_mutex_owner(m, &owner);
	CHECK(owner == NULL);
	rumpuser_mutex_destroy(m);
	rumpuser_curlwpop(RUMPUSER_LWP_CLEAR, rumpuser_curlwp());
	hyp_unschedule();
	return 0;
}

int
conf_cv_timedwait(char *msg, size_t len)
{
	struct rumpuser_mtx *mx;
	struct rumpuser_cv *cv;
	int64_t t0, waited;
	int rv, w;

	hyp_schedule();
	rumpuser_mutex_init(&mx, RUMPUSER_MTX_KMUTEX);
	rumpuser_cv_init(&cv);
	rumpuser_mutex_enter(mx);
	t0 = now_ns();
	rv = rumpuser_cv_timedwait(cv, mx, 0, 30000000);
	waited = now_ns() - t0;
	CHECKV(rv == 60, rv);
	CHECKV(waited >= 30000000, waited);
	CHECK(on_cpu);
	CHECK(rumpuser_mutex_tryenter(mx) != 0);	/* held again */
	rumpuser_cv_has_waiters(cv, &w);
	CHECK(w == 0);
	rumpuser_mutex_exit(mx);
	rumpuser_cv_destroy(cv);
	rumpuser_mutex_destroy(mx);
	hyp_unschedule();
	return 0;
}

/* Block I/O completes asynchronously, on a worker holding the CPU. */
#define NBIO 64
static volatile int bio_done_n, bio_bad;

static void
biodone(void *arg, size_t done, int error)
{
	if (!on_cpu || rumpuser_curlwp() == NULL || error != 0 || done != 512)
		__atomic_add_fetch(&bio_bad, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&bio_done_n, 1, __ATOMIC_SEQ_CST);
}

static int
wait_bios(int want)
{
	int i;

	for (i = 0; i < 500 && __atomic_load_n(&bio_done_n, __ATOMIC_SEQ_CST) < want; i++)
		rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 0, 10000000);
	return __atomic_load_n(&bio_done_n, __ATOMIC_SEQ_CST) == want;
}

int
conf_bio_async(char *msg, size_t len)
{
	static char blocks[NBIO][512], back[NBIO][512];
	char path[64];
	int fd, i, j;
	uint64_t size;
	int type;

	hyp_schedule();
	snprintf(path, sizeof(path), "/tmp/rumpconf-bio-%d", (int)now_ns() & 0xffff);
	CHECK(rumpuser_open(path, RUMPUSER_OPEN_RDWR | RUMPUSER_OPEN_CREATE | RUMPUSER_OPEN_BIO, &fd) == 0);
	for (i = 0; i < NBIO; i++)
		for (j = 0; j < 512; j++)
			blocks[i][j] = (char)(i * 7 + j);
	bio_done_n = bio_bad = 0;
	for (i = 0; i < NBIO; i++)
		rumpuser_bio(fd, RUMPUSER_BIO_WRITE, blocks[i], 512, (int64_t)i * 512, biodone, &blocks[i]);
	CHECK(on_cpu);
	CHECK(wait_bios(NBIO));
	CHECKV(bio_bad == 0, bio_bad);
	CHECK(rumpuser_getfileinfo(path, &size, &type) == 0);
	CHECK(size == NBIO * 512 && type == RUMPUSER_FT_REG);
	bio_done_n = 0;
	for (i = 0; i < NBIO; i++)
		rumpuser_bio(fd, RUMPUSER_BIO_READ, back[i], 512, (int64_t)i * 512, biodone, &back[i]);
	CHECK(wait_bios(NBIO));
	CHECKV(bio_bad == 0, bio_bad);
	CHECK(memcmp(blocks, back, sizeof(blocks)) == 0);
	CHECK(rumpuser_syncfd(fd, RUMPUSER_SYNCFD_WRITE, 0, 0) == 0);
	CHECK(rumpuser_syncfd(fd, 0x100, 0, 0) == 22);
	CHECK(rumpuser_close(fd) == 0);
	CHECK(rumpuser_close(fd) == 9);
	remove(path);
	CHECK(rumpuser_getfileinfo(path, &size, &type) == 2);
	hyp_unschedule();
	return 0;
}

int
conf_getparam(char *msg, size_t len)
{
	char buf[64];

	CHECK(rumpuser_getparam(RUMPUSER_PARAM_NCPU, buf, sizeof(buf)) == 0 && atoi(buf) >= 1);
	CHECK(rumpuser_getparam(RUMPUSER_PARAM_HOSTNAME, buf, sizeof(buf)) == 0 && strncmp(buf, "rump-", 5) == 0);
	CHECK(rumpuser_getparam(RUMPUSER_PARAM_HOSTNAME, buf, 4) == 34);
	CHECK(rumpuser_getparam("_RUMPUSER_NOSUCH", buf, sizeof(buf)) == 22);
	CHECK(rumpuser_getparam("RUMPCONF_SURELY_UNSET", buf, sizeof(buf)) == 2);
	setenv("RUMPCONF_SET", "yes", 1);
	CHECK(rumpuser_getparam("RUMPCONF_SET", buf, sizeof(buf)) == 0 && strcmp(buf, "yes") == 0);
	CHECK(rumpuser_getparam("RUMPCONF_SET", buf, 3) == 34);
	return 0;
}

int
conf_clocks(char *msg, size_t len)
{
	int64_t s, prev = 0, t;
	long ns;
	int i;

	CHECK(rumpuser_clock_gettime(RUMPUSER_CLOCK_RELWALL, &s, &ns) == 0 && s > 1600000000);
	CHECK(rumpuser_clock_gettime(7, &s, &ns) == 22);
	for (i = 0; i < 10000; i++) {
		t = now_ns();
		CHECK(t >= prev);
		prev = t;
	}
	hyp_schedule();
	t = now_ns() + 20000000;
	CHECK(rumpuser_clock_sleep(RUMPUSER_CLOCK_ABSMONO, t / 1000000000, t % 1000000000) == 0);
	CHECK(now_ns() >= t);
	CHECK(on_cpu);
	hyp_unschedule();
	return 0;
}

int
conf_sp_unsupported(char *msg, size_t len)
{
	CHECK(rumpuser_sp_init("unix://x", "NetBSD", "10", "amd64") == 45);
	return 0;
}

void
conf_dprintf(void)
{
	rumpuser_dprintf("x=%d s=%s\n", 42, "ok");
	rumpuser_putchar('Z');
}
