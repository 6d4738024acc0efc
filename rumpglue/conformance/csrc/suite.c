/*
 * rumpuser(3) conformance cases, calling the hypercalls as a rump kernel
 * does. A small fake rump kernel provides the upcalls: one virtual CPU,
 * built only from the _nowrap hypercalls (which never call back), and
 * per-thread counters that let the cases check the scheduling contract.
 * No pthreads: the same file is meant to run against other backends.
 *
 * It runs on Linux (tests/conformance.rs) and inside ExoV6 (exo/, with a
 * few C library functions of its own, compiled with __EXOV6__). Cases
 * about host files, signals, fork and shared objects are Linux-only:
 * ExoV6 has none of those (its block I/O is on registered devices, which
 * rumpcheck checks).
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
static int unscheds_all;	/* every thread's, so a case sees another's */
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
	__atomic_add_fetch(&unscheds_all, 1, __ATOMIC_SEQ_CST);
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
	int n, all, b_unscheds = 0, i;

	hyp_schedule();
	hyp_newlwp(0);
	rumpuser_mutex_init(&m, RUMPUSER_MTX_KMUTEX);
	rumpuser_mutex_enter(m);
	rumpuser_mutex_owner(m, &owner);
	CHECK(owner == rumpuser_curlwp() && owner != NULL);
	CHECK(rumpuser_thread_create(contender, NULL, "contender", 1, 0, -1, &cookie) == 0);
	/* B takes the CPU while main sleeps and blocks on m, giving it back.
	 * How soon B gets there depends on the machine, so wait until it has
	 * (up to 1 s): what main's own sleeps do not account for is B's. */
	n = unscheds;
	all = __atomic_load_n(&unscheds_all, __ATOMIC_SEQ_CST);
	for (i = 0; i < 200 && b_unscheds == 0; i++) {
		rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 0, 5000000);
		b_unscheds = __atomic_load_n(&unscheds_all, __ATOMIC_SEQ_CST) - all - (unscheds - n);
	}
	CHECKV(b_unscheds >= 1, b_unscheds);
	CHECKV(unscheds == n + i, unscheds - n);	/* once per sleep */
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

#ifndef __EXOV6__
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

#endif /* !__EXOV6__ */

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

/* ---------------------------------------------------------------- threads */

static volatile int t_flag, t_after_exit;

static void *
t_body(void *arg)
{
	__atomic_store_n(&t_flag, (int)(intptr_t)arg, __ATOMIC_SEQ_CST);
	return NULL;
}

static void *
t_exits_early(void *arg)
{
	__atomic_store_n(&t_flag, 7, __ATOMIC_SEQ_CST);
	rumpuser_thread_exit();
	t_after_exit = 1;	/* never reached */
	return NULL;
}

int
conf_threads(char *msg, size_t len)
{
	void *cookie;
	int i;

	hyp_schedule();		/* joins and sleeps give the CPU back */
	t_flag = 0;
	CHECK(rumpuser_thread_create(t_body, (void *)(intptr_t)5, "joinable", 1, 0, -1, &cookie) == 0);
	CHECK(rumpuser_thread_join(cookie) == 0);
	CHECK(t_flag == 5);
	t_flag = 0;
	CHECK(rumpuser_thread_create(t_exits_early, NULL, "exits", 1, 0, -1, &cookie) == 0);
	CHECK(rumpuser_thread_join(cookie) == 0);
	CHECK(t_flag == 7 && t_after_exit == 0);
	/* A detached thread runs too. */
	t_flag = 0;
	CHECK(rumpuser_thread_create(t_body, (void *)(intptr_t)9, "detached", 0, 0, -1, NULL) == 0);
	for (i = 0; i < 200 && __atomic_load_n(&t_flag, __ATOMIC_SEQ_CST) != 9; i++)
		rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 0, 5000000);
	CHECK(t_flag == 9);
	CHECK(rumpuser_thread_create(NULL, NULL, "none", 1, 0, -1, &cookie) == 22);
	hyp_unschedule();
	return 0;
}

/* ---------------------------------------------------------------- nowrap */

static struct rumpuser_mtx *nw_m;
static struct rumpuser_cv *nw_cv;
static volatile int nw_go;

static void *
nw_signaller(void *arg)
{
	/* Not a rump thread (main keeps the only CPU): wait without sleeping
	 * through the hypercall, which would give back a CPU it lacks. */
	int64_t until = now_ns() + 20000000;

	while (now_ns() < until)
		continue;
	rumpuser_mutex_enter_nowrap(nw_m);
	nw_go = 1;
	rumpuser_cv_signal(nw_cv);
	rumpuser_mutex_exit(nw_m);
	return NULL;
}

