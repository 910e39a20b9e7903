/*
 * edge_conn.c - the edge's one piece of state: its open connections.
 *
 * Stream and WebSocket transports embed a struct edge_conn in their
 * own connection object and register it here.  The table finds a
 * connection by id (a core names it in an envelope), by transport and
 * peer address (a request to a TCP/TLS destination reuses an open
 * connection, RFC 3261 18.1.1), and counts inbound connections per
 * source IP for the max_conns_per_ip cap.  Two lists, one per state,
 * are kept in order of last activity: the 1 s sweep pops expired
 * connections from their heads, so it costs O(expired), not O(open).
 *
 * Ids count up from 1 and are never reused while the process lives
 * (a u32 wraps after four billion connections; the wrap skips ids
 * still open), so a core holding a stale id can never reach a newer
 * client.  Hash chains are singly linked; buckets are fixed at start
 * (2^14 for ~20k connections per process).
 */
#include "edge/edge_int.h"
#include "lib/hash.h"
#include "lib/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct edge_conn_ip {
	union env_sa addr;	/* port 0 */
	int n;
	struct edge_conn_ip *next;
};

int
edge_conn_table_init(struct edge_conn_table *t, unsigned bits, int max_per_ip)
{
	size_t nb = (size_t)1 << bits;

	memset(t, 0, sizeof(*t));
	t->by_id = calloc(nb, sizeof(*t->by_id));
	t->by_dst = calloc(nb, sizeof(*t->by_dst));
	t->by_ip = calloc(nb, sizeof(*t->by_ip));
	if (t->by_id == NULL || t->by_dst == NULL || t->by_ip == NULL) {
		edge_conn_table_fini(t);
		return -ENOMEM;
	}
	t->mask = nb - 1;
	t->next_id = 1;
	t->max_per_ip = max_per_ip;
	return 0;
}

void
edge_conn_table_fini(struct edge_conn_table *t)
{
	if (t->by_ip) {
		for (size_t i = 0; i <= t->mask; i++) {
			struct edge_conn_ip *p = t->by_ip[i], *nx;

			for (; p; p = nx) {
				nx = p->next;
				free(p);
			}
		}
	}
	free(t->by_id);
	free(t->by_dst);
	free(t->by_ip);
	t->by_id = t->by_dst = NULL;
	t->by_ip = NULL;
}

static size_t
edge_id_bucket(const struct edge_conn_table *t, uint32_t id)
{
	/* Ids are sequential: a multiplicative hash spreads them. */
	return (size_t)((id * 2654435761u) >> 7) & t->mask;
}

/* The bytes of an address that matter: family, port, IP. */
static size_t
edge_sa_key(const union env_sa *sa, int with_port, unsigned char *k)
{
	size_t n = 0;

	k[n++] = (unsigned char)sa->sa.sa_family;
	if (sa->sa.sa_family == AF_INET6) {
		memcpy(k + n, &sa->in6.sin6_addr, 16);
		n += 16;
		if (with_port) {
			memcpy(k + n, &sa->in6.sin6_port, 2);
			n += 2;
		}
	} else {
		memcpy(k + n, &sa->in.sin_addr, 4);
		n += 4;
		if (with_port) {
			memcpy(k + n, &sa->in.sin_port, 2);
			n += 2;
		}
	}
	return n;
}

static int
edge_sa_same(const union env_sa *a, const union env_sa *b, int with_port)
{
	unsigned char ka[32], kb[32];
	size_t na = edge_sa_key(a, with_port, ka);

	return na == edge_sa_key(b, with_port, kb) && memcmp(ka, kb, na) == 0;
}

static size_t
edge_sa_bucket(const struct edge_conn_table *t, int transport,
	       const union env_sa *sa, int with_port)
{
	unsigned char k[32];
	size_t n = edge_sa_key(sa, with_port, k);

	k[n++] = (unsigned char)transport;
	return (size_t)hash_fnv1a64(k, n) & t->mask;
}

