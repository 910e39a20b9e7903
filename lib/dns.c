/*
 * dns.c - the RFC 3263 server locator on c-ares and libuv.
 *
 * c-ares tells which sockets it wants watched (ARES_OPT_SOCK_STATE_CB):
 * each gets a uv_poll, and one uv_timer follows ares_timeout(); both
 * call ares_process_fd, so nothing ever blocks.
 *
 * The cache holds one entry per (name, type): a query in flight, or
 * the answer as lib/dns_msg.c read it (records, or "none": NXDOMAIN
 * and NODATA alike, RFC 2308) until its TTL ends.  Entries sit in a
 * hash table and an LRU list bounded by cache_size; a second locate
 * asking for a name in flight waits on the same query.  Failures (timeout, SERVFAIL,
 * garbage) are never cached.
 *
 * A locate is a walk over the cache: NAPTR of the host, SRV of each
 * usable NAPTR, A/AAAA of each SRV target.  Every entry the walk needs
 * is pinned by the locate (so neither TTL nor eviction takes it away
 * mid-locate) and asked for when missing; once none it pinned is in
 * flight, the walk runs again from the top, until it completes with
 * nothing missing.  The weighted SRV order comes from a seed per
 * locate, so every walk of one locate sees the same order.  Walks and
 * callbacks run from one zero-delay timer, never from inside c-ares or
 * dns_locate, so a callback may call anything here.
 *
 * Dead targets (dns_block) sit in a second table, bounded, oldest out
 * first; a locate's list puts them last when it is handed over.
 *
 * Cost: a locate answered from the cache is a few hash lookups and a
 * sort of at most DNS_RR_MAX records per set; one that misses is at
 * most 1 NAPTR + DNS_NAPTR_MAX SRV + 2 per target address queries,
 * bounded by DNS_PINS_MAX.  Memory: cache_size entries of at most
 * DNS_RR_MAX records each, plus what running locates pin.
 */
#include <arpa/inet.h>
#include <ares.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/dns.h"
#include "lib/dns_msg.h"
#include "lib/hash.h"
#include "lib/htab.h"
#include "lib/list.h"
#include "lib/log.h"

#define DNS_NAPTR_MAX 4		/* NAPTR records followed per locate */
#define DNS_PINS_MAX 96		/* (name, type) one locate may use */

/* Where a locate is in RFC 3263's fallback: each stage that finds
 * nothing (and no failure) hands over to the next. */
enum dns_stage {
	DNS_STAGE_NAPTR,
	DNS_STAGE_SRV,
	DNS_STAGE_HOST,
	DNS_STAGE_DONE,
};

struct dns_entry {
	struct htab_node hnode;	/* in d->cache while in_hash */
	struct list_node lru;	/* d->lru while in_hash, newest first */
	struct list_node pins;	/* struct dns_pin of the locates using it */
	struct dns *d;
	uint64_t expires;	/* loop ms; meaningful once !pending */
	int type;
	int err;		/* 0, -ENOENT (none), -ETIMEDOUT, -EIO, ... */
	unsigned pending:1;	/* no answer yet */
	unsigned in_hash:1;
	unsigned in_flight:1;	/* c-ares holds a pointer to it */
	struct dns_answer a;	/* once !pending and err == 0 */
	char name[];		/* lower case, no trailing dot */
};

struct dns_pin {
	struct list_node node;	/* in e->pins */
	struct dns_entry *e;
	struct dns_query *q;
};

struct dns_query {
	struct list_node node;	/* d->run or d->wait; none while walked */
	struct dns *d;
	dns_locate_cb cb;
	void *arg;
	int stage;
	int waiting;		/* pinned entries still pending */
	int err;		/* the first failure the last walk met */
	int transport, port, sips;
	uint64_t seed;
	int npin;
	struct dns_pin pin[DNS_PINS_MAX];
	int n;
	struct dns_target t[DNS_TARGETS_MAX];
	char host[DNS_NAME_MAX + 1];
};

/* A dead target; key is (transport, family, port, address). */
struct dns_block {
	struct htab_node hnode;	/* in d->blocks */
	struct list_node node;	/* d->block_age, oldest first */
	uint64_t until;		/* loop ms */
	unsigned char key[20];
};