/* Spin mutexes and the _nowrap calls never touch the rump CPU. */
int
conf_nowrap_keeps_the_cpu(char *msg, size_t len)
{
	void *cookie;
	int u0, s0;

	hyp_schedule();
	rumpuser_mutex_init(&nw_m, RUMPUSER_MTX_SPIN);
	rumpuser_cv_init(&nw_cv);
	u0 = unscheds;
	s0 = scheds;
	rumpuser_mutex_enter(nw_m);		/* SPIN: no wrap */
	rumpuser_mutex_exit(nw_m);
	rumpuser_mutex_enter_nowrap(nw_m);
	nw_go = 0;
	CHECK(rumpuser_thread_create(nw_signaller, NULL, "signaller", 1, 0, -1, &cookie) == 0);
	while (!nw_go)
		rumpuser_cv_wait_nowrap(nw_cv, nw_m);
	rumpuser_mutex_exit(nw_m);
	CHECK(unscheds == u0 && scheds == s0);
	CHECK(on_cpu);
	CHECK(rumpuser_thread_join(cookie) == 0);
	rumpuser_cv_destroy(nw_cv);
	rumpuser_mutex_destroy(nw_m);
	hyp_unschedule();
	return 0;
}

/* ---------------------------------------------------------------- rwlocks */

static struct rumpuser_rw *rw;
static volatile int rw_result, rw_writer_in;

static void *
rw_try(void *arg)
{
	int kind = (int)(intptr_t)arg;

	rw_result = rumpuser_rw_tryenter(kind, rw);
	if (rw_result == 0)
		rumpuser_rw_exit(rw);
	return NULL;
}

static int
rw_try_from_another_thread(int kind)
{
	void *cookie;

	rumpuser_thread_create(rw_try, (void *)(intptr_t)kind, "rwtry", 1, 0, -1, &cookie);
	rumpuser_thread_join(cookie);
	return rw_result;
}

static void *
rw_blocking_writer(void *arg)
{
	hyp_schedule();
	rumpuser_rw_enter(RUMPUSER_RW_WRITER, rw);	/* waits: must unschedule */
	rw_writer_in = 1;
	rumpuser_rw_exit(rw);
	hyp_unschedule();
	return NULL;
}

int
conf_rwlock(char *msg, size_t len)
{
	void *cookie;
	int held, i, rv = 0;

	hyp_schedule();
	hyp_newlwp(0);
	rumpuser_rw_init(&rw);

	/* Readers share; a writer is kept out. */
	rumpuser_rw_enter(RUMPUSER_RW_READER, rw);
	rumpuser_rw_held(RUMPUSER_RW_READER, rw, &held);
	CHECK(held);
	rumpuser_rw_held(RUMPUSER_RW_WRITER, rw, &held);
	CHECK(!held);
	CHECK(rw_try_from_another_thread(RUMPUSER_RW_READER) == 0);
	CHECK(rw_try_from_another_thread(RUMPUSER_RW_WRITER) == 16);

	/* The only reader may upgrade; then it is the writer. */
	CHECK(rumpuser_rw_tryupgrade(rw) == 0);
	rumpuser_rw_held(RUMPUSER_RW_WRITER, rw, &held);
	CHECK(held);
	CHECK(rw_try_from_another_thread(RUMPUSER_RW_READER) == 16);

	/* Downgrade: readers may come in, writers may not. */
	rumpuser_rw_downgrade(rw);
	rumpuser_rw_held(RUMPUSER_RW_WRITER, rw, &held);
	CHECK(!held);
	rumpuser_rw_held(RUMPUSER_RW_READER, rw, &held);
	CHECK(held);
	CHECK(rw_try_from_another_thread(RUMPUSER_RW_READER) == 0);
	CHECK(rw_try_from_another_thread(RUMPUSER_RW_WRITER) == 16);

	/* With a second reader, no upgrade. */
	CHECK(rumpuser_rw_tryenter(RUMPUSER_RW_READER, rw) == 0);
	CHECK(rumpuser_rw_tryupgrade(rw) == 16);
	rumpuser_rw_exit(rw);

	/* A waiting writer keeps new readers out, and gets in at last. The
	 * writer waits once it has had the CPU while main sleeps; how soon
	 * depends on the machine, so main tries as a second reader (which
	 * costs no thread, and came in freely above) until it is refused, up
	 * to 1 s; then a reader of another thread must be refused too. */
	rw_writer_in = 0;
	CHECK(rumpuser_thread_create(rw_blocking_writer, NULL, "writer", 1, 0, -1, &cookie) == 0);
	for (i = 0; i < 200 && (rv = rumpuser_rw_tryenter(RUMPUSER_RW_READER, rw)) == 0; i++) {
		rumpuser_rw_exit(rw);
		rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 0, 5000000);
	}
	CHECKV(rv == 16, rv);
	CHECK(rw_writer_in == 0);
	CHECK(rw_try_from_another_thread(RUMPUSER_RW_READER) == 16);
	rumpuser_rw_exit(rw);
	CHECK(rumpuser_thread_join(cookie) == 0);
	CHECK(rw_writer_in == 1);
	rumpuser_rw_held(RUMPUSER_RW_READER, rw, &held);
	CHECK(!held);

	rumpuser_rw_destroy(rw);
	rumpuser_curlwpop(RUMPUSER_LWP_CLEAR, rumpuser_curlwp());
	hyp_unschedule();
	return 0;
}

