/*
 * auth_store.c - the cores' asynchronous account lookup (auth.h): an
 * HMGET on the process's own Redis link (rconn), behind a bounded
 * per-process cache, so a REGISTER storm of known users costs no round
 * trip and a Redis outage does not lock known users out.
 *
 * Cache: a hash table on "<realm>:<user>" and an LRU list, at most
 * cache_max entries (the least recently used goes first).  An entry is
 * positive (the account) or negative (no such account: a scan of user
 * names costs Redis one lookup per name per AUTH_STORE_NEG_TTL_S).
 * Fresh entries answer at once; a stale one is refreshed when Redis is
 * up and served when it is not.
 *
 * A Redis master lost (with Sentinel): until the sentinels promote a
 * replica and the link follows (down-after plus an election: seconds),
 * a lookup goes to one of the replicas the master's ROLE listed
 * (rconn_replica): a second rconn, linked while the master answers so
 * that it is ready when the master goes; a lookup in flight when the
 * master's link fails is sent there again.  So users no core has
 * cached are not refused 503 meanwhile.  What a replica says is true
 * as of its last replication: an account it holds is served and cached
 * stale (refreshed from the master once back); "no such account" from
 * it may be an account too new for it, so it counts as no answer (503,
 * never a 401 a client would take for a wrong password).  A replica
 * that does not answer when needed is passed over for the next one
 * (that lookup gets 503).
 *
 * Coherence: sipmesh-ctl publishes "<realm>:<user>" on "<prefix>:acct"
 * after every change; the store drops that entry.  A reply already in
 * flight when an invalidation arrives may predate the change: a
 * generation counter, bumped by every invalidation and by every link
 * failure, keeps such a reply out of the cache (its caller still gets
 * it: it was true when Redis answered).  After a link failure every
 * entry turns stale, since invalidations may have been missed.
 *
 * Cost: a hit is one hash and a list move; a miss one HMGET; an
 * invalidation one hash.  Memory: cache_max * ~400 bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "lib/cfg.h"
#include "lib/hash.h"
#include "lib/htab.h"
#include "lib/list.h"
#include "lib/log.h"
#include "lib/rconn.h"

#define AUTH_NAME_MAX (AUTH_REALM_MAX + 1 + AUTH_USER_MAX + 1)

struct auth_entry {
	struct htab_node h;
	struct list_node lru;		/* most recently used first */
	uint64_t fresh_until;		/* loop ms; 0: stale */
	int found;			/* a, or no such account */
	struct auth_account a;
	size_t len;
	char name[AUTH_NAME_MAX];	/* "<realm>:<user>" */
};

/* A lookup in flight.  Orphaned (s NULL) when the store is freed
 * first: rconn still calls back, and that frees it. */
struct auth_lookup {
	struct auth_store *s;
	struct list_node link;		/* in s->lookups */
	auth_store_cb cb;
	void *arg;
	uint64_t gen;			/* s->gen when sent */
	int sends;			/* HMGETs sent for it (a failed
					   link's may go on the other) */
	int ro;				/* the last went to the replica */
	char realm[AUTH_REALM_MAX + 1];
	char user[AUTH_USER_MAX + 1];
};

struct auth_store {
	uv_loop_t *loop;
	struct rconn *rc;
	char prefix[64];
	size_t cache_max;
	uint64_t ttl_ms, neg_ttl_ms;
	uint64_t gen;			/* bumped by invalidations, failures */
	struct htab tab;
	struct list_node lru;
	struct list_node lookups;
	struct auth_store_stats st;
	/* Reading from a replica while the master is away (Sentinel only:
	 * ro_cfg.name NULL without). */
	struct rconn *ro;
	int ro_i;			/* which of rconn_replica's */
	struct rconn_config ro_cfg;	/* rc's, its strings below */
	char ro_user[128], ro_password[256], ro_name[128], ro_host[256];
};

