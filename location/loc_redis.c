/*
 * loc_redis.c - the cluster's copy of the bindings in Redis, written
 * through from the host's shared store, and the invalidations that
 * keep other hosts' stores up to date.
 *
 * Schema (prefix from the configuration, AOR lower-cased):
 *   <prefix>:aor:<aor>   hash, one field per binding:
 *       "i:<instance>:<reg-id>"  a binding with a +sip.instance
 *       "c:<contact URI>"        any other binding
 *       value: loc_binding_encode() below, versioned
 *     plus, when the AOR has no binding left but is still known
 *     (404 vs 480): field "k" = the unix second it is known until.
 *     PEXPIREAT: the latest binding expiry + aor_ttl, or the "k" time,
 *     so Redis drops what no host swept.
 *   <prefix>:inval       channel; message "<segment id hex> <aor>"
 *     after every change of an AOR.
 *
 * Writes: the shared store first (the caller's answer never waits for
 * Redis), then HSET/HDEL, PEXPIREAT and PUBLISH on one async hiredis
 * connection, in that order, so a host that reads the AOR after the
 * PUBLISH sees the write.  A second connection SUBSCRIBEs; a message
 * from another segment (another host) fetches the AOR (HGETALL) and
 * replaces the local copy, unless a local write to the same bucket
 * happened since the fetch was sent (then it fetches again, at most
 * LOC_FETCH_TRIES times).  Every core on a host fetches: the cost is
 * one HGETALL per core per remote change.
 *
 * Start-up: the process that creates the segment loads every AOR with
 * a blocking SCAN + pipelined HGETALL, before its loop runs.  Later a
 * command is never blocking.  When Redis is down, commands are dropped
 * and counted, the store keeps working, and both connections are
 * retried with a backoff from 100 ms to 5 s.  Not done: bindings saved
 * while Redis was down are not pushed when it returns, and changes
 * published while a host was unsubscribed are not fetched (bindings
 * are refreshed by their next REGISTER, at most max_expires later).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/adapters/libuv.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "location/loc_int.h"

#define LOC_CODEC_V1     1
#define LOC_BACKOFF_MIN  100	/* ms */
#define LOC_BACKOFF_MAX  5000
#define LOC_FETCH_TRIES  3
#define LOC_KEY_MAX      (64 + 5 + LOC_AOR_MAX)
#define LOC_FIELD_MAX    (LOC_URI_MAX + 16)

/* ---- codec: 'L', version, fixed fields (network order), then each
 * string as a u16 length and its bytes.  Decoding checks every length
 * against the field it fills: a value from Redis is untrusted. */

struct loc_wr {
	char *p, *end;
};

static void
loc_put(struct loc_wr *w, const void *v, size_t n)
{
	if (w->p && (size_t)(w->end - w->p) >= n) {
		memcpy(w->p, v, n);
		w->p += n;
	} else {
		w->p = NULL;
	}
}

static void
loc_put_u16(struct loc_wr *w, uint16_t v)
{
	v = htons(v);
	loc_put(w, &v, 2);
}

static void
loc_put_u32(struct loc_wr *w, uint32_t v)
{
	v = htonl(v);
	loc_put(w, &v, 4);
}

static void
loc_put_str(struct loc_wr *w, const char *s)
{
	size_t n = strlen(s);

	loc_put_u16(w, (uint16_t)n);
	loc_put(w, s, n);
}