/* ---------------------------------------------------------------- cv */

static struct rumpuser_mtx *bc_m;
static struct rumpuser_cv *bc_cv;
static volatile int bc_go, bc_woke, bc_owner_ok;

static void *
bc_waiter(void *arg)
{
	struct lwp *owner;

	hyp_schedule();
	hyp_newlwp(0);
	rumpuser_mutex_enter(bc_m);
	while (!bc_go)
		rumpuser_cv_wait(bc_cv, bc_m);
	rumpuser_mutex_owner(bc_m, &owner);
	if (owner == rumpuser_curlwp() && on_cpu)
		bc_owner_ok++;
	bc_woke++;
	rumpuser_mutex_exit(bc_m);
	rumpuser_curlwpop(RUMPUSER_LWP_CLEAR, rumpuser_curlwp());
	hyp_unschedule();
	return NULL;
}

static int
broadcast_with(int flags, char *msg, size_t len)
{
	void *cookie[4];
	int i, w = 0;

	hyp_schedule();
	rumpuser_mutex_init(&bc_m, flags);
	rumpuser_cv_init(&bc_cv);
	bc_go = bc_woke = bc_owner_ok = 0;
	for (i = 0; i < 4; i++)
		CHECK(rumpuser_thread_create(bc_waiter, NULL, "waiter", 1, 0, -1, &cookie[i]) == 0);
	for (i = 0; i < 300 && w < 4; i++) {
		rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 0, 5000000);
		rumpuser_mutex_enter(bc_m);
		rumpuser_cv_has_waiters(bc_cv, &w);
		rumpuser_mutex_exit(bc_m);
	}
	CHECKV(w == 4, w);
	rumpuser_mutex_enter(bc_m);
	bc_go = 1;
	rumpuser_cv_broadcast(bc_cv);
	rumpuser_mutex_exit(bc_m);
	for (i = 0; i < 4; i++)
		CHECK(rumpuser_thread_join(cookie[i]) == 0);
	CHECK(bc_woke == 4 && bc_owner_ok == 4);
	rumpuser_cv_has_waiters(bc_cv, &w);
	CHECK(w == 0);
	rumpuser_cv_destroy(bc_cv);
	rumpuser_mutex_destroy(bc_m);
	hyp_unschedule();
	return 0;
}

int
conf_cv_broadcast(char *msg, size_t len)
{
	if (broadcast_with(RUMPUSER_MTX_KMUTEX, msg, len))
		return 1;
	/* A spin kernel mutex as interlock: reacquired after the CPU. */
	return broadcast_with(RUMPUSER_MTX_KMUTEX | RUMPUSER_MTX_SPIN, msg, len);
}

/* ---------------------------------------------------------------- curlwp */

static struct lwp *seen_in_new_thread = (struct lwp *)1;

static void *
t_curlwp(void *arg)
{
	seen_in_new_thread = rumpuser_curlwp();
	return NULL;
}