struct dns_sock {
	uv_poll_t poll;
	struct list_node node;	/* d->socks while c-ares uses the fd */
	struct dns *d;
	ares_socket_t fd;
};

struct dns {
	uv_loop_t *loop;
	ares_channel ch;
	uv_timer_t timer;	/* ares_timeout */
	uv_timer_t kick;	/* zero delay: runs d->run */
	struct list_node socks;
	struct list_node run;	/* locates to walk (or deliver) */
	struct list_node wait;	/* locates waiting for answers */
	struct htab cache;
	struct list_node lru;
	struct htab blocks;
	struct list_node block_age;
	struct dns_config cfg;
	uint64_t rand;
	unsigned long sent;
	int handles;		/* uv handles not yet closed */
	unsigned in_kick:1;
	unsigned freeing:1;
};

static void dns_kick_cb(uv_timer_t *t);
static void dns_timer_cb(uv_timer_t *t);

/* splitmix64: the SRV weights' dice, seeded per locate. */
static uint64_t
dns_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* ---- memory of handles ---- */

static void
dns_handle_closed(uv_handle_t *h)
{
	struct dns *d = h->data;

	if (--d->handles == 0)
		free(d);
}

static void
dns_sock_closed(uv_handle_t *h)
{
	struct dns_sock *s = h->data;
	struct dns *d = s->d;

	free(s);
	if (--d->handles == 0)
		free(d);
}

/* ---- cache entries ---- */

static uint64_t
dns_key_hash(const char *name, int type)
{
	return hash_sip(hash_process_key(), name, strlen(name)) ^
	       (uint64_t)type * 0x100000001b3ULL;
}

struct dns_key {
	const char *name;
	int type;
};

static int
dns_key_eq(const struct htab_node *n, const void *key)
{
	const struct dns_entry *e = htab_entry(n, struct dns_entry, hnode);
	const struct dns_key *k = key;

	return e->type == k->type && strcmp(e->name, k->name) == 0;
}

/* Frees e once nothing refers to it: the table, c-ares, a locate. */
static void
dns_entry_release(struct dns_entry *e)
{
	if (e->in_hash || e->in_flight || !list_empty(&e->pins))
		return;
	dns_msg_fini(&e->a);
	free(e);
}

static void
dns_entry_unhash(struct dns_entry *e)
{
	if (!e->in_hash)
		return;
	htab_del(&e->d->cache, &e->hnode);
	list_remove(&e->lru);
	e->in_hash = 0;
	dns_entry_release(e);
}

/* The live entry for (name, type), made the newest; NULL if none or
 * expired (the expired one leaves the table). */
static struct dns_entry *
dns_cache_get(struct dns *d, const char *name, int type)
{
	struct dns_key k = { name, type };
	struct htab_node *n;
	struct dns_entry *e;

	n = htab_find(&d->cache, dns_key_hash(name, type), dns_key_eq, &k);
	if (n == NULL)
		return NULL;
	e = htab_entry(n, struct dns_entry, hnode);
	if (!e->pending && uv_now(d->loop) >= e->expires) {
		dns_entry_unhash(e);
		return NULL;
	}
	list_remove(&e->lru);
	list_insert_head(&d->lru, &e->lru);
	return e;
}

static struct dns_entry *
dns_entry_new(struct dns *d, const char *name, int type)
{
	size_t len = strlen(name);
	struct dns_entry *e = calloc(1, sizeof(*e) + len + 1);
	struct list_node *old;

	if (e == NULL)
		return NULL;
	memcpy(e->name, name, len + 1);
	e->d = d;
	e->type = type;
	e->pending = 1;
	list_init(&e->pins);
	if (htab_add(&d->cache, &e->hnode, dns_key_hash(name, type)) < 0) {
		free(e);
		return NULL;
	}
	e->in_hash = 1;
	list_insert_head(&d->lru, &e->lru);
	while (d->cache.n > (size_t)d->cfg.cache_size &&
	       (old = list_last(&d->lru)) != NULL)
		dns_entry_unhash(list_entry(old, struct dns_entry, lru));
	return e;
}

/* ---- c-ares ---- */

static void
dns_kick(struct dns *d)
{
	uv_timer_start(&d->kick, dns_kick_cb, 0, 0);
}

