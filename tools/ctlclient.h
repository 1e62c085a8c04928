/*
 * ctlclient: hcowctl's way to a mount's supervisor (ctlclient.c): find the
 * mount, send one request, parse the status, fail with one line.
 */
#ifndef HCOWFS_CTLCLIENT_H
#define HCOWFS_CTLCLIENT_H

#include "json.h"
#include "mounts.h"
#include "sbuf.h"

#define REPLY_TIMEOUT_S	150	/* the longest an answer may take (but a check's) */

extern const char *prog;	/* the program's name, first on every message */

/* A line on stderr, "hcowctl: ..." and exit(1). */
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* The mount at want (a path), or the only one; fails (exits) when none or several. */
void find_mount(const char *want, struct hcow_mount *m);
/*
 * Send one request line; the answer goes to body, and also to stdout (or,
 * refused, stderr) as it comes when echo is set.  Returns the answer's error
 * (0: done); fails (exits) when there is no answer.
 */
int ask(const struct hcow_mount *m, const char *line, int wait_s, struct sbuf *body, int echo);
/* The mount's status, parsed; fails (exits) when it cannot be had. */
struct json *status_get(const struct hcow_mount *m);

#endif
