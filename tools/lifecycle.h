/*
 * lifecycle: hcowctl's data movers (lifecycle.c): export a disk as a qcow2
 * overlay of its template, import such an overlay as a disk, promote a disk
 * to a new template.  Each returns the exit status, or exits 1 with one
 * line after cleaning up (failure, SIGINT, SIGTERM).
 */
#ifndef HCOWFS_LIFECYCLE_H
#define HCOWFS_LIFECYCLE_H

#include "json.h"
#include "mounts.h"
#include "sbuf.h"

int lifecycle_export(const struct hcow_mount *m, const char *name, const char *out);
int lifecycle_import(const struct hcow_mount *m, const char *in, const char *name,
    const char *tmpl);
int lifecycle_promote(const struct hcow_mount *m, const char *name, const char *tmpl);

#endif
