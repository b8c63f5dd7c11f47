/*
 * hs_scan: Hyperscan (Intel, the engine Suricata uses) throughput on Siphon's identifier-leak literals, to compare
 * with SiphonBench --scan-identifiers on the same patterns and bytes.
 *
 *   hs_scan PATTERNS_HEX_FILE CORPUS_FILE [--chunk N] [--repeat R] [--generic] [-v]
 *
 * PATTERNS_HEX_FILE: one literal a line, hex-encoded bytes (what `SiphonBench --dump-patterns IDS.yaml` prints);
 * empty lines and lines starting with '#' are skipped.
 * The literals are compiled with hs_compile_lit_multi (flags 0, HS_MODE_BLOCK). With --generic, regexes standing
 * for Siphon's generic candidate patterns are compiled with them in one database (hs_compile_multi, literals
 * written as \xHH):
 *     [0-9]{14,20}                              IMEI / IMSI / ICCID digit runs
 *     \+[0-9]{8,15}                             E.164 phone numbers
 *     [0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}     MAC addresses
 *     -?[0-9]{1,3}\.[0-9]{4,}                   coordinates
 * Hyperscan has no lookaround, so the "not inside a longer alphanumeric run" boundaries are dropped, and nothing
 * is validated (Luhn, reporting body, MCC, keywords, ranges): generic matches are raw candidates, and as
 * HS_FLAG_SOM_LEFTMOST is off Hyperscan reports one match per pattern and END offset (a 20-digit run gives 7
 * matches of [0-9]{14,20}). Counts are therefore not comparable with Siphon's; the throughput is.
 *
 * The corpus is read into memory and scanned in consecutive blocks of N bytes (default 1460, one TCP segment's
 * payload), each block a separate hs_scan call as per-segment scanning does (matches across blocks are missed),
 * R times (default 5); the best pass is kept. Output, one line on stdout:
 *     hyperscan bytes=<bytes in one pass> seconds=<best pass> matches=<matches in one pass> patterns=<k> compile_ms=<c>
 * -v prints the database info and the matches of each pattern id to stderr (ids: line order of the literals,
 * then the 4 generic regexes).
 *
 * Build: cc -O2 -march=native -o hs_scan hs_scan.c $(pkg-config --cflags --libs libhs)   (libhyperscan-dev)
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hs/hs.h>

static const char *const generic_regex[] = {
    "[0-9]{14,20}",
    "\\+[0-9]{8,15}",
    "[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}",
    "-?[0-9]{1,3}\\.[0-9]{4,}",
};
#define NGENERIC (sizeof generic_regex / sizeof generic_regex[0])

struct counts {
    unsigned long long total;
    unsigned long long *per_id; /* NULL unless -v */
};

