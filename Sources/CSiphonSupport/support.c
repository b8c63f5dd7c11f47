#define _GNU_SOURCE
#include "CSiphonSupport.h"
#include <stdlib.h>
#include <string.h>

struct prefixed {
    FILE *source;
    size_t count, used;
    unsigned char bytes[];
};

static ssize_t prefixed_read(void *cookie, char *buf, size_t size) {
    struct prefixed *p = cookie;
    size_t n = 0;
    if (p->used < p->count) {
        n = p->count - p->used;
        if (n > size) n = size;
        memcpy(buf, p->bytes + p->used, n);
        p->used += n;
        if (n == size) return (ssize_t)n;
    }
    size_t got = fread(buf + n, 1, size - n, p->source);
    if (got == 0 && n == 0 && ferror(p->source)) return -1;
    return (ssize_t)(n + got);
}

static int prefixed_close(void *cookie) {
    free(cookie);
    return 0;
}

FILE *siphon_prefixed_stream(FILE *source, const unsigned char *prefix, size_t count) {
    struct prefixed *p = malloc(sizeof *p + count);
    if (!p) return NULL;
    p->source = source;
    p->count = count;
    p->used = 0;
    memcpy(p->bytes, prefix, count);
    cookie_io_functions_t io = { .read = prefixed_read, .write = NULL, .seek = NULL, .close = prefixed_close };
    FILE *f = fopencookie(p, "r", io);
    if (!f) free(p);
    return f;
}

FILE *siphon_stdin(void) { return stdin; }
