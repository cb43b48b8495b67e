/* fault_shim.c - linked into atomic_save_driver with -Wl,--wrap=write,--wrap=fsync,
 * --wrap=rename (tests/test_power_cut.py): logs "fsync file", "fsync folder" and "rename" to
 * stderr, and fails the call named by the environment variable ELSH_FAIL (write: ENOSPC,
 * fsync: EIO, rename: EXDEV) so that the error paths can be checked. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

ssize_t __real_write(int fd, const void *buf, size_t n);
int __real_fsync(int fd);
int __real_rename(const char *from, const char *to);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
int __wrap_fsync(int fd);
int __wrap_rename(const char *from, const char *to);

static int failing(const char *call)
{
    const char *f = getenv("ELSH_FAIL");
    return f && strcmp(f, call) == 0;
}

ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
    if (fd > 2 && failing("write")) {
        errno = ENOSPC;
        return -1;
    }
    return __real_write(fd, buf, n);
}

int __wrap_fsync(int fd)
{
    struct stat st;
    int is_dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    fprintf(stderr, "fsync %s\n", is_dir ? "folder" : "file");
    if (!is_dir && failing("fsync")) {
        errno = EIO;
        return -1;
    }
    return __real_fsync(fd);
}

int __wrap_rename(const char *from, const char *to)
{
    fprintf(stderr, "rename\n");
    if (failing("rename")) {
        errno = EXDEV;
        return -1;
    }
    return __real_rename(from, to);
}
