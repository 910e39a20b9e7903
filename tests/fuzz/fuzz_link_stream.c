/*
 * fuzz_link_stream.c - what a link endpoint reads from anyone who
 * reaches its TCP port, before and after the MAC: the framing of the
 * stream (link_ux_rd, length words split across reads, announcements
 * over the bounds) and link.c's chunk callback (the trailer's MAC,
 * time and replay checks, then the from word and the envelopes).
 *
 * The first byte picks the read size and the mode.  Raw mode: the
 * rest is the stream as it came.  Signed mode: the rest is payloads,
 * each a 2-byte length and its bytes, that the harness frames and
 * signs as a peer with the link key would (a fresh stream id per
 * input), so the fuzzer gets past the MAC to the envelopes; two more
 * bits make the second chunk reuse the first one's sequence number (a
 * replay) or date every chunk outside the time window.  Each chunk must lie inside the bytes read, read in
 * pieces it must be the same as read at once, and after each read
 * there is room for the next.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/link.h"
#include "lib/link_int.h"
#define FUZZ_SETUP fuzz_setup
#include "tests/fuzz/fuzz.h"

#define FUZZ_STREAM_MAX (64 * 1024)

static const unsigned char fuzz_key[LINK_KEY_LEN] = "fuzz_link: a fixed test key";
static uv_loop_t fuzz_loop;
static struct link *fuzz_link;
static uint64_t fuzz_stream_id;

static void
fuzz_on_envelope(void *arg, const char *buf, size_t len)
{
	volatile char sink = 0;

	(void)arg;
	/* ASan checks that the envelope lies inside its chunk. */
	if (len)
		sink = buf[0] ^ buf[len - 1];
	(void)sink;
}

/* A link at a tcp:// endpoint (so it verifies) on a free loopback
 * port; the loop never runs: nothing but the harness feeds it. */
static void
fuzz_setup(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	char url[64];
	int fd, rc = -1;

	if (uv_loop_init(&fuzz_loop) != 0)
		__builtin_trap();
	for (int i = 0; i < 8 && rc != 0; i++) {
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sa.sin_port = 0;
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sl) != 0 ||
		    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
			__builtin_trap();
		close(fd);
		snprintf(url, sizeof(url), "tcp://127.0.0.1:%d",
			 ntohs(sa.sin_port));
		rc = link_new(&fuzz_link, &fuzz_loop, url, fuzz_key,
			      fuzz_on_envelope, NULL);
	}
	if (rc != 0)
		__builtin_trap();
}

