/*
 * The one hypercall Rust cannot define on stable, for ExoV6: the variadic
 * rumpuser_dprintf. ExoV6 programs have no C library, so this file carries
 * a small formatter of its own (freestanding: no headers but the
 * compiler's), also offered to C code in ExoV6 programs as
 * rumpglue_vformat (a C library's vsnprintf is built on it). It knows
 * what rump kernels' debug output uses: %d %i %u %x %X %o %p %s %c %%,
 * the length modifiers hh h l ll z j t, a width (or *), a precision for
 * strings, and the flags - 0 + space #. dprintf's output goes to the
 * console in pieces of up to 256 bytes, never truncated.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

void rumpglue_console_write(const char *buf, size_t len);

/* Where formatted characters go: `sink(ctx, buf, n)` takes them in
 * pieces. */
typedef void (*rumpglue_sink)(void *ctx, const char *buf, size_t n);

struct out {
	char buf[256];
	size_t n;
	rumpglue_sink sink;
	void *ctx;
};

static void
flush(struct out *o)
{
	if (o->n > 0)
		o->sink(o->ctx, o->buf, o->n);
	o->n = 0;
}

static void
put(struct out *o, char c)
{
	if (o->n == sizeof(o->buf))
		flush(o);
	o->buf[o->n++] = c;
}

static void
pad(struct out *o, char c, int n)
{
	while (n-- > 0)
		put(o, c);
}

/* One number: digits in `base`, with sign or prefix, padded to `width`. */
static void
number(struct out *o, uintmax_t v, int neg, unsigned base, int upper,
    int width, int left, int zero, char sign, const char *prefix)
{
	const char *digit = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0, plen = 0, extra, digits_n;

	do {
		tmp[n++] = digit[v % base];
		v /= base;
	} while (v != 0);
	digits_n = n;
	if (neg)
		sign = '-';
	while (prefix[plen] != '\0')
		plen++;
	extra = (sign ? 1 : 0) + plen;
	if (!left && !zero)
		pad(o, ' ', width - n - extra);
	if (sign)
		put(o, sign);
	for (int i = 0; i < plen; i++)
		put(o, prefix[i]);
	if (!left && zero)
		pad(o, '0', width - n - extra);
	while (n > 0)
		put(o, tmp[--n]);
	if (left)
		pad(o, ' ', width - digits_n - extra);
}

static void
format(struct out *o, const char *fmt, va_list ap)
{
	for (; *fmt != '\0'; fmt++) {
		int left = 0, zero = 0, alt = 0, width = 0, prec = -1, len = 0;
		char sign = 0;

		if (*fmt != '%') {
			put(o, *fmt);
			continue;
		}
		for (fmt++;; fmt++) {
			if (*fmt == '-')
				left = 1;
			else if (*fmt == '0')
				zero = 1;
			else if (*fmt == '+')
				sign = '+';
			else if (*fmt == ' ' && sign == 0)
				sign = ' ';
			else if (*fmt == '#')
				alt = 1;
			else
				break;
		}
		if (*fmt == '*') {
			width = va_arg(ap, int);
			if (width < 0) {
				left = 1;
				width = -width;
			}
			fmt++;
		} else {
			while (*fmt >= '0' && *fmt <= '9')
				width = width * 10 + (*fmt++ - '0');
		}
		if (*fmt == '.') {
			prec = 0;
			fmt++;
			if (*fmt == '*') {
				prec = va_arg(ap, int);
				fmt++;
			} else {
				while (*fmt >= '0' && *fmt <= '9')
					prec = prec * 10 + (*fmt++ - '0');
			}
		}
		for (;; fmt++) {
			if (*fmt == 'h')
				len = len > -2 ? len - 1 : len;
			else if (*fmt == 'l')
				len++;
			else if (*fmt == 'z' || *fmt == 'j' || *fmt == 't')
				len = 2;
			else
				break;
		}
		switch (*fmt) {
		case 'd':
		case 'i': {
			intmax_t v = len >= 2 ? va_arg(ap, long long) : len == 1 ? va_arg(ap, long) : va_arg(ap, int);
			if (len == -1)
				v = (short)v;
			else if (len == -2)
				v = (signed char)v;
			number(o, v < 0 ? -(uintmax_t)v : (uintmax_t)v, v < 0, 10, 0, width, left, zero, sign, "");
			break;
		}
		case 'u':
		case 'x':
		case 'X':
		case 'o': {
			uintmax_t v = len >= 2 ? va_arg(ap, unsigned long long)
			    : len == 1 ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
			unsigned base = *fmt == 'u' ? 10 : *fmt == 'o' ? 8 : 16;
			const char *prefix = "";
			if (len == -1)
				v = (unsigned short)v;
			else if (len == -2)
				v = (unsigned char)v;
			if (alt && v != 0)
				prefix = base == 8 ? "0" : *fmt == 'X' ? "0X" : base == 16 ? "0x" : "";
			number(o, v, 0, base, *fmt == 'X', width, left, zero, 0, prefix);
			break;
		}
		case 'p':
			number(o, (uintptr_t)va_arg(ap, void *), 0, 16, 0, width, left, 0, 0, "0x");
			break;
		case 'c':
			if (!left)
				pad(o, ' ', width - 1);
			put(o, (char)va_arg(ap, int));
			if (left)
				pad(o, ' ', width - 1);
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			int n = 0;
			if (s == NULL)
				s = "(null)";
			while (s[n] != '\0' && (prec < 0 || n < prec))
				n++;
			if (!left)
				pad(o, ' ', width - n);
			for (int i = 0; i < n; i++)
				put(o, s[i]);
			if (left)
				pad(o, ' ', width - n);
			break;
		}
		case '%':
			put(o, '%');
			break;
		case '\0':
			return;
		default:
			/* Unknown: shown as written. */
			put(o, '%');
			put(o, *fmt);
			break;
		}
	}
}

/* Formats `fmt` with `ap` into `sink`. */
void
rumpglue_vformat(rumpglue_sink sink, void *ctx, const char *fmt, va_list ap)
{
	struct out o;

	o.n = 0;
	o.sink = sink;
	o.ctx = ctx;
	format(&o, fmt, ap);
	flush(&o);
}

static void
to_console(void *ctx, const char *buf, size_t n)
{
	(void)ctx;
	rumpglue_console_write(buf, n);
}

void
rumpuser_dprintf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rumpglue_vformat(to_console, NULL, fmt, ap);
	va_end(ap);
}
