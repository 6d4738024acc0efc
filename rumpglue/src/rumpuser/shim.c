/*
 * The two rumpuser(3) hypercalls that stable Rust cannot define, and the
 * main program's link sets for rumpuser_dl_bootstrap().
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* Implemented in Rust (rumpuser/misc.rs): writes to rumpglue's console. */
void rumpglue_console_write(const char *buf, size_t len);

void
rumpuser_dprintf(const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		rumpglue_console_write(small, (size_t)n);
		return;
	}
	/* Longer than the stack buffer: format again into one that fits. */
	{
		char big[n + 1];

		va_start(ap, fmt);
		vsnprintf(big, sizeof(big), fmt, ap);
		va_end(ap);
		rumpglue_console_write(big, (size_t)n);
	}
}

/* Ends a thread made by rumpuser_thread_create(); never returns. */
void
rumpuser_thread_exit(void)
{
	pthread_exit(NULL);
}

/*
 * Link sets of the main program. When the rump kernel's components are
 * linked into the program itself (statically), the linker defines these
 * bounds; otherwise they stay NULL.
 */
extern const void *const __start_link_set_modules[] __attribute__((weak));
extern const void *const __stop_link_set_modules[] __attribute__((weak));
extern const void *const __start_link_set_rump_components[] __attribute__((weak));
extern const void *const __stop_link_set_rump_components[] __attribute__((weak));

void
rumpglue_main_link_sets(const void *const **mods, size_t *nmods, const void *const **comps, size_t *ncomps)
{
	*mods = __start_link_set_modules;
	*nmods = (__start_link_set_modules && __stop_link_set_modules)
	    ? (size_t)(__stop_link_set_modules - __start_link_set_modules) : 0;
	*comps = __start_link_set_rump_components;
	*ncomps = (__start_link_set_rump_components && __stop_link_set_rump_components)
	    ? (size_t)(__stop_link_set_rump_components - __start_link_set_rump_components) : 0;
}

/*
 * Start of a thread made by rumpuser_thread_create(): it names itself
 * (naming another thread would mean opening a file under /proc, which a
 * sandboxed server may not) and runs the kernel's thread body.
 */
#include <stdlib.h>
#include <string.h>

struct rumpglue_start {
	void *(*fun)(void *);
	void *arg;
	char name[16];
};

void *
rumpglue_thread_start(void *p)
{
	struct rumpglue_start s = *(struct rumpglue_start *)p;

	free(p);
	if (s.name[0] != '\0')
		pthread_setname_np(pthread_self(), s.name);
	return s.fun(s.arg);
}