static int
dns_status_err(int status)
{
	switch (status) {
	case ARES_ENOTFOUND:
	case ARES_ENODATA:
		return -ENOENT;
	case ARES_ETIMEOUT:
	case ARES_ECONNREFUSED:
		return -ETIMEDOUT;
	case ARES_ENOMEM:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

static void
dns_answer_cb(void *arg, int status, int timeouts, unsigned char *abuf,
	      int alen)
{
	struct dns_entry *e = arg;
	struct dns *d = e->d;
	struct list_node *n;
	int64_t ttl, neg = -1;
	int err;

	(void)timeouts;
	e->in_flight = 0;
	if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
		dns_entry_release(e);
		return;
	}
	err = dns_status_err(status);
	if ((status == ARES_SUCCESS || err == -ENOENT) && abuf != NULL) {
		/* A "no" whose SOA cannot be read is still a no. */
		if (dns_msg_parse(&e->a, abuf, alen, e->type) < 0)
			err = status == ARES_SUCCESS ? -EIO : -ENOENT;
		else
			err = e->a.n > 0 ? 0 : -ENOENT;
		neg = e->a.neg_ttl;
	} else if (status == ARES_SUCCESS) {
		err = -EIO;
	}
	e->err = err;
	e->pending = 0;
	if (err == 0) {
		ttl = e->a.ttl;
		if (ttl > d->cfg.ttl_max)
			ttl = d->cfg.ttl_max;
		e->expires = uv_now(d->loop) + (uint64_t)ttl * 1000;
	} else if (err == -ENOENT) {
		if (neg < d->cfg.neg_ttl_min)
			neg = d->cfg.neg_ttl_min;
		if (neg > d->cfg.neg_ttl_max)
			neg = d->cfg.neg_ttl_max;
		e->expires = uv_now(d->loop) + (uint64_t)neg * 1000;
	} else {
		log_info(LOG_SYS_NET, "dns: %s type %d: %s", e->name, e->type,
			 ares_strerror(status));
	}
	/* The locates waiting for it walk again once all theirs are in. */
	for (n = e->pins.next; n != &e->pins; n = n->next) {
		struct dns_query *q = list_entry(n, struct dns_pin, node)->q;

		if (--q->waiting == 0 && list_linked(&q->node)) {
			list_remove(&q->node);
			list_insert_tail(&d->run, &q->node);
			dns_kick(d);
		}
	}
	if (err != 0 && err != -ENOENT)
		dns_entry_unhash(e);	/* failures are asked again */
	else
		dns_entry_release(e);
}

static void
dns_timer_arm(struct dns *d)
{
	struct timeval tv, *tvp = ares_timeout(d->ch, NULL, &tv);

	if (tvp == NULL) {
		uv_timer_stop(&d->timer);
		return;
	}
	uv_timer_start(&d->timer, dns_timer_cb, (uint64_t)tv.tv_sec * 1000 +
		       ((uint64_t)tv.tv_usec + 999) / 1000, 0);
}

static void
dns_timer_cb(uv_timer_t *t)
{
	struct dns *d = t->data;

	ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_timer_arm(d);
}

static void
dns_sock_poll_cb(uv_poll_t *p, int status, int events)
{
	struct dns_sock *s = p->data;
	struct dns *d = s->d;
	ares_socket_t r = ARES_SOCKET_BAD, w = ARES_SOCKET_BAD;

	/* On an error c-ares reads the socket and sees it for itself. */
	if (status < 0 || (events & UV_READABLE))
		r = s->fd;
	if (status < 0 || (events & UV_WRITABLE))
		w = s->fd;
	ares_process_fd(d->ch, r, w);
	dns_timer_arm(d);
}

/* c-ares opened, changed or closed a socket: follow it with a poll. */
static void
dns_sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *d = data;
	struct dns_sock *s = NULL;
	struct list_node *n;
	int ev = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);

	for (n = d->socks.next; n != &d->socks; n = n->next)
		if (list_entry(n, struct dns_sock, node)->fd == fd) {
			s = list_entry(n, struct dns_sock, node);
			break;
		}
	if (ev == 0) {
		if (s != NULL) {
			list_remove(&s->node);
			uv_close((uv_handle_t *)&s->poll, dns_sock_closed);
		}
		return;
	}
	if (s == NULL) {
		/* Without a poll the socket is only read when the query
		 * times out: the locate still ends, late. */
		if ((s = calloc(1, sizeof(*s))) == NULL ||
		    uv_poll_init_socket(d->loop, &s->poll, fd) < 0) {
			log_err(LOG_SYS_NET, "dns: cannot watch socket %d", fd);
			free(s);
			return;
		}
		s->d = d;
		s->fd = fd;
		s->poll.data = s;
		d->handles++;
		list_insert_tail(&d->socks, &s->node);
	}
	uv_poll_start(&s->poll, ev, dns_sock_poll_cb);
}

