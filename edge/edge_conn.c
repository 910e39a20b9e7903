/*
 * edge_conn.c - the edge's one piece of state: its open connections.
 *
 * Stream and WebSocket transports embed a struct edge_conn in their
 * own connection object and register it here.  The table finds a
 * connection by id (a core names it in an envelope), by transport and
 * peer address (a request to a TCP/TLS destination reuses an open
 * connection, RFC 3261 18.1.1), and counts inbound connections per
 * source IP and per source /64 for the max_conns_per_ip and _per_net
 * caps, and in all for max_conns.  Two lists, one per state, are kept
 * in order of last activity, and a third holds open connections in the
 * order of their last SIP message: the 1 s sweep pops expired
 * connections from their heads, so it costs O(expired), not O(open).
 *
 * The deadlines: an inbound connection is PENDING from accept until its
 * first SIP message (TCP, TLS, WebSocket alike: so a slowloris that
 * sends nothing, or half a request, or only keepalives, or a WebSocket
 * that upgrades and then only answers pings, is closed at
 * handshake_timeout_s); OPEN, it is closed after idle_timeout_s
 * of silence, and after msg_idle_timeout_s without a SIP message even
 * when it keeps answering pings (past the longest registration nothing
 * reaches it any more).
 *
 * An id is the process's incarnation (random, drawn at start) and a
 * serial that counts up from 1 and is never reused while the process
 * lives (a u32 wraps after four billion connections; the wrap skips
 * serials still open).  Serials start again at 1 when the edge does,
 * incarnations do not: a core holding the id of a closed connection,
 * this process's or a dead one's, can never reach a newer client.
 *
 * Cost: the three indexes are lib/htab.h tables over a keyed SipHash
 * of the key (id; transport, IP and port; IP or /64), so find,
 * find_dst, the per-IP count, add and del are each a hash or three and
 * a bucket walk, expected O(1); the buckets double with the number of
 * connections (amortised O(1) per add), so nothing is sized at start.
 * Connections to one destination share a chain, and find_dst_after
 * goes on along it.  Memory: two hash nodes and two list nodes inside
 * each connection, plus two small counters (its IP, its /64) per
 * source that holds inbound connections.
 */
#include "edge/edge_int.h"
#include "lib/hash.h"
#include "lib/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* A counter's key: a kind byte, then family and IP, or a source key. */
#define EDGE_IP_KEY 18

/* Inbound connections of one source address, or of one /64. */
struct edge_conn_ip {
	struct htab_node h;
	unsigned char key[EDGE_IP_KEY];	/* edge_ip_key() */
	int n;
};

/* What edge_conn_find_dst looks for. */
struct edge_dst_key {
	int transport;
	const union env_sa *sa;
};

void
edge_conn_table_init(struct edge_conn_table *t, int max_per_ip)
{
	memset(t, 0, sizeof(*t));
	list_init(&t->list[EDGE_CONN_PENDING]);
	list_init(&t->list[EDGE_CONN_OPEN]);
	list_init(&t->by_msg);
	list_init(&t->by_ping);
	t->next_serial = 1;
	t->max_per_ip = max_per_ip;
}

int
edge_incarnation_new(uint32_t *out)
{
	uint32_t v = 0;

	while (v == 0)
		if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
			return errno ? -errno : -EIO;
	*out = v;
	return 0;
}