int
conf_curlwp(char *msg, size_t len)
{
	struct lwp a, b;
	void *cookie;

	CHECK(rumpuser_curlwp() == NULL);
	rumpuser_curlwpop(RUMPUSER_LWP_CREATE, &a);
	rumpuser_curlwpop(RUMPUSER_LWP_CREATE, &b);
	rumpuser_curlwpop(RUMPUSER_LWP_SET, &a);
	CHECK(rumpuser_curlwp() == &a);
	CHECK(rumpuser_thread_create(t_curlwp, NULL, "fresh", 1, 0, -1, &cookie) == 0);
	hyp_schedule();
	CHECK(rumpuser_thread_join(cookie) == 0);
	hyp_unschedule();
	CHECK(seen_in_new_thread == NULL);
	rumpuser_curlwpop(RUMPUSER_LWP_CLEAR, &a);
	CHECK(rumpuser_curlwp() == NULL);
	rumpuser_curlwpop(RUMPUSER_LWP_SET, &b);
	CHECK(rumpuser_curlwp() == &b);
	rumpuser_curlwpop(RUMPUSER_LWP_CLEAR, &b);
	rumpuser_curlwpop(RUMPUSER_LWP_DESTROY, &a);
	rumpuser_curlwpop(RUMPUSER_LWP_DESTROY, &b);
	/* Destroyed, so it can be created again. */
	rumpuser_curlwpop(RUMPUSER_LWP_CREATE, &a);
	rumpuser_curlwpop(RUMPUSER_LWP_DESTROY, &a);
	return 0;
}

/* ---------------------------------------------------------------- memory */

int
conf_memory(char *msg, size_t len)
{
	static const int aligns[] = { 0, 8, 16, 64, 4096 };
	void *p;
	size_t i;

	for (i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
		CHECK(rumpuser_malloc(1000, aligns[i], &p) == 0);
		CHECK(aligns[i] == 0 || ((uintptr_t)p & (aligns[i] - 1)) == 0);
		memset(p, 0xab, 1000);
		rumpuser_free(p, 1000);
	}
	CHECK(rumpuser_malloc(64, 3, &p) == 22);
	CHECK(rumpuser_anonmmap(NULL, 100000, 16, 0, &p) == 0);
	CHECK(((uintptr_t)p & 0xffff) == 0);
	CHECK(((char *)p)[0] == 0 && ((char *)p)[99999] == 0);
	((char *)p)[99999] = 1;
	rumpuser_unmap(p, 100000);
	CHECK(rumpuser_anonmmap(NULL, 8192, 0, 0, &p) == 0);
	CHECK(((uintptr_t)p & 4095) == 0);
	rumpuser_unmap(p, 8192);
	return 0;
}

#ifndef __EXOV6__
/* ---------------------------------------------------------------- files */

int
conf_iov(char *msg, size_t len)
{
	char path[64], a[4] = "abc", b[6] = "defgh", c[2] = "i", back[16], back2[4];
	struct rumpuser_iovec w[3] = { { a, 3 }, { b, 5 }, { c, 1 } };
	struct rumpuser_iovec r[2] = { { back, 4 }, { back + 4, 5 } };
	struct rumpuser_iovec r2 = { back2, 3 };
	size_t n;
	int fd, fd2, type;
	uint64_t size;

	hyp_schedule();		/* file hypercalls give the CPU back */
	snprintf(path, sizeof(path), "/tmp/rumpconf-iov-%d", (int)now_ns() & 0xffff);
	CHECK(rumpuser_open(path, RUMPUSER_OPEN_RDWR | RUMPUSER_OPEN_CREATE | RUMPUSER_OPEN_EXCL, &fd) == 0);
	CHECK(rumpuser_open(path, RUMPUSER_OPEN_RDWR | RUMPUSER_OPEN_CREATE | RUMPUSER_OPEN_EXCL, &fd2) == 17);
	CHECK(rumpuser_iovwrite(fd, w, 3, RUMPUSER_IOV_NOSEEK, &n) == 0 && n == 9);
	CHECK(rumpuser_iovwrite(fd, w, 1, 20, &n) == 0 && n == 3);
	CHECK(rumpuser_getfileinfo(path, &size, &type) == 0 && size == 23);
	memset(back, 0, sizeof(back));
	CHECK(rumpuser_iovread(fd, r, 2, 0, &n) == 0 && n == 9);
	CHECK(memcmp(back, "abcdefghi", 9) == 0);
	/* A fresh descriptor reads from the start, and on from there. */
	CHECK(rumpuser_open(path, RUMPUSER_OPEN_RDONLY, &fd2) == 0);
	CHECK(rumpuser_iovread(fd2, &r2, 1, RUMPUSER_IOV_NOSEEK, &n) == 0 && n == 3 && memcmp(back2, "abc", 3) == 0);
	CHECK(rumpuser_iovread(fd2, &r2, 1, RUMPUSER_IOV_NOSEEK, &n) == 0 && n == 3 && memcmp(back2, "def", 3) == 0);
	/* Past the end: a short count, no error. */
	CHECK(rumpuser_iovread(fd2, &r2, 1, 22, &n) == 0 && n == 1);
	CHECK(rumpuser_iovwrite(fd2, w, 1, 0, &n) == 9);	/* read-only descriptor */
	CHECK(rumpuser_close(fd2) == 0);
	CHECK(rumpuser_close(fd) == 0);
	CHECK(rumpuser_getfileinfo("/tmp", &size, &type) == 0 && type == RUMPUSER_FT_DIR);
	CHECK(rumpuser_open("/nonexistent/rumpconf", RUMPUSER_OPEN_RDONLY, &fd) == 2);
	remove(path);
	hyp_unschedule();
	return 0;
}

