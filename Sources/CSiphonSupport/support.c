#define _GNU_SOURCE
#include "CSiphonSupport.h"
#include <stdlib.h>
#include <string.h>

struct prefixed {
    FILE *source;
    int close_source;
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
    struct prefixed *p = cookie;
    if (p->close_source) fclose(p->source);
    free(cookie);
    return 0;
}

FILE *siphon_prefixed_stream(FILE *source, const unsigned char *prefix, size_t count, int close_source) {
    struct prefixed *p = malloc(sizeof *p + count);
    if (!p) return NULL;
    p->source = source;
    p->close_source = close_source;
    p->count = count;
    p->used = 0;
    memcpy(p->bytes, prefix, count);
    cookie_io_functions_t io = { .read = prefixed_read, .write = NULL, .seek = NULL, .close = prefixed_close };
    FILE *f = fopencookie(p, "r", io);
    if (!f) free(p);
    return f;
}

FILE *siphon_stdin(void) { return stdin; }

#include <signal.h>
#include <unistd.h>
#include <fcntl.h>
#include <errno.h>

static volatile sig_atomic_t stop_signal = 0;
static int stop_pipe[2] = {-1, -1};

void siphon_request_stop(int signal) {
    if (!stop_signal) stop_signal = signal;
    if (stop_pipe[1] >= 0) {
        int saved = errno;
        char b = 1;
        ssize_t unused = write(stop_pipe[1], &b, 1);
        (void)unused;
        errno = saved;
    }
}

static void on_stop(int signal) {
    if (stop_signal) {
        // Asked again while stopping: the next one ends the process the ordinary way.
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(signal, &dfl, NULL);
    }
    siphon_request_stop(signal);
}

int siphon_install_stop_handlers(void) {
    if (stop_pipe[0] < 0) {
        if (pipe(stop_pipe) != 0) return -1;
        for (int i = 0; i < 2; i++) {
            fcntl(stop_pipe[i], F_SETFL, fcntl(stop_pipe[i], F_GETFL) | O_NONBLOCK);
            fcntl(stop_pipe[i], F_SETFD, FD_CLOEXEC);
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    // A parent may have left them blocked (a spawner's thread mask is inherited): the stop must get through.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    return 0;
}

int siphon_stop_fd(void) { return stop_pipe[0]; }

void siphon_reset_stop(void) {
    stop_signal = 0;
    if (stop_pipe[0] >= 0) {
        char sink[64];
        while (read(stop_pipe[0], sink, sizeof sink) > 0) {}
    }
}
int siphon_stop_signal(void) { return stop_signal; }

#include <zlib.h>

/* gzip-compressed captures: a read-only stream inflating `source` (gzip members one after another, as gzip -c
   a b > c makes). What went wrong, if anything, is kept in the stream's state for the reader to word its error
   with (siphon_gzip_problem), whatever thread reads it. */
struct gzip_stream {
    FILE *source;
    int close_source, in_member, done;
    z_stream z;
    char error[160];
    unsigned char in[1 << 16];
};

static ssize_t gzip_read(void *cookie, char *buf, size_t size) {
    struct gzip_stream *g = cookie;
    if (g->done || size == 0) return 0;
    if (size > (1u << 30)) size = 1u << 30;
    g->z.next_out = (Bytef *)buf;
    g->z.avail_out = (uInt)size;
    while (g->z.avail_out == size) {
        if (g->z.avail_in == 0) {
            size_t n = fread(g->in, 1, sizeof g->in, g->source);
            if (n == 0) {
                if (ferror(g->source)) {
                    snprintf(g->error, sizeof g->error, "gzip: read error: %s", strerror(errno));
                    g->done = 1;
                    errno = EIO;
                    return -1;
                }
                if (g->in_member)
                    snprintf(g->error, sizeof g->error,
                             "gzip: the compressed data ends inside a member (truncated .gz file) after %lu compressed bytes",
                             (unsigned long)g->z.total_in);
                g->done = 1;
                break;
            }
            g->z.next_in = g->in;
            g->z.avail_in = (uInt)n;
        }
        g->in_member = 1;
        int r = inflate(&g->z, Z_NO_FLUSH);
        if (r == Z_STREAM_END) {
            /* The next member, if any, starts afresh. */
            g->in_member = 0;
            uLong in = g->z.total_in;
            inflateReset(&g->z);
            g->z.total_in = in;
            continue;
        }
        if (r != Z_OK && r != Z_BUF_ERROR) {
            snprintf(g->error, sizeof g->error, "gzip: %s (compressed byte %lu)",
                     g->z.msg ? g->z.msg : "bad compressed data", (unsigned long)g->z.total_in);
            g->done = 1;
            if (g->z.avail_out == size) { errno = EIO; return -1; }
            break;
        }
    }
    return (ssize_t)(size - g->z.avail_out);
}

static int gzip_close(void *cookie) {
    struct gzip_stream *g = cookie;
    inflateEnd(&g->z);
    if (g->close_source) fclose(g->source);
    free(g);
    return 0;
}

FILE *siphon_gzip_stream(FILE *source, int close_source, void **handle) {
    struct gzip_stream *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->source = source;
    g->close_source = close_source;
    /* 16 + 15: a gzip header and trailer around a deflate stream with up to a 32 KiB window. */
    if (inflateInit2(&g->z, 16 + MAX_WBITS) != Z_OK) { free(g); return NULL; }
    cookie_io_functions_t io = { .read = gzip_read, .write = NULL, .seek = NULL, .close = gzip_close };
    FILE *f = fopencookie(g, "r", io);
    if (!f) { inflateEnd(&g->z); free(g); return NULL; }
    if (handle) *handle = g;
    return f;
}

const char *siphon_gzip_problem(const void *handle) {
    const struct gzip_stream *g = handle;
    return g && g->error[0] ? g->error : NULL;
}

#include <link.h>
#include <elf.h>

struct build_id { unsigned char *out; size_t cap, len; };

static int build_id_of_main(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct build_id *b = data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type != PT_NOTE) continue;
        const unsigned char *p = (const unsigned char *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
        size_t len = info->dlpi_phdr[i].p_memsz, off = 0;
        while (off + sizeof(ElfW(Nhdr)) <= len) {
            const ElfW(Nhdr) *n = (const void *)(p + off);
            size_t name = (n->n_namesz + 3) & ~(size_t)3, desc = (n->n_descsz + 3) & ~(size_t)3;
            if (off + sizeof *n + name + n->n_descsz > len) break;
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && memcmp(p + off + sizeof *n, "GNU", 4) == 0) {
                b->len = n->n_descsz < b->cap ? n->n_descsz : b->cap;
                memcpy(b->out, p + off + sizeof *n + name, b->len);
                return 1;
            }
            off += sizeof *n + name + desc;
        }
    }
    return 1; /* the first object is the program itself: stop there */
}