/* Returns the bytes written to buf, or -ENOSPC. */
int
loc_binding_encode(const struct loc_binding *b, char *buf, size_t cap)
{
	struct loc_wr w = { buf, buf + cap };
	uint8_t hdr[2] = { 'L', LOC_CODEC_V1 };
	uint8_t addr[16] = { 0 }, fam = 0;
	uint16_t port = 0;

	if (b->received.sa.sa_family == AF_INET) {
		fam = 4;
		port = ntohs(b->received.in.sin_port);
		memcpy(addr, &b->received.in.sin_addr, 4);
	} else if (b->received.sa.sa_family == AF_INET6) {
		fam = 6;
		port = ntohs(b->received.in6.sin6_port);
		memcpy(addr, &b->received.in6.sin6_addr, 16);
	}
	loc_put(&w, hdr, 2);
	loc_put_u32(&w, (uint32_t)((uint64_t)b->expires >> 32));
	loc_put_u32(&w, (uint32_t)b->expires);
	loc_put_u32(&w, b->cseq);
	loc_put_u16(&w, b->q);
	loc_put(&w, &b->transport, 1);
	loc_put(&w, &b->flags, 1);
	loc_put_u16(&w, b->edge_id);
	loc_put_u32(&w, b->conn_id);
	loc_put_u32(&w, b->reg_id);
	loc_put(&w, &fam, 1);
	loc_put_u16(&w, port);
	loc_put(&w, addr, 16);
	loc_put_str(&w, b->aor);
	loc_put_str(&w, b->contact);
	loc_put_str(&w, b->callid);
	loc_put_str(&w, b->instance);
	loc_put_str(&w, b->user_agent);
	loc_put_str(&w, b->path);
	return w.p ? (int)(w.p - buf) : -ENOSPC;
}

struct loc_rd {
	const unsigned char *p, *end;
	int bad;
};

static const unsigned char *
loc_get(struct loc_rd *r, size_t n)
{
	const unsigned char *p = r->p;

	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = 1;
		return NULL;
	}
	r->p += n;
	return p;
}

