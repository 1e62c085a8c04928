/*
 * proto: the control protocol, spoken by hcowctl to the supervisor and by
 * the supervisor to its worker.
 *
 * A request is one line of at most PROTO_LINE_MAX bytes:
 *
 *     FORMAT VERB [KEY=VALUE ...]\n        e.g. "json create name=vm1.img template=deb12.img"
 *
 * FORMAT is "text" (for people) or "json" (for scripts).  Words are separated
 * by one space and hold printable ASCII only; values never need quoting
 * because names are restricted (names.h).
 *
 * hcowctl <-> supervisor, over the control socket: one request per
 * connection; the reply is a status line, "ok\n" or "error ERRNO\n", then the
 * body (the result, or a one-line message), then the server closes.
 *
 * supervisor <-> worker, over a socketpair: the request line is prefixed by
 * a request id ("17 json disks\n"); the reply is "ID ERRNO LEN\n" followed by
 * LEN bytes of body (ERRNO 0 = ok).  Ids let the supervisor drop the late
 * reply of a request it already answered itself (worker too slow, or gone).
 */
#ifndef HCOWFS_PROTO_H
#define HCOWFS_PROTO_H

#include <stddef.h>
#include <sys/types.h>

#define PROTO_LINE_MAX	4096
#define PROTO_ARGS_MAX	16
#define PROTO_BODY_MAX	(16u << 20)	/* sanity bound on a reply body */

/*
 * The bound on a reply body this process applies: PROTO_BODY_MAX, or less
 * under the test-only environment variable HCOWFS_TEST_REPLY_MAX (bytes), so
 * a test can outgrow it with a few thousand disks.  A worker never sends a
 * body over it (the request fails with EFBIG instead): a frame over it would
 * be a broken stream to the supervisor.
 */
size_t proto_body_max(void);

/* Where mount.hcowfs puts control sockets, one per mount (MAJ:MIN.sock). */
#define PROTO_RUNDIR	"/run/hcowfs"

struct proto_req {
	int	 json;		/* FORMAT was "json" */
	char	*verb;
	int	 nargs;
	char	*key[PROTO_ARGS_MAX];
	char	*val[PROTO_ARGS_MAX];
};

/*
 * Split line (modified in place, no trailing newline) into req.
 * Returns 0, or -EINVAL with *why naming what is malformed.
 */
int proto_parse(char *line, struct proto_req *req, const char **why);

/*
 * The status line of a reply to hcowctl (without '\n'): "ok" sets *err = 0,
 * "error ERRNO" sets *err = ERRNO (> 0).  0, or -EINVAL if malformed.
 */
int proto_parse_status(const char *line, int *err);

/*
 * A request from the supervisor to its worker, "ID REQUEST" (without '\n'):
 * sets *id and returns the request line that follows, or NULL if malformed.
 */
char *proto_parse_request_id(char *line, unsigned long long *id);

/* A worker's reply, split off the channel's byte stream. */
struct proto_frame {
	unsigned long long  id;		/* 0 = the worker's start-up message */
	int		    err;	/* 0 = ok, else an errno */
	const char	   *body;	/* points into the stream's buffer */
	size_t		    len;
};
#define PROTO_FRAME_HEAD_MAX	64	/* "ID ERRNO LEN\n" is never longer */

/*
 * Split the first frame ("ID ERRNO LEN\n" + LEN bytes of body) off buf[0, n).
 * Returns its whole length (> 0) with *f filled, 0 if buf does not hold a
 * whole frame yet, or -EINVAL if the stream is malformed (its head is not
 * three decimal numbers, LEN > PROTO_BODY_MAX, or no '\n' within
 * PROTO_FRAME_HEAD_MAX bytes): then nothing in the stream can be trusted.
 */
ssize_t proto_frame_split(const char *buf, size_t n, struct proto_frame *f);

/* The value of KEY, or NULL. */
const char *proto_arg(const struct proto_req *req, const char *key);

/*
 * Read one line (up to and without '\n') into buf.  Returns its length, 0 at
 * end of file before any byte, -E2BIG if longer than cap - 1, or -errno.
 */
ssize_t proto_read_line(int fd, char *buf, size_t cap);

/*
 * A line reader over a stream (the worker's control channel): one read()
 * takes whatever the channel holds, not one byte, and the bytes after the
 * line wait in buf for the next call.  So one reader must serve every line
 * read from its fd.
 */
struct proto_reader {
	int	 fd;
	size_t	 off, len;		/* unread bytes: buf[off, len) */
	char	 buf[PROTO_LINE_MAX + 64];
};

void proto_reader_init(struct proto_reader *r, int fd);

/*
 * The next line (up to and without '\n') into line[cap].  Returns its
 * length, 0 at end of file before any byte, -EPIPE at end of file within a
 * line, -E2BIG if longer than cap - 1 (the whole line is consumed), or -errno.
 */
ssize_t proto_reader_line(struct proto_reader *r, char *line, size_t cap);

/* write/read exactly len bytes; 0 or -errno (-EPIPE on early end of file). */
int proto_write_all(int fd, const void *buf, size_t len);
int proto_read_all(int fd, void *buf, size_t len);

/*
 * Read what the non-blocking fd has into buf[*len, cap), adding to *len.
 * Returns 1 when bytes came, 0 when there are none yet (or a signal came
 * first), -1 when the peer is gone (end of file, or an error).
 */
int proto_read_more(int fd, char *buf, size_t *len, size_t cap);

/* The control socket path of the mount on device major:minor. */
void proto_socket_path(unsigned major, unsigned minor, char *buf, size_t len);

#endif
