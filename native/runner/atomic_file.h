/*
 * atomic_file.h - write a file so that, whatever happens (an error, kill -9, a power cut), the
 * path holds either its old contents or the complete new ones, never part of them. For the
 * runner (edge-lsh-run) on Linux; POSIX, not for the microcontrollers (they save to flash
 * slots: edge_lsh_slots.h).
 *
 * The same steps and names as edge_lsh/fileio.py's atomic_write: the bytes go to a temporary
 * file .NAME.XXXXXXXX.tmp in the target's folder (X: [a-z0-9_], created exclusively, with the
 * old file's permissions or 0666 less the umask), which is fsynced, renamed over the target,
 * and then the folder is fsynced so the rename itself survives a power cut. On any error the
 * temporary file is removed and the target left as it was. Temporary files of this target
 * that a killed save left behind are removed by the next save once they are over
 * ELSH_ATOMIC_STALE_SECONDS old (a younger one may belong to a save still running).
 *
 *   elsh_atomic_file f;
 *   char err[512];
 *   if (elsh_atomic_begin(&f, "m2.elsh", err, sizeof err) != 0 ||
 *       elsh_atomic_write(&f, bytes, n, err, sizeof err) != 0 ||
 *       elsh_atomic_commit(&f, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); ... }
 *
 * A failed write or commit has already removed the temporary file; elsh_atomic_abort() is for
 * a caller that gives up between begin and commit for reasons of its own.
 */
#ifndef ELSH_ATOMIC_FILE_H
#define ELSH_ATOMIC_FILE_H

#include <stddef.h>

#define ELSH_ATOMIC_PATH_MAX 4096
#define ELSH_ATOMIC_STALE_SECONDS 60

typedef struct {
    int fd; /* the temporary file, -1 when none is open */
    char path[ELSH_ATOMIC_PATH_MAX];
    char tmp_path[ELSH_ATOMIC_PATH_MAX];
} elsh_atomic_file;

/* Remove stale temporaries of path, then create the temporary file. 0, or -1 with one line in
 * err (the path and why). */
int elsh_atomic_begin(elsh_atomic_file *f, const char *path, char *err, size_t err_len);

/* Append n bytes. 0, or -1 with err filled (the temporary file is then removed). */
int elsh_atomic_write(elsh_atomic_file *f, const void *data, size_t n, char *err, size_t err_len);

/* fsync, rename over the target, fsync the folder. 0, or -1 with err filled (the temporary
 * file removed, the target as it was). A folder that cannot be synced (some file systems) is
 * not an error, as in fileio.py. */
int elsh_atomic_commit(elsh_atomic_file *f, char *err, size_t err_len);

/* Close and remove the temporary file; the target stays as it was. Safe to call twice. */
void elsh_atomic_abort(elsh_atomic_file *f);

/* begin + write + commit of one buffer. */
int elsh_atomic_write_file(const char *path, const void *data, size_t n, char *err,
                           size_t err_len);

#endif /* ELSH_ATOMIC_FILE_H */