static uint32_t
loc_get_u(struct loc_rd *r, size_t n)
{
	const unsigned char *p = loc_get(r, n);
	uint32_t v = 0;

	for (size_t i = 0; p && i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static void
loc_get_str(struct loc_rd *r, char *dst, size_t cap)
{
	size_t n = loc_get_u(r, 2);
	const unsigned char *p;

	if (n >= cap)
		r->bad = 1;
	p = loc_get(r, n);
	if (!p || memchr(p, '\0', n)) {
		r->bad = 1;
		return;
	}
	memcpy(dst, p, n);
	dst[n] = '\0';
}

/* Fills *b from buf; 0, or -EPROTO for anything malformed. */
int
loc_binding_decode(struct loc_binding *b, const char *buf, size_t len)
{
	struct loc_rd r = { (const unsigned char *)buf,
			    (const unsigned char *)buf + len, 0 };
	const unsigned char *h = loc_get(&r, 2), *addr;
	uint32_t hi, fam, port;

	memset(b, 0, sizeof(*b));
	if (!h || h[0] != 'L' || h[1] != LOC_CODEC_V1)
		return -EPROTO;
	hi = loc_get_u(&r, 4);
	b->expires = (int64_t)((uint64_t)hi << 32 | loc_get_u(&r, 4));
	b->cseq = loc_get_u(&r, 4);
	b->q = (uint16_t)loc_get_u(&r, 2);
	b->transport = (uint8_t)loc_get_u(&r, 1);
	b->flags = (uint8_t)loc_get_u(&r, 1);
	b->edge_id = (uint16_t)loc_get_u(&r, 2);
	b->conn_id = loc_get_u(&r, 4);
	b->reg_id = loc_get_u(&r, 4);
	fam = loc_get_u(&r, 1);
	port = loc_get_u(&r, 2);
	addr = loc_get(&r, 16);
	if (addr && fam == 4) {
		b->received.in.sin_family = AF_INET;
		b->received.in.sin_port = htons((uint16_t)port);
		memcpy(&b->received.in.sin_addr, addr, 4);
	} else if (addr && fam == 6) {
		b->received.in6.sin6_family = AF_INET6;
		b->received.in6.sin6_port = htons((uint16_t)port);
		memcpy(&b->received.in6.sin6_addr, addr, 16);
	} else if (fam != 0) {
		r.bad = 1;
	}
	loc_get_str(&r, b->aor, sizeof(b->aor));
	loc_get_str(&r, b->contact, sizeof(b->contact));
	loc_get_str(&r, b->callid, sizeof(b->callid));
	loc_get_str(&r, b->instance, sizeof(b->instance));
	loc_get_str(&r, b->user_agent, sizeof(b->user_agent));
	loc_get_str(&r, b->path, sizeof(b->path));
	if (r.bad || r.p != r.end || !b->aor[0] || !b->contact[0])
		return -EPROTO;
	return 0;
}

/* The hash field of b (see the schema).  Returns its length. */
int
loc_binding_field(const struct loc_binding *b, char *buf, size_t cap)
{
	if (b->instance[0])
		return snprintf(buf, cap, "i:%s:%" PRIu32, b->instance,
				b->reg_id);
	return snprintf(buf, cap, "c:%s", b->contact);
}

static void
loc_redis_key(const struct loc_redis *r, const char *aor, char *key)
{
	int n = snprintf(key, LOC_KEY_MAX, "%s:aor:", r->prefix);

	for (; *aor && n < LOC_KEY_MAX - 1; aor++)
		key[n++] = (*aor >= 'A' && *aor <= 'Z') ? *aor + 32 : *aor;
	key[n] = '\0';
}

/* ---- async writes */

static void
loc_redis_on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct loc_redis *r = ac->data;
	redisReply *rep = reply;

	(void)priv;
	if (r->closing)
		return;
	if (!rep) {		/* the disconnect itself is logged once */
		r->errors++;
	} else if (rep->type == REDIS_REPLY_ERROR) {
		r->errors++;
		log_warn(LOG_SYS_LOC, "redis: %s", rep->str);
	}
}

/* Sends one command, or counts it as dropped when Redis is down. */
static void
loc_redis_cmd(struct loc_redis *r, redisCallbackFn *fn, void *priv,
	      const char *fmt, ...)
{
	va_list ap;
	int rc = REDIS_ERR;

	if (r->cmd) {
		va_start(ap, fmt);
		rc = redisvAsyncCommand(r->cmd, fn, priv, fmt, ap);
		va_end(ap);
	}
	if (rc != REDIS_OK)
		r->errors++;
}

static void
loc_redis_sink_del(void *arg, const struct loc_binding *b)
{
	struct loc_redis *r = arg;
	char key[LOC_KEY_MAX], field[LOC_FIELD_MAX];

	loc_redis_key(r, b->aor, key);
	loc_binding_field(b, field, sizeof(field));
	loc_redis_cmd(r, loc_redis_on_reply, NULL, "HDEL %s %s", key, field);
}

static void
loc_redis_sink_set(void *arg, const struct loc_binding *b)
{
	struct loc_redis *r = arg;
	char key[LOC_KEY_MAX], field[LOC_FIELD_MAX], val[LOC_REDIS_VAL_MAX];
	int n = loc_binding_encode(b, val, sizeof(val));

	if (n < 0) {		/* loc_save checked every field: cannot be */
		r->errors++;
		return;
	}
	loc_redis_key(r, b->aor, key);
	loc_binding_field(b, field, sizeof(field));
	loc_redis_cmd(r, loc_redis_on_reply, NULL, "HSET %s %s %b", key, field,
		      val, (size_t)n);
}

static void
loc_redis_sink_done(void *arg, const char *aor, int64_t expire_at,
		    int64_t known_until)
{
	struct loc_redis *r = arg;
	char key[LOC_KEY_MAX], msg[32 + LOC_AOR_MAX];

	loc_redis_key(r, aor, key);
	if (expire_at) {
		loc_redis_cmd(r, loc_redis_on_reply, NULL, "PEXPIREAT %s %lld",
			      key, (long long)expire_at * 1000);
	} else if (known_until) {
		loc_redis_cmd(r, loc_redis_on_reply, NULL, "HSET %s k %lld",
			      key, (long long)known_until);
		loc_redis_cmd(r, loc_redis_on_reply, NULL, "PEXPIREAT %s %lld",
			      key, (long long)known_until * 1000);
	} else {
		loc_redis_cmd(r, loc_redis_on_reply, NULL, "DEL %s", key);
	}
	snprintf(msg, sizeof(msg), "%016" PRIx64 " %s", r->seg_id,
		 key + strlen(r->prefix) + 5);
	loc_redis_cmd(r, loc_redis_on_reply, NULL, "PUBLISH %s:inval %s",
		      r->prefix, msg);
}

void
loc_redis_sink(struct loc_redis *r, struct loc_sink *k)
{
	k->del = loc_redis_sink_del;
	k->set = loc_redis_sink_set;
	k->aor_done = loc_redis_sink_done;
	k->arg = r;
}

/* ---- reading an AOR back */

/*
 * Replaces aor in the store with an HGETALL reply.  Bindings already
 * expired are left out, but still keep the AOR known.  Returns what
 * loc_shm_replace_aor returns, or -EPROTO for a reply that is no hash.
 */
static int
loc_redis_apply(struct loc_redis *r, const char *aor, const redisReply *rep,
		int64_t now, const uint32_t *wseq)
{
	struct loc_binding *bs = NULL;
	int64_t known_until = 0;
	int n = 0, rc;

	if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2)
		return -EPROTO;
	if (rep->elements) {
		bs = malloc(rep->elements / 2 * sizeof(*bs));
		if (!bs)
			return -ENOMEM;
	}
	for (size_t i = 0; i + 1 < rep->elements; i += 2) {
		const redisReply *f = rep->element[i], *v = rep->element[i + 1];

		if (f->type != REDIS_REPLY_STRING ||
		    v->type != REDIS_REPLY_STRING) {
			r->errors++;
		} else if (strcmp(f->str, "k") == 0) {
			int64_t t = strtoll(v->str, NULL, 10);

			if (t > known_until)
				known_until = t;
		} else if (loc_binding_decode(&bs[n], v->str, v->len) < 0 ||
			   strcasecmp(bs[n].aor, aor) != 0) {
			r->errors++;
			log_warn(LOG_SYS_LOC, "redis: bad binding %s of %s",
				 f->str, aor);
		} else if (bs[n].expires <= now) {
			if (bs[n].expires + r->shm->aor_ttl > known_until)
				known_until = bs[n].expires + r->shm->aor_ttl;
		} else {
			n++;
		}
	}
	rc = loc_shm_replace_aor(r->shm, aor, bs, n, known_until, now, wseq);
	free(bs);
	return rc;
}