void
edge_conn_table_fini(struct edge_conn_table *t)
{
	struct htab_node *n;
	size_t pos = 0;

	while ((n = htab_any(&t->by_ip, &pos)) != NULL) {
		htab_del(&t->by_ip, n);
		free(htab_entry(n, struct edge_conn_ip, h));
	}
	htab_fini(&t->by_id);
	htab_fini(&t->by_dst);
	htab_fini(&t->by_ip);
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

static uint64_t
edge_sa_hash(int transport, const union env_sa *sa, int with_port)
{
	unsigned char k[32];
	size_t n = edge_sa_key(sa, with_port, k);

	k[n++] = (unsigned char)transport;
	return hash_sip(hash_process_key(), k, n);
}

static uint64_t
edge_id_hash(uint64_t id)
{
	return hash_sip(hash_process_key(), &id, sizeof(id));
}

static int
edge_id_eq(const struct htab_node *n, const void *key)
{
	return htab_entry(n, struct edge_conn, by_id)->id ==
	       *(const uint64_t *)key;
}

static int
edge_dst_eq(const struct htab_node *n, const void *key)
{
	const struct edge_conn *c = htab_entry(n, struct edge_conn, by_dst);
	const struct edge_dst_key *k = key;

	return c->transport == k->transport && edge_sa_same(&c->peer, k->sa, 1);
}

/* The counter key of sa: its address (net 0) or its edge_source_key()
 * (net 1), after a byte that keeps the two apart. */
static void
edge_ip_key(const union env_sa *sa, int net, unsigned char key[EDGE_IP_KEY])
{
	memset(key, 0, EDGE_IP_KEY);
	key[0] = (unsigned char)(net ? 2 : 1);
	if (net)
		edge_source_key(sa, key + 1);
	else
		edge_sa_key(sa, 0, key + 1);
}

static uint64_t
edge_ip_hash(const unsigned char key[EDGE_IP_KEY])
{
	return hash_sip(hash_process_key(), key, EDGE_IP_KEY);
}

static int
edge_ip_eq(const struct htab_node *n, const void *key)
{
	return memcmp(htab_entry(n, struct edge_conn_ip, h)->key, key,
		      EDGE_IP_KEY) == 0;
}

static struct edge_conn_ip *
edge_ip_find(const struct edge_conn_table *t,
	     const unsigned char key[EDGE_IP_KEY])
{
	struct htab_node *n = htab_find(&t->by_ip, edge_ip_hash(key),
					edge_ip_eq, key);

	return n ? htab_entry(n, struct edge_conn_ip, h) : NULL;
}

int
edge_conn_ip_count(const struct edge_conn_table *t, const union env_sa *sa)
{
	unsigned char key[EDGE_IP_KEY];
	struct edge_conn_ip *p;

	edge_ip_key(sa, 0, key);
	p = edge_ip_find(t, key);
	return p ? p->n : 0;
}

/* The counter of key, made (at 0) when missing; NULL: no memory. */
static struct edge_conn_ip *
edge_ip_get(struct edge_conn_table *t, const unsigned char key[EDGE_IP_KEY])
{
	struct edge_conn_ip *p = edge_ip_find(t, key);

	if (p)
		return p;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	memcpy(p->key, key, EDGE_IP_KEY);
	if (htab_add(&t->by_ip, &p->h, edge_ip_hash(key)) < 0) {
		free(p);
		return NULL;
	}
	return p;
}

/* Drops a counter that no connection holds. */
static void
edge_ip_put(struct edge_conn_table *t, struct edge_conn_ip *p)
{
	if (p && p->n == 0) {
		htab_del(&t->by_ip, &p->h);
		free(p);
	}
}

static uint64_t
edge_conn_new_id(struct edge_conn_table *t)
{
	for (;;) {
		uint32_t serial = t->next_serial++;
		uint64_t id = ENV_CONN_ID(t->incarnation, serial);

		if (t->next_serial == 0)
			t->next_serial = 1;
		if (serial != 0 && edge_conn_find(t, id) == NULL)
			return id;
	}
}

int
edge_conn_add(struct edge_conn_table *t, struct edge_conn *c, uint64_t now_ms)
{
	struct edge_conn_ip *ip = NULL, *net = NULL;
	unsigned char key[EDGE_IP_KEY];
	int rc = -ENOMEM;

	if (!c->outbound) {
		if (t->max_in > 0 && t->n_in >= t->max_in)
			return -ENFILE;
		edge_ip_key(&c->peer, 0, key);
		ip = edge_ip_get(t, key);
		if (ip == NULL)
			return -ENOMEM;
		edge_ip_key(&c->peer, 1, key);
		net = edge_ip_get(t, key);
		if (net == NULL)
			goto fail;
		rc = -EMFILE;
		if ((t->max_per_ip > 0 && ip->n >= t->max_per_ip) ||
		    (t->max_per_net > 0 && net->n >= t->max_per_net))
			goto fail;
	}
	c->id = edge_conn_new_id(t);
	rc = htab_add(&t->by_id, &c->by_id, edge_id_hash(c->id));
	if (rc < 0)
		goto fail;
	rc = htab_add(&t->by_dst, &c->by_dst,
		      edge_sa_hash(c->transport, &c->peer, 1));
	if (rc < 0) {
		htab_del(&t->by_id, &c->by_id);
		goto fail;
	}
	if (ip) {
		ip->n++;
		net->n++;
		t->n_in++;
	}
	c->ip = ip;
	c->net = net;
	c->state = EDGE_CONN_PENDING;
	c->last_ms = now_ms;
	list_insert_tail(&t->list[EDGE_CONN_PENDING], &c->link);
	c->in_table = 1;
	return 0;
fail:
	/* A counter made for c alone goes with it. */
	edge_ip_put(t, ip);
	edge_ip_put(t, net);
	return rc;
}

void
edge_conn_open(struct edge_conn_table *t, struct edge_conn *c, uint64_t now_ms)
{
	if (!c->in_table || c->state == EDGE_CONN_OPEN)
		return;
	list_remove(&c->link);
	c->state = EDGE_CONN_OPEN;
	c->last_ms = c->msg_ms = c->ping_ms = now_ms;
	c->pinged = 0;
	list_insert_tail(&t->list[EDGE_CONN_OPEN], &c->link);
	list_insert_tail(&t->by_msg, &c->msg_link);
	if (c->ops->ping)
		list_insert_tail(&t->by_ping, &c->ping_link);
}

/* c was heard from, or was just pinged: to the back of the ping order. */
static void
edge_conn_ping_later(struct edge_conn_table *t, struct edge_conn *c,
		     uint64_t now_ms, int pinged)
{
	c->ping_ms = now_ms;
	c->pinged = (uint8_t)pinged;
	list_remove(&c->ping_link);
	list_insert_tail(&t->by_ping, &c->ping_link);
}

void
edge_conn_msg(struct edge_conn_table *t, struct edge_conn *c, uint64_t now_ms)
{
	if (!c->in_table)
		return;
	if (c->state == EDGE_CONN_PENDING) {
		edge_conn_open(t, c, now_ms);
		return;
	}
	edge_conn_touch(t, c, now_ms);
	c->msg_ms = now_ms;
	list_remove(&c->msg_link);
	list_insert_tail(&t->by_msg, &c->msg_link);
}

void
edge_conn_touch(struct edge_conn_table *t, struct edge_conn *c, uint64_t now_ms)
{
	if (!c->in_table || c->state != EDGE_CONN_OPEN)
		return;
	c->last_ms = now_ms;
	list_remove(&c->link);
	list_insert_tail(&t->list[EDGE_CONN_OPEN], &c->link);
	if (c->ops->ping)
		edge_conn_ping_later(t, c, now_ms, 0);
}

void
edge_conn_del(struct edge_conn_table *t, struct edge_conn *c)
{
	if (!c->in_table)
		return;
	htab_del(&t->by_id, &c->by_id);
	htab_del(&t->by_dst, &c->by_dst);
	list_remove(&c->link);
	if (c->state == EDGE_CONN_OPEN) {
		list_remove(&c->msg_link);
		if (c->ops->ping)
			list_remove(&c->ping_link);
	}
	if (c->ip) {
		c->ip->n--;
		c->net->n--;
		t->n_in--;
		edge_ip_put(t, c->ip);
		edge_ip_put(t, c->net);
	}
	c->ip = c->net = NULL;
	c->in_table = 0;
}

struct edge_conn *
edge_conn_find(const struct edge_conn_table *t, uint64_t id)
{
	struct htab_node *n = htab_find(&t->by_id, edge_id_hash(id),
					edge_id_eq, &id);

	return n ? htab_entry(n, struct edge_conn, by_id) : NULL;
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
	struct edge_dst_key k = { transport, dst };
	struct htab_node *n;

	n = after ? htab_find_next(&after->by_dst, edge_dst_eq, &k) :
		htab_find(&t->by_dst, edge_sa_hash(transport, dst, 1),
			  edge_dst_eq, &k);
	return n ? htab_entry(n, struct edge_conn, by_dst) : NULL;
}

/* The oldest connection in the list of state, or NULL. */
static struct edge_conn *
edge_conn_oldest(const struct edge_conn_table *t, int state)
{
	struct list_node *n = list_first(&t->list[state]);

	return n ? list_entry(n, struct edge_conn, link) : NULL;
}

struct edge_conn *
edge_conn_expired(const struct edge_conn_table *t, uint64_t now_ms,
		  uint64_t pending_ms, uint64_t idle_ms, uint64_t msg_idle_ms,
		  const char **why)
{
	struct edge_conn *c = edge_conn_oldest(t, EDGE_CONN_PENDING);
	struct list_node *n;
	const char *w = NULL;

	if (c && now_ms - c->last_ms >= pending_ms) {
		w = "connect or handshake timeout";
	} else if ((c = edge_conn_oldest(t, EDGE_CONN_OPEN)) != NULL &&
		   idle_ms && now_ms - c->last_ms >= idle_ms) {
		w = "idle timeout";
	} else if ((n = list_first(&t->by_msg)) != NULL && msg_idle_ms &&
		   now_ms - (c = list_entry(n, struct edge_conn,
					    msg_link))->msg_ms >= msg_idle_ms) {
		w = "no SIP message within msg_idle_timeout_s";
	} else {
		c = NULL;
	}
	if (why)
		*why = w;
	return c;
}

struct edge_conn *
edge_conn_ping_round(struct edge_conn_table *t, uint64_t now_ms,
		     uint64_t every_ms, int max)
{
	struct list_node *n;
	struct edge_conn *c;

	while ((n = list_first(&t->by_ping)) != NULL) {
		c = list_entry(n, struct edge_conn, ping_link);
		if (now_ms - c->ping_ms < every_ms)
			return NULL;
		if (c->pinged)
			return c;
		if (max-- <= 0)
			return NULL;
		/* To the back first: the next in line is looked at next,
		 * whatever ping() does to c. */
		edge_conn_ping_later(t, c, now_ms, 1);
		c->ops->ping(c);
	}
	return NULL;
}

/* ---- the sweep, on the edge's loop ---- */

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
	const struct cfg_edge *me = e->me;
	uint64_t now = uv_now(e->loop);
	uint64_t pending = (uint64_t)me->handshake_timeout_s * 1000;
	uint64_t idle = (uint64_t)me->idle_timeout_s * 1000;
	uint64_t msg_idle = (uint64_t)me->msg_idle_timeout_s * 1000;
	struct edge_conn *c;
	const char *why;

	/* Past the longest registration nothing is routed to it. */
	if (msg_idle == 0)
		msg_idle = ((uint64_t)e->cfg->max_expires + 60) * 1000;
	for (int i = 0; i < EDGE_CONN_SWEEP_MAX &&
	     (c = edge_conn_expired(&e->conns, now, pending, idle, msg_idle,
				    &why)) != NULL; i++) {
		e->st.conns_idle++;
		c->ops->close(c, why);
		/* A transport that could not drop it from the table would
		 * be swept again at once: stop this round instead. */
		if (c->in_table)
			break;
	}
	if (me->ws_ping_s <= 0)
		return;
	while ((c = edge_conn_ping_round(&e->conns, now,
					 (uint64_t)me->ws_ping_s * 1000,
					 EDGE_CONN_SWEEP_MAX)) != NULL) {
		e->st.conns_idle++;
		c->ops->close(c, "no answer to a ping");
		if (c->in_table)
			break;
	}
}