/* ---- the walk ---- */

/*
 * The entry for (name, type) pinned by q: one it pinned already, the
 * cache's, or a new one whose query goes out now.  NULL when q may pin
 * no more or memory ran out: the walk goes on without that name.
 */
static struct dns_entry *
dns_need(struct dns_query *q, const char *name, int type)
{
	struct dns *d = q->d;
	struct dns_entry *e;
	struct dns_pin *p;
	int fresh = 0;

	for (int i = 0; i < q->npin; i++)
		if (q->pin[i].e->type == type &&
		    strcmp(q->pin[i].e->name, name) == 0)
			return q->pin[i].e;
	if (q->npin == DNS_PINS_MAX)
		return NULL;
	if ((e = dns_cache_get(d, name, type)) == NULL) {
		if ((e = dns_entry_new(d, name, type)) == NULL)
			return NULL;
		fresh = 1;
	}
	p = &q->pin[q->npin++];
	p->e = e;
	p->q = q;
	list_insert_tail(&e->pins, &p->node);
	if (e->pending)
		q->waiting++;
	if (fresh) {
		e->in_flight = 1;
		d->sent++;
		/* May answer at once (no memory): dns_answer_cb copes. */
		ares_query(d->ch, name, 1 /* IN */, type, dns_answer_cb, e);
		dns_timer_arm(d);
	}
	return e;
}

static void
dns_walk_fail(struct dns_query *q, int err)
{
	if (q->err == 0 && err != -ENOENT)
		q->err = err;
}

static void
dns_add_target(struct dns_query *q, const union env_sa *sa, int port,
	       int transport)
{
	struct dns_target *t;

	if (q->n == DNS_TARGETS_MAX)
		return;
	t = &q->t[q->n++];
	t->transport = transport;
	t->addr = *sa;
	if (sa->sa.sa_family == AF_INET)
		t->addr.in.sin_port = htons((uint16_t)port);
	else
		t->addr.in6.sin6_port = htons((uint16_t)port);
}

/* Fills sa from a numeric host (IPv6 bracketed or not); -EINVAL if it
 * is a name. */
static int
dns_numeric(const char *host, union env_sa *sa)
{
	char buf[INET6_ADDRSTRLEN + 2];
	size_t len = strlen(host);

	memset(sa, 0, sizeof(*sa));
	if (inet_pton(AF_INET, host, &sa->in.sin_addr) == 1) {
		sa->in.sin_family = AF_INET;
		return 0;
	}
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']' &&
	    len - 2 < sizeof(buf)) {
		memcpy(buf, host + 1, len - 2);
		buf[len - 2] = '\0';
		host = buf;
	}
	if (inet_pton(AF_INET6, host, &sa->in6.sin6_addr) == 1) {
		sa->in6.sin6_family = AF_INET6;
		return 0;
	}
	return -EINVAL;
}

/* The addresses of name, A before AAAA, as targets. */
static void
dns_walk_addr(struct dns_query *q, const char *name, int port, int transport)
{
	static const int types[] = { DNS_T_A, DNS_T_AAAA };
	union env_sa sa;

	if (dns_numeric(name, &sa) == 0) {
		dns_add_target(q, &sa, port, transport);
		return;
	}
	for (int i = 0; i < 2 && q->n < DNS_TARGETS_MAX; i++) {
		struct dns_entry *e;

		if ((q->d->cfg.family == AF_INET && types[i] != DNS_T_A) ||
		    (q->d->cfg.family == AF_INET6 && types[i] != DNS_T_AAAA))
			continue;
		if ((e = dns_need(q, name, types[i])) == NULL || e->pending)
			continue;
		dns_walk_fail(q, e->err);
		for (int j = 0; j < e->a.n; j++)
			dns_add_target(q, &e->a.rr[j].addr, port, transport);
	}
}

