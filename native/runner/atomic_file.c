/* atomic_file.c - temporary file, fsync, rename, fsync of the folder (atomic_file.h). POSIX. */
#define _POSIX_C_SOURCE 200809L

#include "atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char name_chars[] = "abcdefghijklmnopqrstuvwxyz0123456789_"; /* mkstemp's */
#define RANDOM_CHARS 8

static void set_err(char *err, size_t err_len, const char *path, const char *what, int errnum)
{
    if (!err || err_len == 0) return;
    if (errnum)
        snprintf(err, err_len, "%s: %s (%s)", path, what, strerror(errnum));
    else
        snprintf(err, err_len, "%s: %s", path, what);
}

/* the folder part of path ("." when there is none) and where the file name starts */
static int split_path(const char *path, char *folder, size_t folder_len, const char **name)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        *name = path;
        return snprintf(folder, folder_len, ".") < (int)folder_len ? 0 : -1;
    }
    *name = slash + 1;
    size_t n = slash == path ? 1 : (size_t)(slash - path); /* "/x": the root */
    if (n >= folder_len) return -1;
    memcpy(folder, path, n);
    folder[n] = '\0';
    return 0;
}

/* .NAME.XXXXXXXX.tmp, the name fileio.py's atomic_write gives its temporary files */
static int is_temporary_of(const char *entry, const char *name)
{
    size_t n = strlen(name), len = strlen(entry);
    if (len != 1 + n + 1 + RANDOM_CHARS + 4) return 0;
    if (entry[0] != '.' || strncmp(entry + 1, name, n) != 0 || entry[1 + n] != '.') return 0;
    for (size_t i = 0; i < RANDOM_CHARS; i++)
        if (!entry[2 + n + i] || !strchr(name_chars, entry[2 + n + i])) return 0;
    return strcmp(entry + 2 + n + RANDOM_CHARS, ".tmp") == 0;
}

/* remove the regular files that are temporaries of name in folder, untouched for
 * ELSH_ATOMIC_STALE_SECONDS: left by a save that was killed */
static void remove_stale_temporaries(const char *folder, const char *name)
{
    DIR *dir = opendir(folder);
    if (!dir) return;
    time_t now = time(NULL);
    char full[ELSH_ATOMIC_PATH_MAX];
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (!is_temporary_of(e->d_name, name)) continue;
        if (snprintf(full, sizeof full, "%s/%s", folder, e->d_name) >= (int)sizeof full) continue;
        struct stat st;
        if (lstat(full, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (difftime(now, st.st_mtime) > (double)ELSH_ATOMIC_STALE_SECONDS) (void)unlink(full);
    }
    closedir(dir);
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

int elsh_atomic_begin(elsh_atomic_file *f, const char *path, char *err, size_t err_len)
{
    if (!f) return -1;
    f->fd = -1;
    f->path[0] = f->tmp_path[0] = '\0';
    if (!path || !*path) {
        set_err(err, err_len, "(empty path)", "not a file name", 0);
        return -1;
    }
    char folder[ELSH_ATOMIC_PATH_MAX];
    const char *name;
    if (strlen(path) >= sizeof f->path || split_path(path, folder, sizeof folder, &name) != 0) {
        set_err(err, err_len, path, "path too long", 0);
        return -1;
    }
    struct stat st;
    mode_t mode = 0666; /* less the umask, as open() applies it */
    int keep_mode = 0;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            set_err(err, err_len, path, "is a folder; give a file name", 0);
            return -1;
        }
        mode = st.st_mode & 0777;
        keep_mode = 1;
    }
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        set_err(err, err_len, path, "not a file name", 0);
        return -1;
    }
    remove_stale_temporaries(folder, name);
    strcpy(f->path, path);

    static uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t state = mix64((uint64_t)getpid() ^ ((uint64_t)ts.tv_nsec << 20) ^
                           (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)f ^ (++counter << 40));
    const char *sep = strchr(path, '/') ? "/" : "";
    const char *dir = strchr(path, '/') ? folder : "";
    if (strcmp(folder, "/") == 0) sep = "";
    for (int attempt = 0; attempt < 100; attempt++) {
        char rnd[RANDOM_CHARS + 1];
        state = mix64(state);
        for (int i = 0; i < RANDOM_CHARS; i++)
            rnd[i] = name_chars[(state >> (6 * i)) % (sizeof name_chars - 1)];
        rnd[RANDOM_CHARS] = '\0';
        if (snprintf(f->tmp_path, sizeof f->tmp_path, "%s%s.%s.%s.tmp", dir, sep, name, rnd) >=
            (int)sizeof f->tmp_path) {
            set_err(err, err_len, path, "path too long", 0);
            return -1;
        }
        f->fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, keep_mode ? 0600 : mode);
        if (f->fd >= 0) break;
        if (errno != EEXIST) {
            int e = errno;
            f->tmp_path[0] = '\0';
            const char *why = e == ENOENT ? "the folder does not exist"
                                          : "cannot create a file in its folder";
            set_err(err, err_len, path, why, e);
            return -1;
        }
    }
    if (f->fd < 0) {
        f->tmp_path[0] = '\0';
        set_err(err, err_len, path, "no free temporary file name in its folder", 0);
        return -1;
    }
    if (keep_mode && fchmod(f->fd, mode) != 0) {
        int e = errno;
        elsh_atomic_abort(f);
        set_err(err, err_len, path, "cannot set the permissions of the new file", e);
        return -1;
    }
    return 0;
}