static struct edge_conn_ip *
edge_ip_find(const struct edge_conn_table *t, const union env_sa *sa)
{
	struct edge_conn_ip *p = t->by_ip[edge_sa_bucket(t, 0, sa, 0)];

	while (p && !edge_sa_same(&p->addr, sa, 0))
		p = p->next;
	return p;
}

int
edge_conn_ip_count(const struct edge_conn_table *t, const union env_sa *sa)
{
	struct edge_conn_ip *p = edge_ip_find(t, sa);

	return p ? p->n : 0;
}

static void
edge_list_append(struct edge_conn_list *l, struct edge_conn *c)
{
	c->next = NULL;
	c->prev = l->tail;
	if (l->tail)
		l->tail->next = c;
	else
		l->head = c;
	l->tail = c;
}

static void
edge_list_remove(struct edge_conn_list *l, struct edge_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		l->tail = c->prev;
	c->prev = c->next = NULL;
}

static uint32_t
edge_conn_new_id(struct edge_conn_table *t)
{
	for (;;) {
		uint32_t id = t->next_id++;

		if (t->next_id == 0)
			t->next_id = 1;
		if (id != 0 && edge_conn_find(t, id) == NULL)
			return id;
	}
}

int
edge_conn_add(struct edge_conn_table *t, struct edge_conn *c, uint64_t now_ms)
{
	struct edge_conn_ip *ip = NULL;
	size_t b;

	if (!c->outbound) {
		ip = edge_ip_find(t, &c->peer);
		if (t->max_per_ip > 0 && ip && ip->n >= t->max_per_ip)
			return -EMFILE;
		if (ip == NULL) {
			ip = calloc(1, sizeof(*ip));
			if (ip == NULL)
				return -ENOMEM;
			ip->addr = c->peer;
			b = edge_sa_bucket(t, 0, &c->peer, 0);
			ip->next = t->by_ip[b];
			t->by_ip[b] = ip;
		}
		ip->n++;
	}
	c->ip = ip;
	c->id = edge_conn_new_id(t);
	b = edge_id_bucket(t, c->id);
	c->id_next = t->by_id[b];
	t->by_id[b] = c;
	b = edge_sa_bucket(t, c->transport, &c->peer, 1);
	c->dst_next = t->by_dst[b];
	t->by_dst[b] = c;
	c->state = EDGE_CONN_PENDING;
	c->last_ms = now_ms;
	edge_list_append(&t->list[EDGE_CONN_PENDING], c);
	c->in_table = 1;
	t->n++;
	return 0;
}

void
edge_conn_open(struct edge_conn_table *t, struct edge_conn *c, uint64_t now_ms)
{
	if (!c->in_table || c->state == EDGE_CONN_OPEN)
		return;
	edge_list_remove(&t->list[EDGE_CONN_PENDING], c);
	c->state = EDGE_CONN_OPEN;
	c->last_ms = now_ms;
	edge_list_append(&t->list[EDGE_CONN_OPEN], c);
}

void
edge_conn_touch(struct edge_conn_table *t, struct edge_conn *c, uint64_t now_ms)
{
	if (!c->in_table || c->state != EDGE_CONN_OPEN)
		return;
	c->last_ms = now_ms;
	if (t->list[EDGE_CONN_OPEN].tail != c) {
		edge_list_remove(&t->list[EDGE_CONN_OPEN], c);
		edge_list_append(&t->list[EDGE_CONN_OPEN], c);
	}
}

static void
edge_chain_unlink(struct edge_conn **head, struct edge_conn *c, int dst)
{
	struct edge_conn **pp = head;

	while (*pp && *pp != c)
		pp = dst ? &(*pp)->dst_next : &(*pp)->id_next;
	if (*pp)
		*pp = dst ? c->dst_next : c->id_next;
}