size_t siphon_build_id(unsigned char *out, size_t cap) {
    struct build_id b = { out, cap, 0 };
    dl_iterate_phdr(build_id_of_main, &b);
    return b.len;
}

/* A file read through a callback that sees each byte of it once, in order (a content hash computed while the
   capture is read, instead of in a second pass). Seeks are allowed: bytes read again are not shown again. */
struct observed {
    int fd;
    off_t position, observed;
    void (*observe)(void *context, const void *bytes, size_t count);
    void *context;
};

static ssize_t observed_read(void *cookie, char *buf, size_t size) {
    struct observed *o = cookie;
    ssize_t n;
    do { n = read(o->fd, buf, size); } while (n < 0 && errno == EINTR);
    if (n <= 0) return n;
    off_t end = o->position + n;
    if (end > o->observed) {
        off_t skip = o->observed > o->position ? o->observed - o->position : 0;
        o->observe(o->context, buf + skip, (size_t)(n - skip));
        o->observed = end;
    }
    o->position = end;
    return n;
}

static int observed_seek(void *cookie, off64_t *offset, int whence) {
    struct observed *o = cookie;
    off_t to = lseek(o->fd, (off_t)*offset, whence);
    if (to < 0) return -1;
    /* Only backwards or to where the observer already is: a jump forward would leave bytes unseen. */
    if (to > o->observed) {
        lseek(o->fd, o->position, SEEK_SET);
        errno = ESPIPE;
        return -1;
    }
    o->position = to;
    *offset = to;
    return 0;
}

static int observed_close(void *cookie) {
    struct observed *o = cookie;
    int r = close(o->fd);
    free(o);
    return r;
}

FILE *siphon_observed_fopen(const char *path, void (*observe)(void *, const void *, size_t), void *context) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct observed *o = calloc(1, sizeof *o);
    if (!o) { close(fd); errno = ENOMEM; return NULL; }
    o->fd = fd;
    o->observe = observe;
    o->context = context;
    cookie_io_functions_t io = { .read = observed_read, .write = NULL, .seek = observed_seek, .close = observed_close };
    FILE *f = fopencookie(o, "r", io);
    if (!f) { int e = errno; close(fd); free(o); errno = e; }
    return f;
}

#include <sys/mman.h>
#include <unistd.h>

static size_t page_rounded(size_t n) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (n + page - 1) / page * page;
}

void *siphon_table_map(size_t size) {
    void *p = mmap(NULL, page_rounded(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void *siphon_table_grow(void *address, size_t old_size, size_t new_size) {
#ifdef MREMAP_MAYMOVE
    void *p = mremap(address, page_rounded(old_size), page_rounded(new_size), MREMAP_MAYMOVE);
    return p == MAP_FAILED ? NULL : p;
#else
    (void)address; (void)old_size; (void)new_size;
    return NULL;
#endif
}

void siphon_table_unmap(void *address, size_t size) { munmap(address, page_rounded(size)); }