/*
 * Orders SRV records as RFC 2782 says: by priority, then within one
 * priority by weighted chance, weight 0 first in line so it is picked
 * seldom but not never.  The dice are q's, so each walk of q agrees.
 */
static void
dns_srv_order(struct dns_query *q, const struct dns_entry *e, int *idx)
{
	uint64_t seed = q->seed ^ hash_fnv1a64(e->name, strlen(e->name));
	int n = e->a.n;

	for (int i = 0; i < n; i++)
		idx[i] = i;
	/* Insertion sort by priority, weight 0 ahead within one. */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0; j--) {
			const struct dns_rr *a = &e->a.rr[idx[j - 1]];
			const struct dns_rr *b = &e->a.rr[idx[j]];
			int t;

			if (a->prio < b->prio || (a->prio == b->prio &&
						  (a->weight == 0 || b->weight != 0)))
				break;
			t = idx[j - 1];
			idx[j - 1] = idx[j];
			idx[j] = t;
		}
	for (int i = 0; i < n; i++) {
		uint32_t sum = 0, pick, run = 0;
		int end = i, k;

		while (end < n && e->a.rr[idx[end]].prio == e->a.rr[idx[i]].prio)
			sum += e->a.rr[idx[end++]].weight;
		pick = (uint32_t)(dns_rand(&seed) % ((uint64_t)sum + 1));
		for (k = i; k < end - 1; k++) {
			run += e->a.rr[idx[k]].weight;
			if (run >= pick)
				break;
		}
		/* Shift, not swap: the rest keeps weight 0 ahead. */
		pick = (uint32_t)idx[k];
		memmove(&idx[i + 1], &idx[i], (size_t)(k - i) * sizeof(*idx));
		idx[i] = (int)pick;
	}
}

/* The SRV records of name, in order, and each target's addresses. */
static void
dns_walk_srv_name(struct dns_query *q, const char *name, int transport)
{
	struct dns_entry *e = dns_need(q, name, DNS_T_SRV);
	int idx[DNS_RR_MAX];

	if (e == NULL || e->pending)
		return;
	dns_walk_fail(q, e->err);
	dns_srv_order(q, e, idx);
	for (int i = 0; i < e->a.n && q->n < DNS_TARGETS_MAX; i++)
		dns_walk_addr(q, e->a.rr[idx[i]].target, e->a.rr[idx[i]].port,
			      transport);
}

static const char *
dns_srv_prefix(int transport)
{
	return transport == ENV_TLS ? "_sips._tcp." :
	       transport == ENV_TCP ? "_sip._tcp." : "_sip._udp.";
}

/* RFC 3263 4.1: the NAPTR records of the host, by order then
 * preference, each to its SRV name. */
static void
dns_walk_naptr(struct dns_query *q)
{
	struct dns_entry *e = dns_need(q, q->host, DNS_T_NAPTR);
	int idx[DNS_RR_MAX], n = 0;

	if (e == NULL || e->pending)
		return;
	dns_walk_fail(q, e->err);
	for (int i = 0; i < e->a.n; i++) {
		const struct dns_rr *r = &e->a.rr[i], *p;
		int j;

		if (q->sips && r->transport != ENV_TLS)
			continue;
		for (j = n++; j > 0; j--) {
			p = &e->a.rr[idx[j - 1]];
			if (p->prio < r->prio ||
			    (p->prio == r->prio && p->weight <= r->weight))
				break;
			idx[j] = idx[j - 1];
		}
		idx[j] = i;
	}
	for (int i = 0; i < n && i < DNS_NAPTR_MAX; i++)
		dns_walk_srv_name(q, e->a.rr[idx[i]].target,
				  e->a.rr[idx[i]].transport);
}

/* RFC 3263 4.1 without NAPTR (or 4.2 with a transport): SRV of each
 * transport we may use. */
