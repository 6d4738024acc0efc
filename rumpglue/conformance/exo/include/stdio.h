/* The part of <stdio.h> the conformance suite uses, for ExoV6 programs
 * (which have no C library): formatting into buffers and to the console. */
#ifndef EXO_STDIO_H
#define EXO_STDIO_H
#include <stdarg.h>
#include <stddef.h>

typedef struct exo_file FILE;
extern FILE *stderr;
extern FILE *stdout;

int snprintf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vsnprintf(char *buf, size_t len, const char *fmt, va_list ap);
int fprintf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int remove(const char *path);
#endif