static void auth_store_on_reply(redisAsyncContext *ac, void *reply,
				void *priv);

static int
auth_entry_eq(const struct htab_node *n, const void *key)
{
	const struct auth_entry *e = htab_entry(n, struct auth_entry, h);

	return strcmp(e->name, key) == 0;
}

static struct auth_entry *
auth_cache_find(struct auth_store *s, const char *name, size_t len)
{
	struct htab_node *n = htab_find(&s->tab, hash_sip(hash_process_key(), name, len),
					auth_entry_eq, name);

	return n ? htab_entry(n, struct auth_entry, h) : NULL;
}

static void
auth_cache_del(struct auth_store *s, struct auth_entry *e)
{
	htab_del(&s->tab, &e->h);
	list_remove(&e->lru);
	free(e);
	s->st.entries--;
}

/* Stores the outcome of a lookup (rc 0 with a, or -ENOENT); returns
 * the entry, NULL when none could be kept. */
static struct auth_entry *
auth_cache_put(struct auth_store *s, const char *name, size_t len, int rc,
	       const struct auth_account *a)
{
	struct auth_entry *e = auth_cache_find(s, name, len);

	if (!e) {
		if (s->cache_max == 0)
			return NULL;
		if (s->st.entries >= s->cache_max) {
			auth_cache_del(s, list_entry(list_last(&s->lru),
						     struct auth_entry, lru));
			s->st.evictions++;
		}
		e = calloc(1, sizeof(*e));
		if (!e)
			return NULL;	/* the next get asks Redis */
		memcpy(e->name, name, len + 1);
		e->len = len;
		if (htab_add(&s->tab, &e->h, hash_sip(hash_process_key(), name, len)) < 0) {
			free(e);
			return NULL;
		}
		s->st.entries++;
	} else {
		list_remove(&e->lru);
	}
	list_insert_head(&s->lru, &e->lru);
	e->found = rc == 0;
	if (e->found)
		e->a = *a;
	e->fresh_until = uv_now(s->loop) + (e->found ? s->ttl_ms : s->neg_ttl_ms);
	return e;
}

/* Dials a replica the master listed, if any and none is dialled: kept
 * linked while the master answers, so that it is ready when the
 * master goes. */
static void
auth_store_ro_open(struct auth_store *s)
{
	int port, n;

	if (s->ro || !s->ro_cfg.name)
		return;
	n = rconn_replica(s->rc, s->ro_i, s->ro_host, sizeof(s->ro_host),
			  &port);
	if (n == 0)
		return;
	if (s->ro_i >= n) {
		s->ro_i = 0;
		rconn_replica(s->rc, 0, s->ro_host, sizeof(s->ro_host), &port);
	}
	s->ro_cfg.host = s->ro_host;
	s->ro_cfg.port = port;
	if (rconn_new(&s->ro, s->loop, &s->ro_cfg, NULL, s) < 0) {
		s->ro = NULL;	/* tried again by the next lookup */
		return;
	}
	log_info(LOG_SYS_REG, "auth store: accounts are read from the "
		 "replica %s:%d while the Redis master is away", s->ro_host,
		 port);
}

/*
 * Sends l's HMGET: to the master, or while its link is down to a
 * replica (the next one when the one dialled never answered; one is
 * dialled if the master listed one since).  A lookup goes at most
 * twice (its first link failed under it).  Returns 0 (on_reply will
 * run), or -EAGAIN.
 */
static int
auth_store_send(struct auth_store *s, struct auth_lookup *l)
{
	struct rconn *rc;

	if (!rconn_up(s->rc) && s->ro && !rconn_up(s->ro) &&
	    rconn_failures(s->ro) > 0) {
		rconn_free(s->ro);
		s->ro = NULL;
		s->ro_i++;
	}
	auth_store_ro_open(s);
	rc = rconn_up(s->rc) ? s->rc : s->ro;
	if (!rc || l->sends == 2 ||
	    rconn_command(rc, auth_store_on_reply, l,
			  "HMGET %s:acct:%s:%s md5 sha256", s->prefix,
			  l->realm, l->user) < 0)
		return -EAGAIN;
	l->sends++;
	l->ro = rc == s->ro;
	return 0;
}