static void
dns_walk_srv(struct dns_query *q)
{
	static const int order[] = { ENV_UDP, ENV_TCP, ENV_TLS };
	char name[DNS_NAME_MAX + 16];

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if ((q->transport && order[i] != q->transport) ||
		    (q->sips && order[i] != ENV_TLS))
			continue;
		snprintf(name, sizeof(name), "%s%s", dns_srv_prefix(order[i]),
			 q->host);
		dns_walk_srv_name(q, name, order[i]);
	}
}

/* The last resort (RFC 3263 4.2): the host's own addresses. */
static void
dns_walk_host(struct dns_query *q)
{
	int tp = q->transport ? q->transport : q->sips ? ENV_TLS : ENV_UDP;

	dns_walk_addr(q, q->host, q->port ? q->port :
		      env_transport_sip_port(tp), tp);
}

/* Unpins everything and unlinks q, which is then the caller's to free. */
static void
dns_query_detach(struct dns_query *q)
{
	list_remove(&q->node);
	for (int i = 0; i < q->npin; i++) {
		list_remove(&q->pin[i].node);
		dns_entry_release(q->pin[i].e);
	}
	q->npin = 0;
}

/* ---- dead targets ---- */

static void
dns_block_key(unsigned char key[20], const union env_sa *sa, int transport)
{
	memset(key, 0, 20);
	key[0] = (unsigned char)transport;
	key[1] = (unsigned char)sa->sa.sa_family;
	if (sa->sa.sa_family == AF_INET) {
		memcpy(key + 2, &sa->in.sin_port, 2);
		memcpy(key + 4, &sa->in.sin_addr, 4);
	} else {
		memcpy(key + 2, &sa->in6.sin6_port, 2);
		memcpy(key + 4, &sa->in6.sin6_addr, 16);
	}
}

static int
dns_block_eq(const struct htab_node *n, const void *key)
{
	return memcmp(htab_entry(n, struct dns_block, hnode)->key, key,
		      20) == 0;
}

static void
dns_block_del(struct dns *d, struct dns_block *b)
{
	htab_del(&d->blocks, &b->hnode);
	list_remove(&b->node);
	free(b);
}

static struct dns_block *
dns_block_find(struct dns *d, const unsigned char key[20])
{
	struct htab_node *n = htab_find(&d->blocks, hash_sip(hash_process_key(), key, 20),
					dns_block_eq, key);

	return n ? htab_entry(n, struct dns_block, hnode) : NULL;
}

int
dns_block(struct dns *d, const union env_sa *sa, int transport, int seconds)
{
	unsigned char key[20];
	struct dns_block *b;
	struct list_node *old;

	if (sa->sa.sa_family != AF_INET && sa->sa.sa_family != AF_INET6)
		return -EINVAL;
	dns_block_key(key, sa, transport);
	if ((b = dns_block_find(d, key)) != NULL)
		dns_block_del(d, b);
	if (seconds <= 0)
		return 0;
	if (d->blocks.n >= (size_t)d->cfg.block_max &&
	    (old = list_first(&d->block_age)) != NULL)
		dns_block_del(d, list_entry(old, struct dns_block, node));
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return -ENOMEM;
	memcpy(b->key, key, sizeof(key));
	b->until = uv_now(d->loop) + (uint64_t)seconds * 1000;
	if (htab_add(&d->blocks, &b->hnode, hash_sip(hash_process_key(), key, 20)) < 0) {
		free(b);
		return -ENOMEM;
	}
	list_insert_tail(&d->block_age, &b->node);
	return 0;
}

/* Whether (transport, sa) is remembered as dead now; an entry whose
 * time is up is forgotten on the way. */
static int
dns_block_live(struct dns *d, const union env_sa *sa, int transport)
{
	unsigned char key[20];
	struct dns_block *b;

	dns_block_key(key, sa, transport);
	if ((b = dns_block_find(d, key)) == NULL)
		return 0;
	if (uv_now(d->loop) < b->until)
		return 1;
	dns_block_del(d, b);
	return 0;
}

int
dns_blocked(struct dns *d, const union env_sa *sa, int transport)
{
	return d->blocks.n > 0 && dns_block_live(d, sa, transport);
}

