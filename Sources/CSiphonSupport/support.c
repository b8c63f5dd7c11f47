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