int
edge_conn_accept(struct edge *e, struct edge_conn *c)
{
	uint64_t now = uv_now(e->loop);
	const char *why;
	char peer[64];
	int rc;

	rc = edge_limit_check(&e->limit, EDGE_LIMIT_CONN, &c->peer,
			      uv_hrtime() / 1000, NULL);
	if (rc == EDGE_LIMIT_FULL)
		e->st.limit_full++;
	if (rc == EDGE_LIMIT_DROP || rc == EDGE_LIMIT_DROP_FIRST) {
		e->st.conns_limited++;
		if (rc == EDGE_LIMIT_DROP_FIRST)
			log_notice(LOG_SYS_NET, "%s connections from %s%s over "
				   "conn_rate %d/s (burst %d): refused until it "
				   "slows down", env_transport_name(c->transport),
				   env_sa_ip(&c->peer, peer, sizeof(peer)),
				   c->peer.sa.sa_family == AF_INET6 ?
				   " (its /64)" : "",
				   e->me->conn_rate, e->me->conn_burst);
		return -EAGAIN;
	}
	rc = edge_conn_add(&e->conns, c, now);
	if (rc == 0) {
		e->st.conns_opened++;
		return 0;
	}
	if (rc == -EMFILE) {
		e->st.conns_refused++;
		why = "max_conns_per_ip or max_conns_per_net reached";
	} else if (rc == -ENFILE) {
		e->st.conns_full++;
		why = "max_conns reached";
	} else {
		why = strerror(-rc);
	}
	if (edge_ratelimit_allow(&e->rl, now))
		log_notice(LOG_SYS_NET, "%s connection from %s refused: %s",
			   env_transport_name(c->transport),
			   env_sa_str(&c->peer, peer, sizeof(peer)), why);
	return rc;
}