void
edge_conn_del(struct edge_conn_table *t, struct edge_conn *c)
{
	if (!c->in_table)
		return;
	edge_chain_unlink(&t->by_id[edge_id_bucket(t, c->id)], c, 0);
	edge_chain_unlink(&t->by_dst[edge_sa_bucket(t, c->transport, &c->peer,
						    1)], c, 1);
	edge_list_remove(&t->list[c->state], c);
	if (c->ip && --c->ip->n == 0) {
		struct edge_conn_ip **pp =
			&t->by_ip[edge_sa_bucket(t, 0, &c->ip->addr, 0)];

		while (*pp != c->ip)
			pp = &(*pp)->next;
		*pp = c->ip->next;
		free(c->ip);
	}
	c->ip = NULL;
	c->id_next = c->dst_next = NULL;
	c->in_table = 0;
	t->n--;
}

struct edge_conn *
edge_conn_find(const struct edge_conn_table *t, uint32_t id)
{
	struct edge_conn *c;

	if (t->by_id == NULL)
		return NULL;
	for (c = t->by_id[edge_id_bucket(t, id)]; c; c = c->id_next)
		if (c->id == id)
			return c;
	return NULL;
}

struct edge_conn *
edge_conn_find_dst(const struct edge_conn_table *t, int transport,
		   const union env_sa *dst)
{
	return edge_conn_find_dst_after(t, transport, dst, NULL);
}

struct edge_conn *
edge_conn_find_dst_after(const struct edge_conn_table *t, int transport,
			 const union env_sa *dst, const struct edge_conn *after)
{
	struct edge_conn *c;

	c = after ? after->dst_next :
		t->by_dst[edge_sa_bucket(t, transport, dst, 1)];
	for (; c; c = c->dst_next)
		if (c->transport == transport && edge_sa_same(&c->peer, dst, 1))
			return c;
	return NULL;
}

struct edge_conn *
edge_conn_expired(const struct edge_conn_table *t, uint64_t now_ms,
		  uint64_t pending_ms, uint64_t idle_ms)
{
	struct edge_conn *c = t->list[EDGE_CONN_PENDING].head;

	if (c && now_ms - c->last_ms >= pending_ms)
		return c;
	c = t->list[EDGE_CONN_OPEN].head;
	if (c && idle_ms && now_ms - c->last_ms >= idle_ms)
		return c;
	return NULL;
}

/* ---- the sweep, on the edge's loop ---- */

/* A TCP connect or TLS handshake must finish within this. */
#define EDGE_CONN_PENDING_MS 10000
/* Closes per sweep, so a mass expiry cannot stall the loop. */
#define EDGE_CONN_SWEEP_MAX 2000

size_t
edge_conn_wq_max(const struct edge *e)
{
	/* Room for a burst of forked requests and their retransmissions,
	 * never less than 256 KiB. */
	size_t n = (size_t)e->me->max_msg * 8;

	return n < 256 * 1024 ? 256 * 1024 : n;
}

static void
edge_conns_sweep(uv_timer_t *h)
{
	struct edge *e = h->data;
	uint64_t now = uv_now(e->loop), idle = (uint64_t)e->me->idle_timeout_s * 1000;
	struct edge_conn *c;

	for (int i = 0; i < EDGE_CONN_SWEEP_MAX &&
	     (c = edge_conn_expired(&e->conns, now, EDGE_CONN_PENDING_MS,
				    idle)) != NULL; i++) {
		e->st.conns_idle++;
		c->ops->close(c, c->state == EDGE_CONN_PENDING ?
			      "connect or handshake timeout" : "idle timeout");
		/* A transport that could not drop it from the table would
		 * be swept again at once: stop this round instead. */
		if (c->in_table)
			break;
	}
}

int
edge_conns_start(struct edge *e)
{
	int rc = uv_timer_init(e->loop, &e->sweep);

	if (rc < 0)
		return rc;
	e->sweep.data = e;
	e->sweeping = 1;
	rc = uv_timer_start(&e->sweep, edge_conns_sweep, 1000, 1000);
	if (rc == 0)
		uv_unref((uv_handle_t *)&e->sweep);
	return rc;
}

void
edge_conns_stop(struct edge *e)
{
	if (!e->sweeping)
		return;
	e->sweeping = 0;
	uv_close((uv_handle_t *)&e->sweep, NULL);
}
