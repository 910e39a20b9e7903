/*
 * edge_limit.c - per-source rate limits (Kamailio's pike, but exact):
 * a GCRA token bucket per source and kind (requests, new connections,
 * 503s), in one table that every edge of a host maps, so a source
 * spreading its flood over the host's edges meets one limit.
 *
 * A source is an IPv4 address or an IPv6 /64 (edge_source_key()).  The
 * table is open-addressed: a source lives in one of EDGE_LIMIT_PROBE
 * slots from the SipHash of its key under the host's key, tagged with
 * the hash itself (a 64-bit collision under a secret key is not a
 * thing a sender can arrange).  GCRA needs one word per bucket, the
 * theoretical arrival time: a request passes when that time is at most
 * slack ahead of now, and moves it one interval on; a compare-and-swap
 * makes that exact under races.  A slot whose buckets are all full
 * again (every arrival time past) and whose source has not been refused
 * for EDGE_LIMIT_QUIET_MS is idle: it is the same as a fresh one, so a
 * new source takes it over by swapping the tag, with nothing to reset.
 * When every slot of a probe run is busy the event passes, counted
 * (EDGE_LIMIT_FULL): a spoofing flood spread over more sources than
 * the table holds is not one a per-source limit stops anyway.
 *
 * No locks: a killed process leaves at most a bucket one event fuller.
 * Cost: one SipHash, at most EDGE_LIMIT_PROBE slot reads, one CAS.
 * Memory: EDGE_LIMIT_SLOTS * 48 bytes (3 MiB) per host, touched only
 * where sources land.
 */
#include "edge/edge_int.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOAD(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define CAS(p, o, n)	__atomic_compare_exchange_n((p), (o), (n), 0, \
				__ATOMIC_RELAXED, __ATOMIC_RELAXED)

/* Maps the named segment, sizing it when this process made it.  Any
 * other size is an older layout: it holds soft state only, so it is
 * replaced (once). */
static int
edge_limit_map(struct edge_limit *l, const char *name)
{
	struct stat st;
	void *p;
	int fd, rc = 0;

	for (int tries = 0;; tries++) {
		fd = shm_open(name, O_RDWR | O_CREAT, 0600);
		if (fd < 0)
			return -errno;
		if (fstat(fd, &st) < 0) {
			rc = -errno;
			goto out;
		}
		if ((size_t)st.st_size == l->size)
			break;
		if (st.st_size == 0) {
			/* posix_fallocate: a full /dev/shm fails here, not
			 * with SIGBUS on some later packet.  Two edges sizing
			 * it at once give it the same size. */
			rc = -posix_fallocate(fd, 0, (off_t)l->size);
			if (rc < 0)
				goto out;
			break;
		}
		close(fd);
		if (tries > 0)
			return -EEXIST;
		shm_unlink(name);
	}
	p = mmap(NULL, l->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		goto out;
	}
	l->slot = p;
	l->shared = 1;
out:
	close(fd);
	return rc;
}

int
edge_limit_open(struct edge_limit *l, const char *name,
		const struct hash_key *key)
{
	int rc;

	memset(l, 0, sizeof(*l));
	l->key = *key;
	l->size = sizeof(struct edge_limit_slot) * EDGE_LIMIT_SLOTS;
	if (name) {
		rc = edge_limit_map(l, name);
		if (rc == 0)
			return 0;
		log_warn(LOG_SYS_NET, "rate limits: shared table %s: %s; this "
			 "edge keeps its own", name, strerror(-rc));
	}
	l->slot = calloc(EDGE_LIMIT_SLOTS, sizeof(*l->slot));
	return l->slot ? 0 : -ENOMEM;
}

void
edge_limit_close(struct edge_limit *l)
{
	if (l->slot == NULL)
		return;
	if (l->shared)
		munmap(l->slot, l->size);
	else
		free(l->slot);
	l->slot = NULL;
}

void
edge_limit_set(struct edge_limit *l, int kind, int rate, int burst)
{
	struct edge_limit_rate *r = &l->rate[kind];

	if (rate <= 0) {
		r->every_us = r->slack_us = 0;
		return;
	}
	r->every_us = 1000000 / (uint64_t)rate;
	if (r->every_us == 0)
		r->every_us = 1;
	r->slack_us = (uint64_t)(burst > 1 ? burst - 1 : 0) * r->every_us;
}

static int
edge_limit_idle(const struct edge_limit_slot *s, uint64_t now_us)
{
	uint64_t now_ms = now_us / 1000;

	for (int k = 0; k < EDGE_LIMIT__COUNT; k++)
		if (LOAD(&s->tat_us[k]) > now_us)
			return 0;
	for (int k = 0; k < EDGE_LIMIT_LOGGED; k++) {
		uint64_t r = LOAD(&s->refused_ms[k]);

		if (r && now_ms - r < EDGE_LIMIT_QUIET_MS)
			return 0;
	}
	return 1;
}

/* src's slot, taking a free or idle one for a new source; NULL when
 * all its candidates are busy. */
static struct edge_limit_slot *
edge_limit_slot(struct edge_limit *l, const union env_sa *src,
		uint64_t now_us)
{
	const size_t mask = EDGE_LIMIT_SLOTS - 1;
	unsigned char net[16];
	uint64_t h, t;
	size_t i0;

	edge_source_key(src, net);
	h = hash_sip(&l->key, net, sizeof(net));
	if (h == 0)
		h = 1;
	i0 = (size_t)h & mask;
	for (size_t i = 0; i < EDGE_LIMIT_PROBE; i++)
		if (LOAD(&l->slot[(i0 + i) & mask].tag) == h)
			return &l->slot[(i0 + i) & mask];
	for (size_t i = 0; i < EDGE_LIMIT_PROBE; i++) {
		struct edge_limit_slot *s = &l->slot[(i0 + i) & mask];

		t = LOAD(&s->tag);
		if (t != 0 && !edge_limit_idle(s, now_us))
			continue;
		/* Lost the race: the winner may be src itself. */
		if (CAS(&s->tag, &t, h) || t == h)
			return s;
	}
	return NULL;
}

int
edge_limit_check(struct edge_limit *l, int kind, const union env_sa *src,
		 uint64_t now_us, uint64_t *wait_us)
{
	const struct edge_limit_rate *r = &l->rate[kind];
	struct edge_limit_slot *s;
	uint64_t tat, from, prev;

	if (r->every_us == 0)
		return EDGE_LIMIT_PASS;
	s = edge_limit_slot(l, src, now_us);
	if (s == NULL)
		return EDGE_LIMIT_FULL;
	tat = LOAD(&s->tat_us[kind]);
	for (;;) {
		from = tat > now_us ? tat : now_us;
		if (from - now_us > r->slack_us)
			break;
		if (CAS(&s->tat_us[kind], &tat, from + r->every_us))
			return EDGE_LIMIT_PASS;
	}
	if (wait_us)
		*wait_us = from - now_us - r->slack_us;
	if (kind >= EDGE_LIMIT_LOGGED)
		return EDGE_LIMIT_DROP;
	/* One process per host sees the start of the period. */
	prev = __atomic_exchange_n(&s->refused_ms[kind], now_us / 1000,
				   __ATOMIC_RELAXED);
	return prev == 0 || now_us / 1000 - prev >= EDGE_LIMIT_QUIET_MS ?
		EDGE_LIMIT_DROP_FIRST : EDGE_LIMIT_DROP;
}