struct loc_fetch {
	struct loc_redis *r;
	uint32_t wseq;
	int tries;
	char aor[LOC_AOR_MAX];
};

static void loc_redis_fetch_send(struct loc_fetch *f);

static void
loc_redis_on_fetch(redisAsyncContext *ac, void *reply, void *priv)
{
	struct loc_fetch *f = priv;
	struct loc_redis *r = f->r;
	int rc;

	(void)ac;
	if (r->closing)
		goto done;
	if (!reply) {
		r->errors++;
		goto done;
	}
	rc = loc_redis_apply(r, f->aor, reply, time(NULL), &f->wseq);
	if (rc == -EAGAIN && ++f->tries < LOC_FETCH_TRIES) {
		loc_redis_fetch_send(f);
		return;
	}
	if (rc < 0) {
		r->errors++;
		log_warn(LOG_SYS_LOC, "redis: cannot refresh %s: %s", f->aor,
			 strerror(-rc));
	}
done:
	free(f);
}

/* Sends (again) the HGETALL of f's AOR; takes ownership of f. */
static void
loc_redis_fetch_send(struct loc_fetch *f)
{
	struct loc_redis *r = f->r;
	char key[LOC_KEY_MAX];

	f->wseq = loc_shm_wseq(r->shm, f->aor);
	loc_redis_key(r, f->aor, key);
	if (!r->cmd || redisAsyncCommand(r->cmd, loc_redis_on_fetch, f,
					 "HGETALL %s", key) != REDIS_OK) {
		r->errors++;
		free(f);
	}
}

