/* The part of <string.h> the conformance suite uses, for ExoV6 programs
 * (memset, memcpy, memcmp and strlen come from exo-freestanding). */
#ifndef EXO_STRING_H
#define EXO_STRING_H
#include <stddef.h>

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
#endif
