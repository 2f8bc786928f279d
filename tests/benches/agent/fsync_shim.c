/* LD_PRELOAD shim of the disk benchmark (BENCH_ONLY=disk): counts every
 * fsync and fdatasync of the process, by what was synced (the ledger's
 * -wal file, the ledger itself, a directory, anything else), and can add a
 * delay to each one to play a slow SD card.
 *
 *   FSYNC_SHIM_COUNTERS=/dev/shm/FILE  a file of at least 4096 bytes, mapped
 *                                      shared; the counters live in it
 *   FSYNC_SHIM_DELAY_US=5000           sleep this long before each sync
 *
 * Built by the benchmark with the system C compiler; never shipped. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Slots of the counter file, in 8-byte words. */
enum { SLOT_ALL, SLOT_WAL, SLOT_DB, SLOT_DIR, SLOT_OTHER, SLOT_DELAY_NS, SLOTS };

static volatile uint64_t *counters;
static long delay_us;
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);

__attribute__((constructor)) static void shim_init(void) {
    real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    const char *path = getenv("FSYNC_SHIM_COUNTERS");
    if (path != NULL) {
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
            void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (m != MAP_FAILED) counters = (volatile uint64_t *)m;
            close(fd);
        }
    }
    const char *d = getenv("FSYNC_SHIM_DELAY_US");
    if (d != NULL) delay_us = atol(d);
}

static int ends_with(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static void count(int fd) {
    if (counters == NULL) return;
    int slot = SLOT_OTHER;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        slot = SLOT_DIR;
    } else {
        char link[64], target[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n > 0) {
            if (ends_with(target, (size_t)n, "-wal")) slot = SLOT_WAL;
            else if (ends_with(target, (size_t)n, ".sqlite")) slot = SLOT_DB;
        }
    }
    __atomic_add_fetch(&counters[SLOT_ALL], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&counters[slot], 1, __ATOMIC_RELAXED);
}

static void slow_card(void) {
    if (delay_us <= 0) return;
    struct timespec ts = { delay_us / 1000000, (delay_us % 1000000) * 1000 };
    nanosleep(&ts, NULL);
    if (counters != NULL)
        __atomic_add_fetch(&counters[SLOT_DELAY_NS], (uint64_t)delay_us * 1000, __ATOMIC_RELAXED);
}

int fsync(int fd) {
    count(fd);
    slow_card();
    return real_fsync(fd);
}

int fdatasync(int fd) {
    count(fd);
    slow_card();
    return real_fdatasync(fd);
}