/* Moves q's dead targets behind the live ones, each side in order. */
static void
dns_block_last(struct dns_query *q)
{
	struct dns *d = q->d;
	struct dns_target dead[DNS_TARGETS_MAX];
	int live = 0, ndead = 0;

	if (d->blocks.n == 0)
		return;
	for (int i = 0; i < q->n; i++) {
		if (dns_block_live(d, &q->t[i].addr, q->t[i].transport))
			dead[ndead++] = q->t[i];
		else
			q->t[live++] = q->t[i];
	}
	memcpy(&q->t[live], dead, (size_t)ndead * sizeof(*dead));
}

static void
dns_walk(struct dns_query *q)
{
	int err;

	for (;;) {
		q->err = 0;
		if (q->stage != DNS_STAGE_DONE)
			q->n = 0;
		switch (q->stage) {
		case DNS_STAGE_NAPTR:
			dns_walk_naptr(q);
			break;
		case DNS_STAGE_SRV:
			dns_walk_srv(q);
			break;
		case DNS_STAGE_HOST:
			dns_walk_host(q);
			break;
		}
		if (q->waiting > 0) {
			list_insert_tail(&q->d->wait, &q->node);
			return;
		}
		/* A failure stops the fallback: asking the next stage of a
		 * server that did not answer costs another timeout. */
		if (q->n > 0 || q->err != 0 || q->stage >= DNS_STAGE_HOST)
			break;
		q->stage++;
	}
	err = q->n > 0 ? 0 : q->err ? q->err : -ENOENT;
	dns_block_last(q);
	dns_query_detach(q);
	q->cb(q->arg, err, err ? NULL : q->t, err ? 0 : q->n);
	free(q);
}

static void
dns_kick_cb(uv_timer_t *t)
{
	struct dns *d = t->data;
	struct list_node *n;

	d->in_kick = 1;
	while (!d->freeing && (n = list_first(&d->run)) != NULL) {
		list_remove(n);
		dns_walk(list_entry(n, struct dns_query, node));
	}
	d->in_kick = 0;
	if (d->freeing)
		dns_free(d);
}

/* ---- the API ---- */

/* Copies a host that may be a DNS name (letters, digits, '-', '_',
 * non-empty labels) or an address, lower case, without the root dot. */
static int
dns_host_copy(char *out, const char *host, size_t len)
{
	union env_sa sa;

	if (len > 0 && host[len - 1] == '.' && host[0] != '[')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)host[i];

		if (c == '.' && (i == 0 || host[i - 1] == '.'))
			return -EINVAL;
		if (!isalnum(c) && c != '.' && c != '-' && c != '_' &&
		    c != ':' && c != '[' && c != ']')
			return -EINVAL;
		out[i] = (char)tolower(c);
	}
	out[len] = '\0';
	if (strpbrk(out, ":[]") && dns_numeric(out, &sa) < 0)
		return -EINVAL;
	return 0;
}

int
dns_locate(struct dns *d, const char *host, size_t len, int transport,
	   int port, int sips, dns_locate_cb cb, void *arg,
	   struct dns_query **qp)
{
	struct dns_query *q;
	union env_sa sa;
	int rc;

	if (d == NULL || cb == NULL || d->freeing || port < 0 || port > 65535 ||
	    (transport != ENV_TP_NONE &&
	     !env_transport_is(transport, ENV_TP_DIAL)) ||
	    (sips && transport != ENV_TP_NONE &&
	     !env_transport_is(transport, ENV_TP_SECURE)))
		return -EINVAL;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return -ENOMEM;
	if ((rc = dns_host_copy(q->host, host, len)) < 0) {
		free(q);
		return rc;
	}
	q->d = d;
	q->cb = cb;
	q->arg = arg;
	q->transport = transport;
	q->port = port;
	q->sips = sips != 0;
	q->seed = dns_rand(&d->rand);
	q->stage = port ? DNS_STAGE_HOST :
		   transport ? DNS_STAGE_SRV : DNS_STAGE_NAPTR;
	if (dns_numeric(q->host, &sa) == 0) {
		int tp = transport ? transport : q->sips ? ENV_TLS : ENV_UDP;

		dns_add_target(q, &sa, port ? port :
			       env_transport_sip_port(tp), tp);
		q->stage = DNS_STAGE_DONE;
	}
	list_insert_tail(&d->run, &q->node);
	dns_kick(d);
	if (qp != NULL)
		*qp = q;
	return 0;
}

