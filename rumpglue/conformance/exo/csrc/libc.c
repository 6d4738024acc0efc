/*
 * The few C library functions the conformance suite calls, for ExoV6
 * programs, which have none: formatting on rumpglue's formatter
 * (rumpglue_vformat), memory from rumpuser_malloc, parameters through
 * rumpglue (setenv: ExoV6 has no environment), and abort as a rump
 * kernel panic. Freestanding.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "exo_rumpuser.h"

typedef void (*rumpglue_sink)(void *ctx, const char *buf, size_t n);
void rumpglue_vformat(rumpglue_sink sink, void *ctx, const char *fmt, va_list ap);
void rumpglue_console_write(const char *buf, size_t len);
void rumpconf_set_param(const char *name, const char *value);

struct exo_file { int unused; };
static struct exo_file console;
FILE *stderr = &console;
FILE *stdout = &console;

struct bounded {
	char *buf;
	size_t len;	/* room, including the NUL */
	size_t total;	/* what the whole output needs */
};

static void
to_buffer(void *ctx, const char *s, size_t n)
{
	struct bounded *b = ctx;

	for (size_t i = 0; i < n; i++, b->total++)
		if (b->len > 0 && b->total < b->len - 1)
			b->buf[b->total] = s[i];
}

int
vsnprintf(char *buf, size_t len, const char *fmt, va_list ap)
{
	struct bounded b = { buf, len, 0 };

	rumpglue_vformat(to_buffer, &b, fmt, ap);
	if (len > 0)
		buf[b.total < len - 1 ? b.total : len - 1] = '\0';
	return (int)b.total;
}

int
snprintf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return n;
}

static void
to_console(void *ctx, const char *s, size_t n)
{
	size_t *total = ctx;

	rumpglue_console_write(s, n);
	*total += n;
}

int
fprintf(FILE *f, const char *fmt, ...)
{
	va_list ap;
	size_t total = 0;

	(void)f;	/* both streams are the console */
	va_start(ap, fmt);
	rumpglue_vformat(to_console, &total, fmt, ap);
	va_end(ap);
	return (int)total;
}

int
remove(const char *path)
{
	(void)path;
	return -1;	/* no files to remove */
}

void *
malloc(size_t n)
{
	void *p;

	return rumpuser_malloc(n, 0, &p) == 0 ? p : NULL;
}

void
free(void *p)
{
	rumpuser_free(p, 0);
}

void
abort(void)
{
	rumpuser_exit(RUMPUSER_PANIC);
	for (;;)
		;
}

int
atoi(const char *s)
{
	int v = 0, neg = 0;

	while (*s == ' ')
		s++;
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (*s++ - '0');
	return neg ? -v : v;
}

int
setenv(const char *name, const char *value, int overwrite)
{
	(void)overwrite;
	rumpconf_set_param(name, value);
	return 0;
}

int
strcmp(const char *a, const char *b)
{
	while (*a != '\0' && *a == *b)
		a++, b++;
	return (unsigned char)*a - (unsigned char)*b;
}

int
strncmp(const char *a, const char *b, size_t n)
{
	for (; n > 0; n--, a++, b++)
		if (*a != *b || *a == '\0')
			return (unsigned char)*a - (unsigned char)*b;
	return 0;
}

/* Set by a constructor: exo-rt runs .init_array before main, as a rump
 * kernel's module constructors need. */
int rumpconf_constructed;

__attribute__((constructor)) static void
rumpconf_construct(void)
{
	rumpconf_constructed = 42;
}