/* A message on <prefix>:inval: "<segment id> <aor>". */
static void
loc_redis_on_inval(redisAsyncContext *ac, void *reply, void *priv)
{
	struct loc_redis *r = ac->data;
	redisReply *rep = reply, *msg;
	struct loc_fetch *f;
	char *sp;

	(void)priv;
	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(rep->element[0]->str, "message") != 0)
		return;
	msg = rep->element[2];
	if (msg->type != REDIS_REPLY_STRING)
		return;
	if (strtoull(msg->str, &sp, 16) == r->seg_id || *sp != ' ' ||
	    strlen(sp + 1) >= LOC_AOR_MAX || !sp[1])
		return;		/* our own host's write, or garbage */
	f = calloc(1, sizeof(*f));
	if (!f) {
		r->errors++;
		return;
	}
	f->r = r;
	strcpy(f->aor, sp + 1);
	loc_redis_fetch_send(f);
}

/* ---- start-up load (blocking, before the loop runs) */

void
loc_redis_load(struct loc_redis *r, int64_t now)
{
	struct timeval tv = { 2, 0 };
	redisContext *c = redisConnectWithTimeout(r->host, r->port, tv);
	redisReply *scan = NULL, *rep;
	char cursor[32] = "0";
	size_t plen = strlen(r->prefix) + 5;
	long aors = 0;

	if (!c || c->err) {
		r->errors++;
		log_warn(LOG_SYS_LOC, "redis %s:%d: %s; starting empty",
			 r->host, r->port, c ? c->errstr : "out of memory");
		goto out;
	}
	tv.tv_sec = 10;
	redisSetTimeout(c, tv);
	do {
		scan = redisCommand(c, "SCAN %s MATCH %s:aor:* COUNT 1000",
				    cursor, r->prefix);
		if (!scan || scan->type != REDIS_REPLY_ARRAY ||
		    scan->elements != 2 ||
		    scan->element[0]->type != REDIS_REPLY_STRING ||
		    scan->element[1]->type != REDIS_REPLY_ARRAY)
			goto bad;
		snprintf(cursor, sizeof(cursor), "%s", scan->element[0]->str);
		for (size_t i = 0; i < scan->element[1]->elements; i++)
			redisAppendCommand(c, "HGETALL %b",
					   scan->element[1]->element[i]->str,
					   scan->element[1]->element[i]->len);
		for (size_t i = 0; i < scan->element[1]->elements; i++) {
			const char *key = scan->element[1]->element[i]->str;

			if (redisGetReply(c, (void **)&rep) != REDIS_OK)
				goto bad;
			if (strlen(key) > plen && strlen(key + plen) < LOC_AOR_MAX &&
			    loc_redis_apply(r, key + plen, rep, now, NULL) == 0)
				aors++;
			else
				r->errors++;
			freeReplyObject(rep);
		}
		freeReplyObject(scan);
		scan = NULL;
	} while (strcmp(cursor, "0") != 0);
	log_info(LOG_SYS_LOC, "loaded %ld AORs from redis %s:%d", aors,
		 r->host, r->port);
	goto out;
bad:
	r->errors++;
	log_warn(LOG_SYS_LOC, "redis %s:%d: load failed: %s", r->host, r->port,
		 c->err ? c->errstr : "unexpected reply");
out:
	if (scan)
		freeReplyObject(scan);
	if (c)
		redisFree(c);
}

/* ---- connections */

static void loc_redis_connect(struct loc_redis *r);

static void
loc_redis_on_timer(uv_timer_t *t)
{
	loc_redis_connect(t->data);
}

static void
loc_redis_retry(struct loc_redis *r)
{
	if (r->closing || uv_is_active((uv_handle_t *)&r->timer))
		return;
	uv_timer_start(&r->timer, loc_redis_on_timer, r->backoff_ms, 0);
	r->backoff_ms = r->backoff_ms * 2 > LOC_BACKOFF_MAX ?
		LOC_BACKOFF_MAX : r->backoff_ms * 2;
}

/* hiredis frees the context after these return. */
static void
loc_redis_gone(struct loc_redis *r, const redisAsyncContext *ac,
	       const char *what)
{
	if (ac == r->cmd) {
		r->cmd = NULL;
		r->cmd_up = 0;
	} else {
		r->sub = NULL;
		r->sub_up = 0;
	}
	if (r->closing)
		return;
	r->errors++;
	log_warn(LOG_SYS_LOC, "redis %s:%d: %s: %s", r->host, r->port, what,
		 ac->errstr[0] ? ac->errstr : "closed");
	loc_redis_retry(r);
}