static void
auth_store_on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct auth_lookup *l = priv;
	struct auth_store *s = l->s;
	struct auth_account a;
	struct auth_entry *e;
	char name[AUTH_NAME_MAX];
	size_t len;
	int rc;

	(void)ac;
	if (!s) {		/* answered -ECANCELED by auth_store_free */
		free(l);
		return;
	}
	list_remove(&l->link);
	if (!reply && auth_store_send(s, l) == 0) {
		/* its link failed under it; the other one took it */
		list_insert_tail(&s->lookups, &l->link);
		return;
	}
	len = (size_t)snprintf(name, sizeof(name), "%s:%s", l->realm, l->user);
	rc = auth_account_parse(reply, l->realm, l->user, &a);
	if (rc == -ENOENT && l->ro)
		rc = -EIO;	/* maybe only too new for the replica */
	else if (rc == -EIO && reply)
		log_warn(LOG_SYS_REG, "auth store: unexpected reply for %s",
			 name);
	if (rc == -EIO) {
		s->st.failures++;
		e = auth_cache_find(s, name, len);
		if (e && e->found) {
			s->st.stale++;
			a = e->a;
			rc = 0;
		}
	} else {
		e = l->gen == s->gen ? auth_cache_put(s, name, len, rc, &a) :
				       NULL;
		if (l->ro) {
			s->st.replica++;
			if (e)	/* asked of the master once it is back */
				e->fresh_until = 0;
		}
	}
	l->cb(l->arg, rc, rc == 0 ? &a : NULL);
	free(l);
}

/* "<realm>:<user>" on <prefix>:acct: that account changed. */
static void
auth_store_on_inval(void *priv, const char *channel, const char *msg,
		    size_t len)
{
	struct auth_store *s = priv;
	struct auth_entry *e;

	(void)channel;
	s->gen++;
	if (len < AUTH_NAME_MAX && (e = auth_cache_find(s, msg, len))) {
		auth_cache_del(s, e);
		s->st.invalidations++;
	}
}

static void
auth_store_on_state(void *arg, int up)
{
	struct auth_store *s = arg;
	struct list_node *n;

	if (up) {
		auth_store_ro_open(s);	/* its handshake listed them */
		return;
	}
	if (rconn_up(s->ro))
		log_notice(LOG_SYS_REG, "auth store: the Redis master is "
			   "away: accounts are read from the replica %s:%d",
			   s->ro_host, s->ro_cfg.port);
	/* Invalidations published while down are lost: whatever is cached
	 * is only good enough to serve while Redis cannot answer. */
	s->gen++;
	for (n = list_first(&s->lru); n; n = list_next(&s->lru, n))
		list_entry(n, struct auth_entry, lru)->fresh_until = 0;
	auth_store_ro_open(s);
}