int elsh_atomic_write(elsh_atomic_file *f, const void *data, size_t n, char *err, size_t err_len)
{
    if (!f || f->fd < 0) {
        set_err(err, err_len, f ? f->path : "(none)", "not open for writing", 0);
        return -1;
    }
    const unsigned char *p = (const unsigned char *)data;
    while (n > 0) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            set_err(err, err_len, f->path, "cannot write", e);
            elsh_atomic_abort(f);
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* fsync a folder so a rename in it is on disk; where that is not possible there is nothing to
 * do (as fileio.py's _fsync_folder) */
static void fsync_folder(const char *folder)
{
    int fd = open(folder, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

int elsh_atomic_commit(elsh_atomic_file *f, char *err, size_t err_len)
{
    if (!f || f->fd < 0) {
        set_err(err, err_len, f ? f->path : "(none)", "not open for writing", 0);
        return -1;
    }
    if (fsync(f->fd) != 0) {
        int e = errno;
        set_err(err, err_len, f->path, "cannot write (fsync)", e);
        elsh_atomic_abort(f);
        return -1;
    }
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0) {
        int e = errno;
        set_err(err, err_len, f->path, "cannot write (close)", e);
        elsh_atomic_abort(f);
        return -1;
    }
    if (rename(f->tmp_path, f->path) != 0) {
        int e = errno;
        set_err(err, err_len, f->path, "cannot replace the file", e);
        elsh_atomic_abort(f);
        return -1;
    }
    f->tmp_path[0] = '\0';
    char folder[ELSH_ATOMIC_PATH_MAX];
    const char *name;
    if (split_path(f->path, folder, sizeof folder, &name) == 0) fsync_folder(folder);
    return 0;
}

void elsh_atomic_abort(elsh_atomic_file *f)
{
    if (!f) return;
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
    if (f->tmp_path[0]) {
        (void)unlink(f->tmp_path);
        f->tmp_path[0] = '\0';
    }
}

int elsh_atomic_write_file(const char *path, const void *data, size_t n, char *err,
                           size_t err_len)
{
    elsh_atomic_file f;
    if (elsh_atomic_begin(&f, path, err, err_len) != 0) return -1;
    if (elsh_atomic_write(&f, data, n, err, err_len) != 0) return -1;
    return elsh_atomic_commit(&f, err, err_len);
}
