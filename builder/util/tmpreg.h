/* tmpreg.h: temporary paths to remove if the build is interrupted, and a commit lock.
 *
 * SIGINT and SIGTERM are handled on a dedicated thread (see main.c), not in a signal
 * handler: it kills running tools, removes every registered path and exits. Renaming
 * finished outputs into place happens under ib_commit_lock(), so an interrupt waits for
 * a group of renames to finish and never leaves one output renamed and its sibling not.
 */
#pragma once

/* Register a file or directory (removed recursively) to delete on interrupt. */
void ib_tmp_register(const char *path);
void ib_tmp_unregister(const char *path);
/* Remove everything registered (the interrupt path). */
void ib_tmp_cleanup_all(void);

void ib_commit_lock(void);
void ib_commit_unlock(void);
