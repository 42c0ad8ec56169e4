/* LD_PRELOAD shim for bench/api_bench.py: every flush to disk returns at once.
 *
 * Used only to meter the CPU a post costs apart from the disk's wait; never
 * loaded by the service itself. Built by the benchmark with the system's cc.
 */
#include <stddef.h>
#include <sys/types.h>

int fsync(int fd) { (void)fd; return 0; }
int fdatasync(int fd) { (void)fd; return 0; }
int syncfs(int fd) { (void)fd; return 0; }
void sync(void) {}
int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags) {
    (void)fd; (void)offset; (void)nbytes; (void)flags;
    return 0;
}
int msync(void *addr, size_t length, int flags) {
    (void)addr; (void)length; (void)flags;
    return 0;
}