void
dns_cancel(struct dns_query *q)
{
	if (q == NULL)
		return;
	dns_query_detach(q);
	free(q);
}

unsigned long
dns_queries_sent(const struct dns *d)
{
	return d->sent;
}

int
dns_new(struct dns **out, uv_loop_t *loop, const struct dns_config *cfg)
{
	struct ares_options o;
	struct dns *d;
	int rc = -ENOMEM;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return -ENOMEM;
	if (cfg != NULL)
		d->cfg = *cfg;
	d->cfg.servers = NULL;	/* borrowed: used here only */
#define DNS_DEFAULT(f, v) if (d->cfg.f <= 0) d->cfg.f = (v)
	DNS_DEFAULT(cache_size, 1024);
	DNS_DEFAULT(ttl_max, 3600);
	DNS_DEFAULT(neg_ttl_min, 5);
	DNS_DEFAULT(neg_ttl_max, 300);
	DNS_DEFAULT(timeout_ms, 2000);
	DNS_DEFAULT(tries, 2);
	DNS_DEFAULT(block_max, 256);
#undef DNS_DEFAULT
	if (d->cfg.neg_ttl_max < d->cfg.neg_ttl_min)
		d->cfg.neg_ttl_max = d->cfg.neg_ttl_min;
	d->loop = loop;
	d->rand = uv_hrtime() ^ ((uint64_t)getpid() << 32);
	list_init(&d->socks);
	list_init(&d->run);
	list_init(&d->wait);
	list_init(&d->lru);
	list_init(&d->block_age);
	if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
		goto fail;
	memset(&o, 0, sizeof(o));
	o.flags = ARES_FLAG_EDNS;
	o.ednspsz = 1232;	/* no IP fragments (DNS flag day 2020) */
	o.timeout = d->cfg.timeout_ms;
	o.tries = d->cfg.tries;
	o.sock_state_cb = dns_sock_state_cb;
	o.sock_state_cb_data = d;
	rc = ares_init_options(&d->ch, &o, ARES_OPT_FLAGS | ARES_OPT_EDNSPSZ |
			       ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
			       ARES_OPT_SOCK_STATE_CB);
	if (rc != ARES_SUCCESS) {
		d->ch = NULL;
		ares_library_cleanup();
		rc = rc == ARES_ENOMEM ? -ENOMEM : -EIO;
		goto fail;
	}
	if (cfg != NULL && cfg->servers != NULL && cfg->servers[0] != '\0' &&
	    ares_set_servers_ports_csv(d->ch, cfg->servers) != ARES_SUCCESS) {
		rc = -EINVAL;
		goto fail;
	}
	uv_timer_init(loop, &d->timer);
	uv_timer_init(loop, &d->kick);
	d->timer.data = d->kick.data = d;
	d->handles = 2;
	*out = d;
	return 0;
fail:
	if (d->ch != NULL) {
		ares_destroy(d->ch);
		ares_library_cleanup();
	}
	free(d);
	return rc;
}

void
dns_free(struct dns *d)
{
	struct list_node *n;
	struct htab_node *h;
	size_t pos = 0;

	if (d == NULL)
		return;
	d->freeing = 1;
	if (d->in_kick)
		return;		/* dns_kick_cb comes back here */
	while ((n = list_first(&d->run)) || (n = list_first(&d->wait)))
		dns_cancel(list_entry(n, struct dns_query, node));
	while ((h = htab_any(&d->cache, &pos)) != NULL)
		dns_entry_unhash(htab_entry(h, struct dns_entry, hnode));
	htab_fini(&d->cache);
	while ((n = list_first(&d->block_age)) != NULL)
		dns_block_del(d, list_entry(n, struct dns_block, node));
	htab_fini(&d->blocks);
	/* Frees the entries in flight (dns_answer_cb) and closes the
	 * sockets (dns_sock_state_cb closes their polls). */
	ares_destroy(d->ch);
	ares_library_cleanup();
	uv_close((uv_handle_t *)&d->timer, dns_handle_closed);
	uv_close((uv_handle_t *)&d->kick, dns_handle_closed);
}