void
edge_conns_close_all(struct edge *e, const char *why)
{
	struct edge_conn *c;

	for (int state = EDGE_CONN_PENDING; state <= EDGE_CONN_OPEN; state++)
		while ((c = edge_conn_oldest(&e->conns, state)) != NULL) {
			c->ops->close(c, why);
			/* A no-op after a close that kept its contract; else
			 * this still reports it and ends the loop. */
			edge_conn_closed(e, c, why);
		}
}

int
edge_conns_start(struct edge *e)
{
	int rc = uv_timer_init(e->loop, &e->sweep);

	if (rc < 0)
		return rc;
	uv_timer_init(e->loop, &e->drain);	/* cannot fail */
	e->sweep.data = e;
	e->drain.data = e;
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
	uv_close((uv_handle_t *)&e->drain, NULL);
}

/* ---- drain ---- */

#define EDGE_DRAIN_ROUND_MS 100

static void
edge_drain_round(uv_timer_t *h)
{
	struct edge *e = h->data;
	struct edge_conn_table *t = &e->conns;
	struct list_node *n;
	struct edge_conn *c;

	for (int i = 0; i < e->drain_per_round; i++) {
		n = list_first(&t->list[EDGE_CONN_PENDING]);
		if (n == NULL)
			n = list_first(&t->list[EDGE_CONN_OPEN]);
		if (n == NULL)
			break;
		c = list_entry(n, struct edge_conn, link);
		e->st.conns_drained++;
		/* Out of the table at once: the next list_first() is
		 * another connection. */
		c->ops->close(c, "edge draining");
	}
	if (t->by_id.n == 0) {
		uv_timer_stop(h);
		log_notice(LOG_SYS_MAIN, "edge %d: drained (%" PRIu64
			   " connections asked to move)", e->me->id,
			   e->st.conns_drained);
	}
}

void
edge_drain(struct edge *e, int drain_s)
{
	size_t n = e->conns.by_id.n;
	size_t rounds = (size_t)drain_s * 1000 / EDGE_DRAIN_ROUND_MS;

	if (e->drain_per_round || !e->sweeping)
		return;
	for (int t = 0; t < ENV_TP_END; t++)
		if (e->tp[t] && e->tp[t]->unlisten)
			e->tp[t]->unlisten(e->tp[t]);
	if (rounds == 0)
		rounds = 1;
	e->drain_per_round = (int)((n + rounds - 1) / rounds);
	if (e->drain_per_round == 0)
		e->drain_per_round = 1;
	log_notice(LOG_SYS_MAIN, "edge %d: draining: no new connections; %zu "
		   "open ones asked to move over %d s", e->me->id, n, drain_s);
	uv_timer_start(&e->drain, edge_drain_round, 0, EDGE_DRAIN_ROUND_MS);
}