static void
fuzz_put(unsigned char *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

/* The payloads of in (2-byte length, bytes) as signed chunks into out:
 * its length. */
static size_t
fuzz_sign(const uint8_t *in, size_t len, int replay, int stale,
	  unsigned char *out, size_t cap)
{
	struct timespec ts;
	uint64_t seq = 0, now;
	size_t o = 0, n;
	unsigned int mdlen;
	int k = 0;
	unsigned char md[EVP_MAX_MD_SIZE];

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	if (stale)
		now -= LINK_WINDOW_MS + 1000;
	fuzz_stream_id++;
	while (len >= 2) {
		n = (size_t)in[0] << 8 | in[1];
		in += 2;
		len -= 2;
		if (n > len)
			n = len;
		if (o + LINK_UX_HDR + n + LINK_TRAILER_LEN > cap)
			break;
		fuzz_put(out + o, n + LINK_TRAILER_LEN, LINK_UX_HDR);
		o += LINK_UX_HDR;
		memcpy(out + o, in, n);
		fuzz_put(out + o + n, fuzz_stream_id, 8);
		/* A replay: the second chunk takes the first one's number. */
		if (!replay || k++ != 1)
			seq++;
		fuzz_put(out + o + n + 8, seq, 8);
		fuzz_put(out + o + n + 16, now, 8);
		HMAC(EVP_sha256(), fuzz_key, LINK_KEY_LEN, out + o, n + 24, md,
		     &mdlen);
		memcpy(out + o + n + 24, md, LINK_TRAILER_LEN - 24);
		o += n + LINK_TRAILER_LEN;
		in += n;
		len -= n;
	}
	return o;
}

/* What link_ux_in_on_readable allows: an untrusted connection no more
 * than its first buffer. */
static size_t
fuzz_max(int trusted)
{
	return trusted ? LINK_MAX_MSG : LINK_UX_IN_BYTES - LINK_UX_HDR;
}

/* The chunks of s read at once, as (offset in s, length) pairs, until
 * the first the stream cannot go past: how many. */
static int
fuzz_at_once(const unsigned char *s, size_t len, size_t *at, size_t *lens,
	     int max)
{
	struct link_ux_rd r;
	const unsigned char *chunk;
	size_t n;
	int k = 0;

	if (link_ux_rd_init(&r) != 0)
		__builtin_trap();
	if (len > r.cap)
		len = r.cap;
	memcpy(r.buf, s, len);
	r.len = len;
	while (k < max && link_ux_rd_next(&r, fuzz_max(k > 0), &chunk, &n) > 0) {
		at[k] = (size_t)(chunk - r.buf);
		lens[k++] = n;
	}
	link_ux_rd_fini(&r);
	return k;
}

/*
 * The stream read in pieces of step bytes as link_ux_in_on_readable
 * does, each chunk to link.c; every chunk must match the one-read
 * split while the stream fits a first read.
 */
static void
fuzz_read(const unsigned char *s, size_t len, size_t step)
{
	static size_t at[FUZZ_STREAM_MAX], lens[FUZZ_STREAM_MAX];
	struct link_ux_rd r;
	const unsigned char *chunk;
	size_t pos = 0, took = 0, n, got;
	int trusted = 0, k = 0, once, rc;

	once = fuzz_at_once(s, len, at, lens, FUZZ_STREAM_MAX);
	if (link_ux_rd_init(&r) != 0)
		__builtin_trap();
	while (pos < len) {
		if (r.cap <= r.len)
			__builtin_trap();	/* no room to read */
		got = r.cap - r.len < step ? r.cap - r.len : step;
		if (got > len - pos)
			got = len - pos;
		memcpy(r.buf + r.len, s + pos, got);
		r.len += got;
		pos += got;
		while ((rc = link_ux_rd_next(&r, fuzz_max(trusted), &chunk,
					     &n)) > 0) {
			if (chunk < r.buf || chunk + n > r.buf + r.len)
				__builtin_trap();
			if (len <= LINK_UX_IN_BYTES &&
			    (k >= once || lens[k] != n ||
			     memcmp(s + at[k], chunk, n) != 0))
				__builtin_trap();
			k++;
			took += LINK_UX_HDR + n;
			if (link_on_ux_chunk(fuzz_link, chunk, n) < 0)
				goto done;	/* the connection closes */
			trusted = 1;
		}
		if (rc < 0) {
			link_on_ux_chunk(fuzz_link, NULL, n);
			goto done;
		}
		if (link_ux_rd_keep(&r) != 0 || r.len != pos - took)
			__builtin_trap();
	}
	if (len <= LINK_UX_IN_BYTES && k != once)
		__builtin_trap();
done:
	link_ux_rd_fini(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char signed_buf[FUZZ_STREAM_MAX];
	const unsigned char *s = data + 1;
	size_t len = size - 1, step;

	if (size < 1 || size > FUZZ_STREAM_MAX / 2)
		return 0;
	step = (size_t)(data[0] >> 3) * 389 + 1;
	if (data[0] & 1) {
		len = fuzz_sign(data + 1, size - 1, data[0] & 2, data[0] & 4,
				signed_buf, sizeof(signed_buf));
		s = signed_buf;
	}
	fuzz_read(s, len, step);
	return 0;
}
