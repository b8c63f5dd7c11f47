#ifndef CSIPHON_SUPPORT_H
#define CSIPHON_SUPPORT_H
#include <stdio.h>
#include <stddef.h>

/// Returns a read-only stream that yields `prefix` (copied) and then whatever `source` yields.
/// Used to give libpcap a pipe whose first bytes Siphon already read to sniff the format.
/// Closing the returned stream closes `source` only when `close_source` is set. Returns NULL on allocation failure.
FILE *siphon_prefixed_stream(FILE *source, const unsigned char *prefix, size_t count, int close_source);

/// A read-only stream of what the gzip data `source` inflates to (concatenated members too); closing it closes
/// `source` when `close_source` is set. `*handle` (valid while the stream is open) names it for
/// `siphon_gzip_problem`. NULL when out of memory.
FILE *siphon_gzip_stream(FILE *source, int close_source, void **handle);
/// What went wrong in the stream `handle` names (corrupt or truncated compressed data, a read error), or NULL.
const char *siphon_gzip_problem(const void *handle);

/// The running program's GNU build ID (the linker's hash of its contents) into `out`; returns its length, 0 when
/// the program has none.
size_t siphon_build_id(unsigned char *out, size_t cap);

/// Opens `path` for reading through a stream that calls `observe(context, bytes, count)` with each byte of the
/// file once, in order, as it is first read (bytes read again after a seek back are not passed again). NULL with
/// errno set when the file cannot be opened.
FILE *siphon_observed_fopen(const char *path, void (*observe)(void *context, const void *bytes, size_t count), void *context);

/// The stdin stream (a macro in glibc, hidden from Swift).
FILE *siphon_stdin(void);

/// Asks the processor to bring the cache line holding `address` closer (no effect on the program's results).
/// Used by the read-ahead consumer on the lines of the next packet it will hand out.
static inline void siphon_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

/// Anonymous memory for tables that grow without being copied (sizes in bytes, rounded up to whole pages):
/// `siphon_table_map` maps `size` bytes of zeroed, private memory (NULL on failure); `siphon_table_grow` enlarges
/// such a mapping to `new_size` bytes, moving it if it must by moving its page-table entries (Linux `mremap`: the
/// bytes are not copied and pages already touched are not touched again), and returns its address, or NULL (the old
/// mapping then stays as it was; always NULL where `mremap` does not exist); `siphon_table_unmap` releases it.
void *siphon_table_map(size_t size);
void *siphon_table_grow(void *address, size_t old_size, size_t new_size);
void siphon_table_unmap(void *address, size_t size);

/// Stop requests for long-running commands (`siphon live`): installs handlers for SIGINT and SIGTERM that record
/// the signal and write one byte to a pipe whose read end `siphon_stop_fd` returns (a `poll` on it wakes at once).
/// Returns 0, or -1 when the pipe cannot be made. A second signal of the same kind while the first is still being
/// honoured restores the default action, so a third one ends the process.
int siphon_install_stop_handlers(void);
/// The read end of the stop pipe (-1 before `siphon_install_stop_handlers`).
int siphon_stop_fd(void);
/// The signal that asked to stop (0: none yet).
int siphon_stop_signal(void);
/// Asks to stop as a signal would (tests, `--duration`).
void siphon_request_stop(int signal);
/// Forgets an earlier stop request (a new capture in the same process starts afresh) and empties the pipe.
void siphon_reset_stop(void);

#endif
