/* The part of <stdlib.h> the conformance suite uses, for ExoV6 programs. */
#ifndef EXO_STDLIB_H
#define EXO_STDLIB_H
#include <stddef.h>

void *malloc(size_t n);
void free(void *p);
void abort(void) __attribute__((noreturn));
int atoi(const char *s);
int setenv(const char *name, const char *value, int overwrite);
#endif
