#ifndef CSIPHON_SUPPORT_H
#define CSIPHON_SUPPORT_H
#include <stdio.h>
#include <stddef.h>

/// Returns a read-only stream that yields `prefix` (copied) and then whatever `source` yields.
/// Used to give libpcap a pipe whose first bytes Siphon already read to sniff the format.
/// Closing the returned stream does not close `source`. Returns NULL on allocation failure.
FILE *siphon_prefixed_stream(FILE *source, const unsigned char *prefix, size_t count);

/// The stdin stream (a macro in glibc, hidden from Swift).
FILE *siphon_stdin(void);

/// Asks the processor to bring the cache line holding `address` closer (no effect on the program's results).
/// Used by the read-ahead consumer on the lines of the next packet it will hand out.
static inline void siphon_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

#endif