static void
loc_redis_on_connect(const redisAsyncContext *ac, int status)
{
	struct loc_redis *r = ac->data;

	if (status != REDIS_OK) {
		loc_redis_gone(r, ac, "connect");
		return;
	}
	if (ac == r->cmd)
		r->cmd_up = 1;
	else
		r->sub_up = 1;
	if (r->cmd_up && r->sub_up) {
		r->backoff_ms = LOC_BACKOFF_MIN;
		log_info(LOG_SYS_LOC, "redis %s:%d: connected", r->host,
			 r->port);
	}
}

static void
loc_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
	(void)status;
	loc_redis_gone(ac->data, ac, "disconnected");
}

static redisAsyncContext *
loc_redis_dial(struct loc_redis *r)
{
	redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);

	if (!ac || ac->err || redisLibuvAttach(ac, r->loop) != REDIS_OK) {
		r->errors++;
		log_debug(LOG_SYS_LOC, "redis %s:%d: %s", r->host, r->port,
			  ac ? ac->errstr : "out of memory");
		if (ac)
			redisAsyncFree(ac);
		return NULL;
	}
	ac->data = r;
	redisAsyncSetConnectCallback(ac, loc_redis_on_connect);
	redisAsyncSetDisconnectCallback(ac, loc_redis_on_disconnect);
	return ac;
}

/* Dials whichever connection is down; commands queue until it is up. */
static void
loc_redis_connect(struct loc_redis *r)
{
	char chan[80];

	if (!r->cmd)
		r->cmd = loc_redis_dial(r);
	if (!r->sub) {
		r->sub = loc_redis_dial(r);
		snprintf(chan, sizeof(chan), "%s:inval", r->prefix);
		if (r->sub && redisAsyncCommand(r->sub, loc_redis_on_inval,
						NULL, "SUBSCRIBE %s",
						chan) != REDIS_OK)
			r->errors++;
	}
	if (!r->cmd || !r->sub)
		loc_redis_retry(r);
}

int
loc_redis_init(struct loc_redis *r, const struct loc_config *cfg,
	       uv_loop_t *loop, struct loc_shm *shm)
{
	const char *prefix = cfg->prefix && cfg->prefix[0] ? cfg->prefix : "sm";
	struct sigaction sa;
	int rc;

	memset(r, 0, sizeof(*r));
	if (snprintf(r->host, sizeof(r->host), "%s", cfg->redis_host) >=
	    (int)sizeof(r->host) ||
	    snprintf(r->prefix, sizeof(r->prefix), "%s", prefix) >=
	    (int)sizeof(r->prefix))
		return -E2BIG;
	r->port = cfg->redis_port ? cfg->redis_port : 6379;
	r->loop = loop;
	r->shm = shm;
	r->seg_id = shm->hdr->seg_id;
	r->backoff_ms = LOC_BACKOFF_MIN;
	/* hiredis writes with write(2): a Redis that dies must cost an
	 * EPIPE, not the process.  Left alone if the process chose. */
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
	rc = uv_timer_init(loop, &r->timer);
	r->timer.data = r;
	return rc;
}

/* Starts the connections (after loc_redis_load). */
void
loc_redis_start(struct loc_redis *r)
{
	loc_redis_connect(r);
}

static void
loc_redis_on_closed(uv_handle_t *h)
{
	struct loc_redis *r = h->data;

	r->closed_cb(r->closed_arg);
}

/* Drops both connections (pending replies are not waited for) and
 * calls cb(arg) once the loop has released the timer. */
void
loc_redis_close(struct loc_redis *r, void (*cb)(void *), void *arg)
{
	r->closing = 1;
	r->closed_cb = cb;
	r->closed_arg = arg;
	if (r->cmd)
		redisAsyncFree(r->cmd);
	if (r->sub)
		redisAsyncFree(r->sub);
	r->cmd = r->sub = NULL;
	uv_close((uv_handle_t *)&r->timer, loc_redis_on_closed);
}