int
auth_store_new(struct auth_store **out, uv_loop_t *loop, const struct cfg *cfg,
	       const char *name, size_t cache_max, int ttl_s)
{
	struct auth_store *s;
	struct rconn_config rc;
	char host[CFG_ADDR_LEN], chan[80];
	int err = rconn_config_cfg(&rc, host, sizeof(host), cfg, name,
				   LOG_SYS_REG);

	if (err < 0)
		return err;
	if (ttl_s < 0 || snprintf(chan, sizeof(chan), "%s:acct",
				  cfg->redis_prefix) >= (int)sizeof(chan))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->cache_max = cache_max;
	s->ttl_ms = (uint64_t)ttl_s * 1000;
	s->neg_ttl_ms = (uint64_t)(ttl_s < AUTH_STORE_NEG_TTL_S ? ttl_s :
				   AUTH_STORE_NEG_TTL_S) * 1000;
	snprintf(s->prefix, sizeof(s->prefix), "%s", cfg->redis_prefix);
	if (rc.sentinels && rc.sentinels[0]) {
		s->ro_cfg = rc;
		s->ro_cfg.sentinels = NULL;
		snprintf(s->ro_user, sizeof(s->ro_user), "%s",
			 rc.user ? rc.user : "");
		snprintf(s->ro_password, sizeof(s->ro_password), "%s",
			 rc.password ? rc.password : "");
		snprintf(s->ro_name, sizeof(s->ro_name), "%s-replica", name);
		s->ro_cfg.user = s->ro_user;
		s->ro_cfg.password = s->ro_password;
		s->ro_cfg.name = s->ro_name;
	}
	list_init(&s->lru);
	list_init(&s->lookups);
	err = rconn_new(&s->rc, loop, &rc, auth_store_on_state, s);
	if (err == 0)
		err = rconn_subscribe(s->rc, chan, auth_store_on_inval, s);
	if (err < 0) {
		rconn_free(s->rc);
		free(s);
		return err;
	}
	*out = s;
	return 0;
}

int
auth_store_get(struct auth_store *s, const char *realm, size_t rlen,
	       const char *user, size_t ulen, struct auth_account *a,
	       auth_store_cb cb, void *arg)
{
	struct auth_lookup *l;
	struct auth_entry *e;
	char name[AUTH_NAME_MAX];
	size_t len;

	if (rlen > AUTH_REALM_MAX || ulen > AUTH_USER_MAX)
		return -ENOENT;
	len = (size_t)snprintf(name, sizeof(name), "%.*s:%.*s", (int)rlen,
			       realm, (int)ulen, user);
	e = auth_cache_find(s, name, len);
	if (e) {
		list_remove(&e->lru);
		list_insert_head(&s->lru, &e->lru);
	}
	if (e && uv_now(s->loop) < e->fresh_until) {
		s->st.hits++;
		if (!e->found)
			return -ENOENT;
		*a = e->a;
		return 0;
	}
	if (cb == NULL)
		return -EAGAIN;
	l = calloc(1, sizeof(*l));
	if (!l)
		goto unsent;
	memcpy(l->realm, realm, rlen);
	memcpy(l->user, user, ulen);
	/* A name no account can have never reaches a key. */
	if (!auth_realm_valid(l->realm) || !auth_user_valid(l->user)) {
		free(l);
		return -ENOENT;
	}
	l->s = s;
	l->cb = cb;
	l->arg = arg;
	l->gen = s->gen;
	if (auth_store_send(s, l) < 0) {
		free(l);
		goto unsent;
	}
	list_insert_tail(&s->lookups, &l->link);
	s->st.lookups++;
	return 1;
unsent:
	if (e && e->found) {
		s->st.stale++;
		*a = e->a;
		return 0;
	}
	return -EAGAIN;
}

void
auth_store_stats(const struct auth_store *s, struct auth_store_stats *st)
{
	*st = s->st;
	st->redis_up = rconn_up(s->rc);
	st->replica_up = rconn_up(s->ro);
}

void
auth_store_free(struct auth_store *s)
{
	struct list_node *n;
	size_t pos = 0;
	struct htab_node *h;

	if (!s)
		return;
	while ((n = list_first(&s->lookups))) {
		struct auth_lookup *l = list_entry(n, struct auth_lookup, link);

		list_remove(n);
		l->s = NULL;
		l->cb(l->arg, -ECANCELED, NULL);
	}
	rconn_free(s->rc);
	rconn_free(s->ro);
	while ((h = htab_any(&s->tab, &pos))) {
		struct auth_entry *e = htab_entry(h, struct auth_entry, h);

		htab_del(&s->tab, h);
		free(e);
	}
	htab_fini(&s->tab);
	free(s);
}