static int on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags, void *ctx) {
    (void)from, (void)to, (void)flags;
    struct counts *c = ctx;
    c->total++;
    if (c->per_id) c->per_id[id]++;
    return 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *fmt, const char *arg) {
    fprintf(stderr, "hs_scan: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(2);
}

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) die("%s: cannot open", path);
    size_t cap = 1 << 20, n = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) die("%s: out of memory", path);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf) die("%s: out of memory", path);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) die("%s: read error", path);
    fclose(f);
    *len = n;
    return buf;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int main(int argc, char **argv) {
    const char *patterns_path = NULL, *corpus_path = NULL;
    size_t chunk = 1460;
    long repeat = 5;
    int generic = 0, verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--chunk") && i + 1 < argc) {
            char *end;
            long long v = strtoll(argv[++i], &end, 10);
            if (*end || v <= 0) die("--chunk %s: not a positive number", argv[i]);
            chunk = (size_t)v;
        } else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) {
            char *end;
            repeat = strtol(argv[++i], &end, 10);
            if (*end || repeat <= 0) die("--repeat %s: not a positive number", argv[i]);
        } else if (!strcmp(argv[i], "--generic")) {
            generic = 1;
        } else if (!strcmp(argv[i], "-v")) {
            verbose = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            die("unknown option %s", argv[i]);
        } else if (!patterns_path) {
            patterns_path = argv[i];
        } else if (!corpus_path) {
            corpus_path = argv[i];
        } else {
            die("unexpected argument %s", argv[i]);
        }
    }
    if (!patterns_path || !corpus_path) {
        fprintf(stderr, "usage: hs_scan PATTERNS_HEX_FILE CORPUS_FILE [--chunk N] [--repeat R] [--generic] [-v]\n");
        return 2;
    }
    if (hs_valid_platform() != HS_SUCCESS) die("%s", "this CPU cannot run Hyperscan (SSSE3 needed)");

    /* Literals: one hex line each. */
    size_t text_len;
    char *text = (char *)read_file(patterns_path, &text_len);
    size_t nlit = 0, cap = 64;
    unsigned char **lit = malloc(cap * sizeof *lit);
    size_t *lit_len = malloc(cap * sizeof *lit_len);
    size_t line_no = 0;
    for (size_t p = 0; p < text_len;) {
        size_t e = p;
        while (e < text_len && text[e] != '\n') e++;
        line_no++;
        size_t a = p, b = e;
        while (a < b && (text[a] == ' ' || text[a] == '\t' || text[a] == '\r')) a++;
        while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t' || text[b - 1] == '\r')) b--;
        p = e + 1;
        if (a == b || text[a] == '#') continue;
        if ((b - a) % 2) {
            fprintf(stderr, "hs_scan: %s:%zu: odd number of hex digits\n", patterns_path, line_no);
            return 2;
        }
        if (nlit == cap) {
            cap *= 2;
            lit = realloc(lit, cap * sizeof *lit);
            lit_len = realloc(lit_len, cap * sizeof *lit_len);
        }
        size_t n = (b - a) / 2;
        unsigned char *bytes = malloc(n);
        for (size_t k = 0; k < n; k++) {
            int hi = hexval(text[a + 2 * k]), lo = hexval(text[a + 2 * k + 1]);
            if (hi < 0 || lo < 0) {
                fprintf(stderr, "hs_scan: %s:%zu: not hex\n", patterns_path, line_no);
                return 2;
            }
            bytes[k] = (unsigned char)(hi << 4 | lo);
        }
        lit[nlit] = bytes;
        lit_len[nlit] = n;
        nlit++;
    }
    free(text);
    size_t npat = nlit + (generic ? NGENERIC : 0);
    if (npat == 0) die("%s: no patterns", patterns_path);

    /* Compile. */
    hs_database_t *db = NULL;
    hs_compile_error_t *err = NULL;
    unsigned *ids = malloc(npat * sizeof *ids);
    unsigned *flags = calloc(npat, sizeof *flags);
    for (size_t k = 0; k < npat; k++) ids[k] = (unsigned)k;
    double t0 = now();
    hs_error_t rc;
    if (!generic) {
        rc = hs_compile_lit_multi((const char *const *)lit, flags, ids, lit_len, (unsigned)nlit, HS_MODE_BLOCK, NULL, &db, &err);
    } else {
        char **expr = malloc(npat * sizeof *expr);
        for (size_t k = 0; k < nlit; k++) {
            expr[k] = malloc(4 * lit_len[k] + 1);
            for (size_t j = 0; j < lit_len[k]; j++) sprintf(expr[k] + 4 * j, "\\x%02x", lit[k][j]);
            expr[k][4 * lit_len[k]] = 0;
        }
        for (size_t g = 0; g < NGENERIC; g++) expr[nlit + g] = (char *)generic_regex[g];
        rc = hs_compile_multi((const char *const *)expr, flags, ids, (unsigned)npat, HS_MODE_BLOCK, NULL, &db, &err);
        for (size_t k = 0; k < nlit; k++) free(expr[k]);
        free(expr);
    }
    double compile_ms = (now() - t0) * 1e3;
    if (rc != HS_SUCCESS) {
        fprintf(stderr, "hs_scan: compile failed (pattern %d): %s\n", err ? err->expression : -1,
                err ? err->message : "unknown error");
        return 1;
    }
    hs_scratch_t *scratch = NULL;
    if (hs_alloc_scratch(db, &scratch) != HS_SUCCESS) die("%s", "cannot allocate scratch space");
    if (verbose) {
        char *info = NULL;
        size_t db_size = 0;
        hs_database_info(db, &info);
        hs_database_size(db, &db_size);
        fprintf(stderr, "hs_scan: %s, database %zu bytes, %zu literals%s\n", info ? info : "?", db_size, nlit,
                generic ? " + 4 generic regexes" : "");
        free(info);
    }

    /* Scan. */
    size_t len;
    unsigned char *corpus = read_file(corpus_path, &len);
    struct counts c = {0, verbose ? calloc(npat, sizeof(unsigned long long)) : NULL};
    unsigned long long first_pass = 0;
    double best = -1;
    for (long r = 0; r < repeat; r++) {
        c.total = 0;
        double s = now();
        for (size_t off = 0; off < len; off += chunk) {
            size_t n = len - off < chunk ? len - off : chunk;
            if (hs_scan(db, (const char *)corpus + off, (unsigned)n, 0, scratch, on_match, &c) != HS_SUCCESS)
                die("%s", "hs_scan failed");
        }
        double t = now() - s;
        if (best < 0 || t < best) best = t;
        if (r == 0) {
            first_pass = c.total;
            if (c.per_id) {
                for (size_t k = 0; k < npat; k++)
                    if (c.per_id[k]) fprintf(stderr, "hs_scan: id %zu (%s): %llu\n", k, k < nlit ? "literal" : generic_regex[k - nlit], c.per_id[k]);
                free(c.per_id);
                c.per_id = NULL;
            }
        } else if (c.total != first_pass) {
            fprintf(stderr, "hs_scan: pass %ld found %llu matches, pass 0 %llu\n", r, c.total, first_pass);
            return 1;
        }
    }
    if (generic)
        fprintf(stderr, "hs_scan: generic matches are raw Hyperscan candidates (one per end offset, no boundaries, no "
                        "Luhn/MCC/keyword/range validation): compare throughput, not counts\n");
    printf("hyperscan bytes=%zu seconds=%.6f matches=%llu patterns=%zu compile_ms=%.1f\n", len, best, first_pass, npat,
           compile_ms);
    hs_free_scratch(scratch);
    hs_free_database(db);
    for (size_t k = 0; k < nlit; k++) free(lit[k]);
    free(lit);
    free(lit_len);
    free(ids);
    free(flags);
    free(corpus);
    return 0;
}