#endif /* !__EXOV6__ */

#ifndef __EXOV6__
/* ---------------------------------------------------------------- misc */

#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>

static volatile sig_atomic_t got_usr1;

static void
on_usr1(int sig)
{
	got_usr1 = 1;
}

int
conf_random_errno_kill(char *msg, size_t len)
{
	unsigned char x[32], y[32];
	size_t n;

	CHECK(rumpuser_getrandom(x, sizeof(x), 4, &n) == 22);
	hyp_schedule();		/* a blocking getrandom gives the CPU back */
	CHECK(rumpuser_getrandom(x, sizeof(x), RUMPUSER_RANDOM_HARD, &n) == 0 && n == 32);
	hyp_unschedule();
	CHECK(rumpuser_getrandom(y, sizeof(y), RUMPUSER_RANDOM_NOWAIT, &n) == 0 && n == 32);
	CHECK(memcmp(x, y, 32) != 0);
	rumpuser_seterrno(42);
	CHECK(errno == 42);
	/* Host-only: NetBSD SIGUSR1 (30) arrives as the host's SIGUSR1. */
	signal(SIGUSR1, on_usr1);
	got_usr1 = 0;
	CHECK(rumpuser_kill(RUMPUSER_PID_SELF, 30) == 0);
	CHECK(got_usr1 == 1);
	CHECK(rumpuser_kill(RUMPUSER_PID_SELF, 0) == 0);
	CHECK(rumpuser_kill(12345, 30) == 3);
	signal(SIGUSR1, SIG_DFL);
	return 0;
}

/* Host-only: daemonize in a child; its status is what the daemon says. */
static int
daemon_status(int report)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		if (rumpuser_daemonize_begin() != 0)
			_exit(99);
		/* the daemon: report and carry on (briefly) */
		rumpuser_daemonize_done(report);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

int
conf_daemonize(char *msg, size_t len)
{
	int st;

	st = daemon_status(0);
	CHECKV(st == 0, st);
	st = daemon_status(3);
	CHECKV(st == 3, st);
	CHECK(rumpuser_daemonize_done(0) == 22);	/* not daemonizing */
	return 0;
}

/* Link sets of this program, as a statically linked rump kernel has
 * (retain: nothing refers to them but the linker's bounds). */
struct modinfo { const char *name; };
struct rump_component { int type; };
static const struct modinfo mod_a = { "a" }, mod_b = { "b" };
static struct rump_component comp_a = { 1 }, comp_b = { 2 };
static const struct modinfo *const la __attribute__((section("link_set_modules"), used, retain)) = &mod_a;
static const struct modinfo *const lb __attribute__((section("link_set_modules"), used, retain)) = &mod_b;
static struct rump_component *const lca __attribute__((section("link_set_rump_components"), used, retain)) = &comp_a;
static struct rump_component *const lcb __attribute__((section("link_set_rump_components"), used, retain)) = &comp_b;

static int mods_seen, modinit_calls, comps_seen;

static void
domodinit(const struct modinfo *const *mi, size_t n)
{
	size_t i;

	modinit_calls++;
	for (i = 0; i < n; i++)
		if (mi[i] == &mod_a || mi[i] == &mod_b)
			mods_seen++;
}

static int
symload(void *a, uint64_t b, char *c, uint64_t d)
{
	return 0;
}

static void
compload(const struct rump_component *rc)
{
	if (rc == &comp_a || rc == &comp_b)
		comps_seen++;
}

int
conf_dl_bootstrap(char *msg, size_t len)
{
	mods_seen = modinit_calls = comps_seen = 0;
	rumpuser_dl_bootstrap(domodinit, symload, compload);
	CHECKV(modinit_calls == 1, modinit_calls);
	CHECKV(mods_seen == 2, mods_seen);
	CHECKV(comps_seen == 2, comps_seen);
	return 0;
}
#endif /* !__EXOV6__ */
