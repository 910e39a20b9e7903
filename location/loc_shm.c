/*
 * loc_shm.c - the host's shared-memory binding store, one POSIX shm
 * segment mapped by every core process on the host.
 *
 * Why: a lookup (every INVITE, every MESSAGE) must not wait for Redis.
 * The store is a full replica of the cluster's bindings, not an LRU,
 * so a miss here is a real miss.
 *
 * Layout: a header, a bucket array, a conn bucket array of the same
 * size and max_bindings fixed-size slots.  An AOR hashes (SipHash under
 * the segment's random key, case folded) to one bucket; the bucket's
 * chain links the AOR's slots by index through next (no pointers in
 * shared memory).  Each bucket has its own robust process-shared
 * mutex, so one core that dies holding it costs a chain check, not a
 * frozen host; free slots form a list under its own lock, always taken
 * after a bucket lock.
 *
 * Every BINDING slot with a conn_id is also indexed by (edge, connection)
 * so that a closed flow costs its own bindings: loc_shm_conn.c, which
 * also states the rules this file keeps (a slot's b is only written
 * while it is out of that index; an AOR bucket lock is taken before a
 * conn bucket lock, never after).
 *
 * An AOR with no binding left stays known (the proxy answers 480, not
 * 404) for aor_ttl seconds: the slot of its last binding becomes a
 * KNOWN marker.  An AOR therefore holds either bindings or one marker,
 * and markers only use slots that no binding needs: a save that finds
 * no free slot sweeps expired entries, then drops the marker that
 * expires first, and only then fails with -ENOSPC.  Live bindings are
 * never evicted.
 *
 * Cost: lookup and save are one hash, one lock and a walk of a chain
 * of about one AOR (nbuckets >= max_bindings), plus a conn lock for a
 * binding with a conn_id; loc_expire sweeps a slice of nbuckets/32
 * buckets per call; a save into a full store walks the whole table.
 *
 * Binding identity (RFC 5626): same AOR and either the same non-empty
 * instance and reg-id, or the same contact URI.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/hash.h"
#include "lib/log.h"
#include "location/loc_int.h"

#define LOC_INIT_WAIT_MS 120000 /* a later process waits this long for
				   a live creator's start-up load, unless
				   [location] init_wait_ms says otherwise */
#define LOC_ALIGN(x) (((x) + 63) & ~(size_t)63)
#define LOC_LOCK_WAIT_MS 500	/* longest wait for a store lock */
#define LOC_SWEEP_SLOTS 1024	/* slots loc_shm_expire checks per call */

static int loc_pid_gone(int32_t pid);

/* Our pid, as slot owners and the creator record it: getpid(2) is a
 * system call each time (glibc no longer caches it) and a REGISTER
 * takes slots twice.  A fork clears the cache, so a child that goes on
 * with its parent's mapping (the crash tests' writers do) records its
 * own pid. */
static int32_t loc_pid;
static pthread_once_t loc_pid_once = PTHREAD_ONCE_INIT;

static void
loc_pid_forget(void)
{
	loc_pid = 0;
}

static void
loc_pid_init(void)
{
	pthread_atfork(NULL, NULL, loc_pid_forget);
}

static int32_t
loc_self(void)
{
	if (loc_pid == 0)
		loc_pid = (int32_t)getpid();
	return loc_pid;
}

/*
 * After its holder died: drops from the chain m guards (bk's, or the
 * free list when bk is NULL) every slot that is not whole there - one
 * being written, taken, or of the wrong kind - and keeps walking, so
 * no other binding is lost; a link out of range (never written so)
 * cuts the chain.  Dropped slots become TAKEN by nobody: the slot sweep
 * frees them.
 */
static void
loc_lock_repair(struct loc_shm *s, struct loc_bucket *bk)
{
	uint32_t *link = bk ? &bk->head : &s->hdr->free_head, n = 0;

	while (*link != LOC_NIL) {
		struct loc_slot *sl;
		uint8_t kind;

		if (*link >= s->hdr->nslots || n++ > s->hdr->nslots) {
			*link = LOC_NIL;
			break;
		}
		sl = &s->slots[*link];
		kind = __atomic_load_n(&sl->kind, __ATOMIC_ACQUIRE);
		if (bk ? kind == LOC_SLOT_BINDING || kind == LOC_SLOT_KNOWN :
			 kind == LOC_SLOT_FREE) {
			link = &sl->next;
			continue;
		}
		/* A live owner (a sweeper freeing it) keeps it. */
		if (kind != LOC_SLOT_TAKEN || loc_pid_gone(sl->owner))
			sl->owner = 0;
		__atomic_store_n(&sl->kind, LOC_SLOT_TAKEN, __ATOMIC_RELEASE);
		*link = sl->next;
	}
}

/*
 * Takes a robust lock; repairs the chain when its owner died (bk: the
 * AOR bucket m guards, NULL for the free list).  A holder that is
 * stopped, not dead, is waited for LOC_LOCK_WAIT_MS only: the caller
 * gets -ETIMEDOUT (a SIP error for this one request) instead of every
 * core freezing behind it.
 */
int
loc_lock(struct loc_shm *s, pthread_mutex_t *m, struct loc_bucket *bk)
{
	struct timespec until;
	int rc = pthread_mutex_trylock(m);

	if (rc == EBUSY) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += LOC_LOCK_WAIT_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		rc = pthread_mutex_timedlock(m, &until);
	}
	if (rc == ETIMEDOUT) {
		if (__atomic_fetch_add(&s->hdr->lock_timeouts, 1,
				       __ATOMIC_RELAXED) % 1000 == 0)
			log_warn(LOG_SYS_LOC, "a store lock held over %d ms "
				 "(a stopped process?): request refused",
				 LOC_LOCK_WAIT_MS);
		return -ETIMEDOUT;
	}
	if (rc == EOWNERDEAD) {
		loc_lock_repair(s, bk);
		__atomic_fetch_add(&s->hdr->lock_recoveries, 1,
				   __ATOMIC_RELAXED);
		log_warn(LOG_SYS_LOC, "recovered a lock left by a dead process");
		rc = pthread_mutex_consistent(m);
	}
	return -rc;
}

void
loc_unlock(pthread_mutex_t *m)
{
	pthread_mutex_unlock(m);
}

struct loc_bucket *
loc_bucket_of(struct loc_shm *s, const char *aor)
{
	uint64_t h = hash_sip_nocase(&s->hdr->bucket_key, aor, strlen(aor));

	return &s->buckets[h & (s->hdr->nbuckets - 1)];
}

/* Marks slot i TAKEN by this process, before it leaves a chain. */
static void
loc_slot_take(struct loc_shm *s, uint32_t i)
{
	s->slots[i].owner = loc_self();
	__atomic_store_n(&s->slots[i].kind, LOC_SLOT_TAKEN, __ATOMIC_RELEASE);
}

/* Pops a free slot, TAKEN by this process, or LOC_NIL.  Called with a
 * bucket lock held. */
static uint32_t
loc_slot_alloc(struct loc_shm *s)
{
	uint32_t i;

	if (loc_lock(s, &s->hdr->free_lock, NULL) < 0)
		return LOC_NIL;
	i = s->hdr->free_head;
	if (i != LOC_NIL) {
		loc_slot_take(s, i);
		s->hdr->free_head = s->slots[i].next;
	}
	loc_unlock(&s->hdr->free_lock);
	return i;
}

/* Returns a slot in no chain to the free list. */
static void
loc_slot_free(struct loc_shm *s, uint32_t i)
{
	struct loc_slot *sl = &s->slots[i];

	if (__atomic_load_n(&sl->kind, __ATOMIC_ACQUIRE) != LOC_SLOT_TAKEN)
		loc_slot_take(s, i);
	loc_conn_unlink(s, i);
	sl->b.aor[0] = '\0';
	if (loc_lock(s, &s->hdr->free_lock, NULL) < 0)
		return;		/* TAKEN by a live process: a leak */
	sl->next = s->hdr->free_head;
	s->hdr->free_head = i;
	__atomic_store_n(&sl->kind, LOC_SLOT_FREE, __ATOMIC_RELEASE);
	loc_unlock(&s->hdr->free_lock);
}

/* Whether process pid is gone (0: nobody, gone). */
static int
loc_pid_gone(int32_t pid)
{
	return pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH);
}

/* Whether slot i is in bk's chain (bk locked). */
static int
loc_chain_has_locked(struct loc_shm *s, struct loc_bucket *bk, uint32_t i)
{
	uint32_t n = 0;

	for (uint32_t j = bk->head; j != LOC_NIL && n++ <= s->hdr->nslots;
	     j = s->slots[j].next)
		if (j == i)
			return 1;
	return 0;
}

/* A BINDING or KNOWN slot must be in its AOR's chain: one that is not
 * was being linked or unlinked by a process that died holding the
 * bucket lock.  Checked under that lock, so never a live writer's. */
static int
loc_slot_sweep_lost(struct loc_shm *s, uint32_t i)
{
	struct loc_slot *sl = &s->slots[i];
	struct loc_bucket *bk;
	char aor[LOC_AOR_MAX];
	int lost = 0;

	memcpy(aor, sl->b.aor, sizeof(aor));
	aor[sizeof(aor) - 1] = '\0';
	bk = loc_bucket_of(s, aor);
	if (loc_lock(s, &bk->lock, bk) < 0)
		return 0;
	if ((sl->kind == LOC_SLOT_BINDING || sl->kind == LOC_SLOT_KNOWN) &&
	    loc_bucket_of(s, sl->b.aor) == bk &&
	    !loc_chain_has_locked(s, bk, i)) {
		loc_slot_take(s, i);
		loc_slot_free(s, i);
		lost = 1;
	}
	loc_unlock(&bk->lock);
	return lost;
}

/*
 * Among the next `count` slots, frees those a dead process left: TAKEN
 * by a process that is gone (a compare-and-swap of the owner makes one
 * sweeper, of all processes, free each), and BINDING or KNOWN ones in
 * no chain.  Returns how many.
 */
static int
loc_slot_sweep(struct loc_shm *s, uint32_t count)
{
	uint32_t ns = s->hdr->nslots, start;
	int n = 0;

	start = __atomic_fetch_add(&s->hdr->slot_cursor, count,
				   __ATOMIC_RELAXED);
	for (uint32_t j = 0; j < count && j < ns; j++) {
		uint32_t i = (start + j) % ns;
		struct loc_slot *sl = &s->slots[i];
		uint8_t kind = __atomic_load_n(&sl->kind, __ATOMIC_ACQUIRE);
		int32_t owner;

		if (kind == LOC_SLOT_BINDING || kind == LOC_SLOT_KNOWN) {
			n += loc_slot_sweep_lost(s, i);
			continue;
		}
		if (kind != LOC_SLOT_TAKEN)
			continue;
		owner = __atomic_load_n(&sl->owner, __ATOMIC_ACQUIRE);
		if (!loc_pid_gone(owner) ||
		    !__atomic_compare_exchange_n(&sl->owner, &owner,
						 loc_self(), 0,
						 __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE))
			continue;
		loc_slot_free(s, i);
		n++;
	}
	if (n)
		__atomic_fetch_add(&s->hdr->slots_recovered, (uint64_t)n,
				   __ATOMIC_RELAXED);
	return n;
}

static void
loc_count(struct loc_shm *s, int64_t d)
{
	__atomic_fetch_add(&s->hdr->nbindings, (uint64_t)d, __ATOMIC_RELAXED);
}

int
loc_binding_same(const struct loc_binding *a, const struct loc_binding *b)
{
	if (strcasecmp(a->aor, b->aor) != 0)
		return 0;
	if (a->instance[0] && strcmp(a->instance, b->instance) == 0 &&
	    a->reg_id == b->reg_id)
		return 1;
	return strcmp(a->contact, b->contact) == 0;
}

/* Whether a and b are stored under the same Redis field. */
int
loc_binding_same_key(const struct loc_binding *a, const struct loc_binding *b)
{
	if (a->instance[0] || b->instance[0])
		return strcmp(a->instance, b->instance) == 0 &&
		       a->reg_id == b->reg_id;
	return strcmp(a->contact, b->contact) == 0;
}

static void
loc_pthread_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
}

/* Where everything lies in a segment for a given configuration. */
struct loc_layout {
	uint32_t nbuckets, nslots;
	size_t bucket_off, cbucket_off, slot_off, need;
};

static void
loc_layout_get(const struct loc_config *cfg, struct loc_layout *y)
{
	y->nbuckets = 16;
	y->nslots = (uint32_t)cfg->max_bindings;
	while (y->nbuckets < y->nslots)
		y->nbuckets <<= 1;
	y->bucket_off = LOC_ALIGN(sizeof(struct loc_shm_hdr));
	y->cbucket_off = LOC_ALIGN(y->bucket_off + (size_t)y->nbuckets *
				   sizeof(struct loc_bucket));
	y->slot_off = LOC_ALIGN(y->cbucket_off + (size_t)y->nbuckets *
				sizeof(struct loc_conn_bucket));
	y->need = y->slot_off + (size_t)y->nslots * sizeof(struct loc_slot);
}

/* The start time of process pid (clock ticks since boot, field 22 of
 * /proc/pid/stat): with the pid it names one process, even after the
 * pid is reused.  0 when there is no such process. */
static uint64_t
loc_proc_start(pid_t pid)
{
	char path[64], buf[512], *p;
	unsigned long long start = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	/* after ") ": state is field 3, starttime field 22 */
	for (int f = 3; p && f <= 22; f++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p + 1, "%llu", &start) != 1)
		return 0;
	return start;
}

/* Records this process as the one that formats and loads the segment. */
static void
loc_shm_claim(struct loc_shm_hdr *h)
{
	__atomic_store_n(&h->creator_start, loc_proc_start(loc_self()),
			 __ATOMIC_RELAXED);
	__atomic_store_n(&h->creator_pid, loc_self(), __ATOMIC_RELEASE);
}

/* A process as the listener field names it: its pid and start time. */
static uint64_t
loc_listener_of(pid_t pid)
{
	return (uint64_t)(uint32_t)pid << 32 | (uint32_t)loc_proc_start(pid);
}

int
loc_shm_listen_claim(struct loc_shm *s, int shard)
{
	uint64_t *w = &s->hdr->sync[shard].listener, me;
	uint64_t cur = __atomic_load_n(w, __ATOMIC_ACQUIRE);
	pid_t pid = (pid_t)(cur >> 32);

	if (cur != 0 && pid != loc_self() && !loc_pid_gone(pid) &&
	    loc_listener_of(pid) == cur)
		return 0;	/* alive, and not a reused pid */
	me = loc_listener_of(loc_self());
	return cur == me ||
	       __atomic_compare_exchange_n(w, &cur, me, 0, __ATOMIC_ACQ_REL,
					   __ATOMIC_ACQUIRE);
}

void
loc_shm_listen_release(struct loc_shm *s, int shard)
{
	uint64_t me = loc_listener_of(loc_self());

	__atomic_compare_exchange_n(&s->hdr->sync[shard].listener, &me, 0, 0,
				    __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

/* Whether the process recorded as the segment's creator is gone (0 is
 * nobody yet: not gone). */
static int
loc_shm_creator_gone(const struct loc_shm_hdr *h)
{
	int32_t pid = __atomic_load_n(&h->creator_pid, __ATOMIC_ACQUIRE);
	uint64_t start = __atomic_load_n(&h->creator_start, __ATOMIC_RELAXED);

	return pid > 0 && loc_proc_start(pid) != start;
}

static void
loc_shm_format(struct loc_shm *s, const struct loc_layout *y)
{
	struct loc_shm_hdr *h = s->hdr;
	uint32_t nbuckets = y->nbuckets, nslots = y->nslots;
	size_t bucket_off = y->bucket_off, cbucket_off = y->cbucket_off;
	size_t slot_off = y->slot_off;
	uint64_t id = 0;

	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = (uint64_t)time(NULL) << 20 ^ (uint64_t)loc_self();
	id |= 1;	/* never 0 */
	h->magic = LOC_SHM_MAGIC;
	h->version = LOC_SHM_VERSION;
	h->seg_id = id;
	h->bucket_key = *hash_process_key();	/* getrandom(2)'s */
	h->size = s->size;
	h->slot_size = sizeof(struct loc_slot);
	h->nbuckets = nbuckets;
	h->nslots = nslots;
	h->bucket_off = bucket_off;
	h->cbucket_off = cbucket_off;
	h->slot_off = slot_off;
	/* in step with every shard: nothing written yet */
	for (int i = 0; i < LOC_SHARDS_MAX; i++)
		h->sync[i].unsync_ms = INT64_MAX;
	loc_pthread_init(&h->free_lock);
	s->buckets = (struct loc_bucket *)((char *)h + bucket_off);
	s->cbuckets = (struct loc_conn_bucket *)((char *)h + cbucket_off);
	s->slots = (struct loc_slot *)((char *)h + slot_off);
	for (uint32_t i = 0; i < nbuckets; i++) {
		loc_pthread_init(&s->buckets[i].lock);
		s->buckets[i].head = LOC_NIL;
		loc_pthread_init(&s->cbuckets[i].lock);
		s->cbuckets[i].head = LOC_NIL;
	}
	for (uint32_t i = 0; i < nslots; i++) {
		s->slots[i].next = i + 1 < nslots ? i + 1 : LOC_NIL;
		s->slots[i].cnext = LOC_NIL;
		s->slots[i].kind = LOC_SLOT_FREE;
		s->slots[i].conn_linked = 0;
	}
	h->free_head = 0;
}

/*
 * Takes over a segment whose creator died before it finished: the
 * first waiter to swap the dead creator's pid for its own formats the
 * segment again and loads it (s->created), the others go on waiting
 * for that one.  Returns 1 when this process took it over.
 */
static int
loc_shm_take_over(struct loc_shm *s, const struct loc_layout *y)
{
	int32_t dead = __atomic_load_n(&s->hdr->creator_pid, __ATOMIC_ACQUIRE);

	if (s->size < y->need ||
	    !__atomic_compare_exchange_n(&s->hdr->creator_pid, &dead,
					 loc_self(), 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return 0;
	/* Whatever the dead one wrote goes: the load starts afresh. */
	memset(s->hdr, 0, y->need);
	loc_shm_claim(s->hdr);
	s->size = y->need;
	loc_shm_format(s, y);
	s->created = 1;
	log_notice(LOG_SYS_LOC, "%s: its creator (pid %d) died while loading "
		   "it: formatted again, loading from Redis", s->name, (int)dead);
	return 1;
}

/*
 * Maps an existing segment and waits for its creator's init flag.  A
 * creator that dies while formatting or loading is noticed at once
 * (its pid and start time are in the header) and the segment taken
 * over; a live one is waited for up to init_wait_ms.  A segment whose
 * creator is gone although it finished (an earlier run's, or its
 * creator was restarted) is marked orphan: the caller reconciles it
 * with Redis rather than trust it.
 */
static int
loc_shm_attach(struct loc_shm *s, int fd, const struct loc_layout *y,
	       int init_wait_ms)
{
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	struct stat st;
	int waited = 0;

	for (;;) {
		if (fstat(fd, &st) < 0)
			return -errno;
		if ((size_t)st.st_size >= sizeof(struct loc_shm_hdr))
			break;
		/* The creator sizes the segment right after making it: a
		 * segment still empty after a second has lost its creator
		 * before it recorded itself. */
		if ((waited += 10) > 1000)
			return -ESTALE;
		nanosleep(&tick, NULL);
	}
	s->size = st.st_size;
	s->hdr = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (s->hdr == MAP_FAILED) {
		s->hdr = NULL;
		return -errno;
	}
	waited = 0;
	while (!__atomic_load_n(&s->hdr->init_done, __ATOMIC_ACQUIRE)) {
		if (loc_shm_creator_gone(s->hdr) && loc_shm_take_over(s, y))
			return 0;
		if ((waited += 10) > init_wait_ms)
			return -ETIMEDOUT;
		nanosleep(&tick, NULL);
	}
	if (s->hdr->magic != LOC_SHM_MAGIC ||
	    s->hdr->version != LOC_SHM_VERSION ||
	    s->hdr->slot_size != sizeof(struct loc_slot) ||
	    s->hdr->size > s->size)
		return -EPROTO;
	s->buckets = (struct loc_bucket *)((char *)s->hdr +
					   s->hdr->bucket_off);
	s->cbuckets = (struct loc_conn_bucket *)((char *)s->hdr +
						 s->hdr->cbucket_off);
	s->slots = (struct loc_slot *)((char *)s->hdr + s->hdr->slot_off);
	if (loc_shm_creator_gone(s->hdr)) {
		int32_t pid = __atomic_load_n(&s->hdr->creator_pid,
					      __ATOMIC_ACQUIRE);

		/* One process becomes its keeper, so the next one to start
		 * beside it does not reconcile again. */
		if (__atomic_compare_exchange_n(&s->hdr->creator_pid, &pid,
						loc_self(), 0,
						__ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			loc_shm_claim(s->hdr);
		s->orphan = 1;
	}
	return 0;
}

/* The name still names the segment fd has open (not one made since). */
static int
loc_shm_same(const char *name, int fd)
{
	char path[300];
	struct stat a, b;

	snprintf(path, sizeof(path), "/dev/shm%s", name);
	return fstat(fd, &a) == 0 && stat(path, &b) == 0 &&
	       a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

/*
 * Maps the segment cfg names, creating and formatting it when it does
 * not exist (s->created is then 1, and the caller loads it and calls
 * loc_shm_init_done).  Otherwise waits for the creator to finish, or
 * takes over from a creator that died.
 */
int
loc_shm_open(struct loc_shm *s, const struct loc_config *cfg)
{
	struct loc_layout y;
	int fd, rc, tries = 0;

	memset(s, 0, sizeof(*s));
	pthread_once(&loc_pid_once, loc_pid_init);
	if (snprintf(s->name, sizeof(s->name), "%s", cfg->shm_name) >=
	    (int)sizeof(s->name))
		return -ENAMETOOLONG;
	s->aor_ttl = cfg->aor_ttl;
	loc_layout_get(cfg, &y);
	if (y.need > cfg->shm_size)
		return -ENOSPC;
again:
	fd = shm_open(s->name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 && errno == EEXIST) {
		fd = shm_open(s->name, O_RDWR, 0600);
		if (fd < 0)
			return -errno;
		rc = loc_shm_attach(s, fd, &y, cfg->init_wait_ms > 0 ?
				    cfg->init_wait_ms : LOC_INIT_WAIT_MS);
		if (rc == -ESTALE && tries++ < 3) {
			/* Died between shm_open and sizing it: remove that
			 * one (only if the name still means it) and start
			 * again. */
			if (loc_shm_same(s->name, fd))
				shm_unlink(s->name);
			close(fd);
			goto again;
		}
		goto out;
	}
	if (fd < 0)
		return -errno;
	s->created = 1;
	s->size = y.need;
	/* posix_fallocate, not ftruncate alone: a full /dev/shm must fail
	 * here, not raise SIGBUS in the middle of a REGISTER later. */
	rc = -posix_fallocate(fd, 0, y.need);
	if (rc < 0)
		goto out;
	s->hdr = mmap(NULL, y.need, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (s->hdr == MAP_FAILED) {
		rc = -errno;
		s->hdr = NULL;
		goto out;
	}
	loc_shm_claim(s->hdr);
	loc_shm_format(s, &y);
	log_info(LOG_SYS_LOC, "created %s: %u slots, %u buckets, %zu bytes",
		 s->name, y.nslots, y.nbuckets, y.need);
out:
	close(fd);
	if (rc < 0)
		loc_shm_close(s);
	return rc;
}

/* Publishes the creator's work to the processes waiting in attach. */
void
loc_shm_init_done(struct loc_shm *s)
{
	__atomic_store_n(&s->hdr->init_done, 1, __ATOMIC_RELEASE);
}

/* Unmaps; a creator that never finished removes the segment so later
 * processes do not wait for it.  Accepts a zeroed s. */
void
loc_shm_close(struct loc_shm *s)
{
	int unfinished = s->created &&
		(!s->hdr || !__atomic_load_n(&s->hdr->init_done, __ATOMIC_ACQUIRE));

	if (s->hdr)
		munmap(s->hdr, s->size);
	if (unfinished)
		shm_unlink(s->name);
	s->hdr = NULL;
}

/* Whether aor still has a binding in bk, and the latest expiry. */
static int
loc_aor_latest_locked(struct loc_shm *s, struct loc_bucket *bk,
		      const char *aor, int64_t *latest)
{
	int n = 0;

	*latest = 0;
	for (uint32_t i = bk->head; i != LOC_NIL; i = s->slots[i].next) {
		struct loc_slot *sl = &s->slots[i];

		if (sl->kind != LOC_SLOT_BINDING || strcasecmp(sl->b.aor, aor))
			continue;
		n++;
		if (sl->b.expires > *latest)
			*latest = sl->b.expires;
	}
	return n;
}

/*
 * Ends a change of aor: when no binding is left and the AOR stays
 * known past now, spare (a slot just freed from the chain, or LOC_NIL)
 * becomes its KNOWN marker.  gone is when its last binding went.
 */
static void
loc_aor_finish_locked(struct loc_shm *s, struct loc_bucket *bk,
		      const char *aor, uint32_t spare, int64_t gone,
		      int64_t now, const struct loc_sink *k)
{
	int64_t latest, known_until = gone + s->aor_ttl;

	if (loc_aor_latest_locked(s, bk, aor, &latest) > 0) {
		if (spare != LOC_NIL)
			loc_slot_free(s, spare);
		if (k)
			k->aor_done(k->arg, aor, latest + s->aor_ttl, 0, 0);
		return;
	}
	if (known_until > now && spare != LOC_NIL) {
		struct loc_slot *sl = &s->slots[spare];

		loc_conn_unlink(s, spare);
		memset(&sl->b, 0, sizeof(sl->b));
		strcpy(sl->b.aor, aor);
		sl->known_until = known_until;
		__atomic_store_n(&sl->kind, LOC_SLOT_KNOWN, __ATOMIC_RELEASE);
		sl->next = bk->head;
		__atomic_store_n(&bk->head, spare, __ATOMIC_RELEASE);
	} else {
		if (spare != LOC_NIL)
			loc_slot_free(s, spare);
		known_until = 0;
	}
	if (k)
		k->aor_done(k->arg, aor, 0, known_until, 0);
}

static int
loc_match_contact(const struct loc_binding *b, const void *arg, int64_t now)
{
	(void)now;
	return strcmp(b->contact, arg) == 0;
}

static int
loc_match_all(const struct loc_binding *b, const void *arg, int64_t now)
{
	(void)b, (void)arg, (void)now;
	return 1;
}

static int
loc_match_expired(const struct loc_binding *b, const void *arg, int64_t now)
{
	(void)arg;
	return b->expires <= now;
}

/* Removes aor's bindings that match; returns how many. */
int
loc_aor_remove_locked(struct loc_shm *s, struct loc_bucket *bk,
		      const char *aor_in, loc_match_fn match, const void *arg,
		      int64_t now, const struct loc_sink *k)
{
	char aor[LOC_AOR_MAX];
	uint32_t *link = &bk->head, spare = LOC_NIL;
	int64_t gone = 0;
	int n = 0;

	strcpy(aor, aor_in);	/* aor_in may live in a slot we free */
	while (*link != LOC_NIL) {
		uint32_t i = *link;
		struct loc_slot *sl = &s->slots[i];
		int64_t g;

		if (sl->kind != LOC_SLOT_BINDING || strcasecmp(sl->b.aor, aor) ||
		    !match(&sl->b, arg, now)) {
			link = &sl->next;
			continue;
		}
		loc_slot_take(s, i);
		*link = sl->next;
		loc_conn_unlink(s, i);
		if (k)
			k->del(k->arg, &sl->b);
		g = sl->b.expires < now ? sl->b.expires : now;
		if (g > gone)
			gone = g;
		if (spare == LOC_NIL)
			spare = i;
		else
			loc_slot_free(s, i);
		n++;
	}
	if (n == 0)
		return 0;
	loc_count(s, -n);
	bk->wseq++;
	loc_aor_finish_locked(s, bk, aor, spare, gone, now, k);
	return n;
}

/* Copies b into the top-max array out[0..*n) kept in lookup order:
 * q descending, then the latest expiry, then the contact. */
static int
loc_binding_before(const struct loc_binding *a, const struct loc_binding *b)
{
	if (a->q != b->q)
		return a->q > b->q;
	if (a->expires != b->expires)
		return a->expires > b->expires;
	return strcmp(a->contact, b->contact) < 0;
}

static void
loc_top_insert(struct loc_binding *out, int max, int *n,
	       const struct loc_binding *b)
{
	int pos;

	if (*n < max)
		pos = (*n)++;
	else if (max > 0 && loc_binding_before(b, &out[max - 1]))
		pos = max - 1;
	else
		return;
	while (pos > 0 && loc_binding_before(b, &out[pos - 1])) {
		out[pos] = out[pos - 1];
		pos--;
	}
	out[pos] = *b;
}

int
loc_shm_lookup(struct loc_shm *s, const char *aor, int64_t now,
	       struct loc_binding *out, int max, int *known)
{
	return loc_shm_lookup_seq(s, aor, now, out, max, known, NULL);
}

int
loc_shm_lookup_seq(struct loc_shm *s, const char *aor, int64_t now,
		   struct loc_binding *out, int max, int *known, uint32_t *seq)
{
	struct loc_bucket *bk = loc_bucket_of(s, aor);
	int n = 0, kn = 0, rc;

	rc = loc_lock(s, &bk->lock, bk);
	if (rc < 0)
		return rc;
	if (seq)
		*seq = bk->wseq;
	for (uint32_t i = bk->head; i != LOC_NIL; i = s->slots[i].next) {
		struct loc_slot *sl = &s->slots[i];

		if (strcasecmp(sl->b.aor, aor) != 0)
			continue;
		if (sl->kind == LOC_SLOT_KNOWN) {
			kn |= sl->known_until > now;
			continue;
		}
		if (sl->kind != LOC_SLOT_BINDING)
			continue;	/* cannot be under the lock: belt */
		kn |= sl->b.expires + s->aor_ttl > now;
		if (sl->b.expires > now)
			loc_top_insert(out, max, &n, &sl->b);
	}
	loc_unlock(&bk->lock);
	if (known)
		*known = kn;
	return n;
}

static void loc_shm_reclaim(struct loc_shm *s, int64_t now,
			    const struct loc_sink *k);

/* The slot b goes into in its locked bucket: the first binding b
 * replaces, else the AOR's marker; LOC_NIL when it needs a free one. */
static uint32_t
loc_save_target_locked(struct loc_shm *s, struct loc_bucket *bk,
		       const struct loc_binding *b)
{
	for (uint32_t i = bk->head; i != LOC_NIL; i = s->slots[i].next) {
		struct loc_slot *sl = &s->slots[i];

		if (sl->kind == LOC_SLOT_BINDING ? loc_binding_same(&sl->b, b) :
		    !strcasecmp(sl->b.aor, b->aor))
			return i;
	}
	return LOC_NIL;
}

/*
 * Replaces target, in bk's locked chain, with b.  Copy-on-write: b is
 * written whole into a fresh slot that takes target's place in one
 * store, so a process killed at any instant leaves the old binding or
 * the new one, never a torn one and never neither.  With no free slot
 * the copy is made in place, the slot WRITING meanwhile (a crash then
 * loses only this binding, never serves it torn).
 */
static void
loc_save_over_locked(struct loc_shm *s, struct loc_bucket *bk,
		     const struct loc_binding *b, uint32_t target)
{
	struct loc_slot *old = &s->slots[target], *sl;
	uint32_t fresh = loc_slot_alloc(s), *link;

	if (fresh == LOC_NIL) {
		__atomic_store_n(&old->kind, LOC_SLOT_WRITING,
				 __ATOMIC_RELEASE);
		loc_conn_unlink(s, target);	/* b changes only out of the
						   index */
		old->b = *b;
		__atomic_store_n(&old->kind, LOC_SLOT_BINDING,
				 __ATOMIC_RELEASE);
		loc_conn_link(s, target);
		return;
	}
	sl = &s->slots[fresh];
	sl->b = *b;
	__atomic_store_n(&sl->kind, LOC_SLOT_BINDING, __ATOMIC_RELEASE);
	loc_conn_link(s, fresh);
	for (link = &bk->head; *link != target; link = &s->slots[*link].next)
		;
	sl->next = old->next;
	__atomic_store_n(link, fresh, __ATOMIC_RELEASE);
	loc_slot_free(s, target);
}

/* Writes b into target (from loc_save_target_locked, or a free slot)
 * in its locked bucket; what b replaces goes. */
static void
loc_save_into_locked(struct loc_shm *s, struct loc_bucket *bk,
		     const struct loc_binding *b, uint32_t target,
		     const struct loc_sink *k)
{
	struct loc_slot *sl;
	uint32_t *link;
	int64_t latest;
	int fresh = 1;

	/* Other stored bindings that are the same as b (one matched by
	 * instance, another by contact) and a marker go: b replaces all. */
	link = &bk->head;
	while (*link != LOC_NIL) {
		uint32_t i = *link;

		sl = &s->slots[i];
		if (i == target || strcasecmp(sl->b.aor, b->aor) ||
		    (sl->kind == LOC_SLOT_BINDING && !loc_binding_same(&sl->b, b))) {
			link = &sl->next;
			continue;
		}
		if (sl->kind == LOC_SLOT_BINDING) {
			if (k)
				k->del(k->arg, &sl->b);
			loc_count(s, -1);
		}
		loc_slot_take(s, i);
		*link = sl->next;
		loc_slot_free(s, i);
		fresh = 0;
	}

	sl = &s->slots[target];
	if (sl->kind == LOC_SLOT_TAKEN) {
		/* A new slot joins the chain only once written whole. */
		sl->b = *b;
		__atomic_store_n(&sl->kind, LOC_SLOT_BINDING, __ATOMIC_RELEASE);
		loc_conn_link(s, target);
		sl->next = bk->head;
		__atomic_store_n(&bk->head, target, __ATOMIC_RELEASE);
		loc_count(s, 1);
	} else {
		fresh = 0;
		if (sl->kind == LOC_SLOT_BINDING) {
			if (k && !loc_binding_same_key(&sl->b, b))
				k->del(k->arg, &sl->b);
		} else {
			loc_count(s, 1);	/* the AOR's marker */
		}
		loc_save_over_locked(s, bk, b, target);
	}
	bk->wseq++;
	if (k) {
		k->set(k->arg, b);
		fresh &= loc_aor_latest_locked(s, bk, b->aor, &latest) == 1;
		k->aor_done(k->arg, b->aor, latest + s->aor_ttl, 0, fresh);
	}
}

int
loc_shm_save(struct loc_shm *s, const struct loc_binding *b, int64_t now,
	     const struct loc_sink *k)
{
	struct loc_bucket *bk = loc_bucket_of(s, b->aor);
	uint32_t target;
	int rc;

	for (int attempt = 0;; attempt++) {
		rc = loc_lock(s, &bk->lock, bk);
		if (rc < 0)
			return rc;
		/* Nothing changes until the slot is secured. */
		target = loc_save_target_locked(s, bk, b);
		if (target == LOC_NIL)
			target = loc_slot_alloc(s);
		if (target != LOC_NIL)
			break;
		loc_unlock(&bk->lock);
		if (attempt > 0)
			return -ENOSPC;
		loc_shm_reclaim(s, now, k);
	}
	loc_save_into_locked(s, bk, b, target, k);
	loc_unlock(&bk->lock);
	return 0;
}

/*
 * Applies ch[0..n) to aor at once, under its bucket's lock, if no write
 * touched the bucket since its wseq was seq; -EAGAIN otherwise.  The
 * free slots the saves need are taken first, so either every change
 * happens or none (-ENOSPC, after one reclaim).
 */
int
loc_shm_apply(struct loc_shm *s, const char *aor, uint32_t seq,
	      const struct loc_change *ch, int n, int64_t now,
	      const struct loc_sink *k)
{
	struct loc_bucket *bk = loc_bucket_of(s, aor);
	uint32_t pool = LOC_NIL, i;
	int need, have, rc;

	for (int attempt = 0;; attempt++) {
		rc = loc_lock(s, &bk->lock, bk);
		if (rc < 0)
			return rc;
		if (bk->wseq != seq) {
			loc_unlock(&bk->lock);
			return -EAGAIN;
		}
		need = have = 0;
		for (int j = 0; j < n; j++)
			need += ch[j].op == LOC_CHANGE_SAVE &&
				loc_save_target_locked(s, bk, &ch[j].b) == LOC_NIL;
		while (have < need && (i = loc_slot_alloc(s)) != LOC_NIL) {
			s->slots[i].next = pool;
			pool = i;
			have++;
		}
		if (have == need)
			break;
		while (pool != LOC_NIL) {
			i = pool;
			pool = s->slots[i].next;
			loc_slot_free(s, i);
		}
		loc_unlock(&bk->lock);
		if (attempt > 0)
			return -ENOSPC;
		loc_shm_reclaim(s, now, k);
		/* the reclaim may have changed the bucket: then -EAGAIN */
	}
	for (int j = 0; j < n; j++) {
		const struct loc_change *c = &ch[j];
		uint32_t target;

		switch (c->op) {
		case LOC_CHANGE_SAVE:
			target = loc_save_target_locked(s, bk, &c->b);
			if (target == LOC_NIL) {
				target = pool;
				pool = s->slots[target].next;
			}
			loc_save_into_locked(s, bk, &c->b, target, k);
			break;
		case LOC_CHANGE_REMOVE:
			loc_aor_remove_locked(s, bk, aor, loc_match_contact,
					      c->b.contact, now, k);
			break;
		case LOC_CHANGE_REMOVE_ALL:
			loc_aor_remove_locked(s, bk, aor, loc_match_all, NULL,
					      now, k);
			break;
		}
	}
	/* Two saves of one key in a request need one slot, not two. */
	while (pool != LOC_NIL) {
		i = pool;
		pool = s->slots[i].next;
		loc_slot_free(s, i);
	}
	loc_unlock(&bk->lock);
	return 0;
}

int
loc_shm_remove(struct loc_shm *s, const char *aor, const char *contact,
	       int64_t now, const struct loc_sink *k)
{
	struct loc_bucket *bk = loc_bucket_of(s, aor);
	int rc = loc_lock(s, &bk->lock, bk);

	if (rc < 0)
		return rc;
	rc = loc_aor_remove_locked(s, bk, aor, loc_match_contact, contact,
				   now, k);
	loc_unlock(&bk->lock);
	return rc > 0 ? 0 : -ENOENT;
}

int
loc_shm_remove_aor(struct loc_shm *s, const char *aor, int64_t now,
		   const struct loc_sink *k)
{
	struct loc_bucket *bk = loc_bucket_of(s, aor);
	int rc = loc_lock(s, &bk->lock, bk);

	if (rc < 0)
		return rc;
	rc = loc_aor_remove_locked(s, bk, aor, loc_match_all, NULL, now, k);
	loc_unlock(&bk->lock);
	return rc;
}

/*
 * In one locked bucket, removes the bindings that match, AOR by AOR
 * (each AOR's change ends with its own aor_done), and with drop_known
 * the markers that expired.  Returns how many bindings went.
 */
static int
loc_bucket_sweep_locked(struct loc_shm *s, struct loc_bucket *bk,
			loc_match_fn match, const void *arg, int drop_known,
			int64_t now, const struct loc_sink *k)
{
	uint32_t *link = &bk->head;
	int n = 0;

	while (*link != LOC_NIL) {
		uint32_t i = *link;
		struct loc_slot *sl = &s->slots[i];

		if (sl->kind == LOC_SLOT_KNOWN && drop_known &&
		    sl->known_until <= now) {
			loc_slot_take(s, i);
			*link = sl->next;
			loc_slot_free(s, i);
		} else if (sl->kind == LOC_SLOT_BINDING &&
			   match(&sl->b, arg, now)) {
			n += loc_aor_remove_locked(s, bk, sl->b.aor, match,
						   arg, now, k);
			link = &bk->head;	/* the chain changed */
		} else {
			link = &sl->next;
		}
	}
	return n;
}

/* Removes the bindings that match from every bucket, one lock at a time:
 * O(max_bindings).  Returns how many went. */
int
loc_shm_remove_match(struct loc_shm *s, loc_match_fn match, const void *arg,
		     int64_t now, const struct loc_sink *k)
{
	int n = 0;

	for (uint32_t b = 0; b < s->hdr->nbuckets; b++) {
		struct loc_bucket *bk = &s->buckets[b];

		if (loc_lock(s, &bk->lock, bk) < 0)
			continue;
		n += loc_bucket_sweep_locked(s, bk, match, arg, 0, now, k);
		loc_unlock(&bk->lock);
	}
	return n;
}

/* The distinct AORs of bk's bindings (bk locked).  A bucket holds a
 * few AORs (its key is random): the quadratic scan is short. */
static uint64_t
loc_bucket_aors_locked(const struct loc_shm *s, const struct loc_bucket *bk)
{
	uint64_t n = 0;

	for (uint32_t i = bk->head; i != LOC_NIL; i = s->slots[i].next) {
		uint32_t j;

		if (s->slots[i].kind != LOC_SLOT_BINDING)
			continue;
		for (j = bk->head; j != i; j = s->slots[j].next)
			if (s->slots[j].kind == LOC_SLOT_BINDING &&
			    strcasecmp(s->slots[j].b.aor, s->slots[i].b.aor) == 0)
				break;
		n += j == i;
	}
	return n;
}

/* Adds a slice's count; the process that completes a round of every
 * bucket publishes it. */
static void
loc_shm_count_aors(struct loc_shm_hdr *h, uint64_t aors, uint32_t buckets)
{
	uint32_t swept;

	__atomic_fetch_add(&h->aor_acc, aors, __ATOMIC_RELAXED);
	swept = __atomic_add_fetch(&h->aor_swept, buckets, __ATOMIC_RELAXED);
	if (swept < h->nbuckets)
		return;
	__atomic_store_n(&h->naors, __atomic_exchange_n(&h->aor_acc, 0,
							 __ATOMIC_RELAXED),
			 __ATOMIC_RELAXED);
	__atomic_fetch_sub(&h->aor_swept, h->nbuckets, __ATOMIC_RELAXED);
}

void
loc_shm_expire(struct loc_shm *s, int64_t now, const struct loc_sink *k)
{
	uint32_t nb = s->hdr->nbuckets, slice = nb / 32 > 64 ? nb / 32 : 64;
	uint32_t start;
	uint64_t aors = 0;

	if (slice > nb)
		slice = nb;
	start = __atomic_fetch_add(&s->hdr->expire_cursor, slice,
				   __ATOMIC_RELAXED);
	for (uint32_t j = 0; j < slice; j++) {
		struct loc_bucket *bk = &s->buckets[(start + j) & (nb - 1)];

		if (loc_lock(s, &bk->lock, bk) < 0)
			continue;
		loc_bucket_sweep_locked(s, bk, loc_match_expired, NULL, 1, now,
					k);
		aors += loc_bucket_aors_locked(s, bk);
		loc_unlock(&bk->lock);
	}
	loc_shm_count_aors(s->hdr, aors, slice);
	loc_slot_sweep(s, LOC_SWEEP_SLOTS);
}

/*
 * Frees slots for a save into a full store: every expired binding and
 * marker; if that freed nothing, the marker that expires first (an
 * AOR then answers 404 before its time: better than refusing a
 * REGISTER).  Holds one bucket lock at a time.
 */
static void
loc_shm_reclaim(struct loc_shm *s, int64_t now, const struct loc_sink *k)
{
	uint32_t best_b = LOC_NIL, best_i = LOC_NIL;
	int64_t best = INT64_MAX;
	struct loc_bucket *bk;
	int have;

	for (uint32_t b = 0; b < s->hdr->nbuckets; b++) {
		bk = &s->buckets[b];
		if (loc_lock(s, &bk->lock, bk) < 0)
			continue;
		loc_bucket_sweep_locked(s, bk, loc_match_expired, NULL, 1, now,
					k);
		for (uint32_t i = bk->head; i != LOC_NIL; i = s->slots[i].next)
			if (s->slots[i].kind == LOC_SLOT_KNOWN &&
			    s->slots[i].known_until < best) {
				best = s->slots[i].known_until;
				best_b = b;
				best_i = i;
			}
		loc_unlock(&bk->lock);
	}
	if (loc_lock(s, &s->hdr->free_lock, NULL) < 0)
		return;
	have = s->hdr->free_head != LOC_NIL;
	loc_unlock(&s->hdr->free_lock);
	if (have || best_b == LOC_NIL)
		return;
	bk = &s->buckets[best_b];
	if (loc_lock(s, &bk->lock, bk) < 0)
		return;
	for (uint32_t *link = &bk->head; *link != LOC_NIL;
	     link = &s->slots[*link].next) {
		if (*link == best_i && s->slots[best_i].kind == LOC_SLOT_KNOWN) {
			loc_slot_take(s, best_i);
			*link = s->slots[best_i].next;
			loc_slot_free(s, best_i);
			break;
		}
	}
	loc_unlock(&bk->lock);
}

/*
 * Replaces everything stored for aor with bs[0..n) and, when n is 0
 * and known_until > now, a marker: the view another host wrote to
 * Redis.  Writes nothing back (no sink).  With wseq, refuses with
 * -EAGAIN when a local write happened since *wseq was read.  Returns
 * 0, -EAGAIN or -ENOSPC (then the old bindings are left as they were).
 */
int
loc_shm_replace_aor(struct loc_shm *s, const char *aor,
		    const struct loc_binding *bs, int n, int64_t known_until,
		    int64_t now, const uint32_t *wseq)
{
	struct loc_bucket *bk = loc_bucket_of(s, aor);
	uint32_t *link, pool = LOC_NIL, i;
	int have = 0, need = n, old = 0, rc;

	if (n == 0 && known_until > now)
		need = 1;
	rc = loc_lock(s, &bk->lock, bk);
	if (rc < 0)
		return rc;
	if (wseq && *wseq != bk->wseq) {
		rc = -EAGAIN;
		goto out;
	}
	/* The AOR's own slots are reused; the rest comes from the free
	 * list first, so a full store changes nothing. */
	for (i = bk->head; i != LOC_NIL; i = s->slots[i].next)
		have += !strcasecmp(s->slots[i].b.aor, aor);
	while (have < need && (i = loc_slot_alloc(s)) != LOC_NIL) {
		s->slots[i].next = pool;
		pool = i;
		have++;
	}
	if (have < need) {
		while (pool != LOC_NIL) {
			i = pool;
			pool = s->slots[i].next;
			loc_slot_free(s, i);
		}
		rc = -ENOSPC;
		goto out;
	}
	link = &bk->head;
	while (*link != LOC_NIL) {
		i = *link;
		if (strcasecmp(s->slots[i].b.aor, aor)) {
			link = &s->slots[i].next;
			continue;
		}
		old += s->slots[i].kind == LOC_SLOT_BINDING;
		loc_slot_take(s, i);
		*link = s->slots[i].next;
		s->slots[i].next = pool;
		pool = i;
	}
	/* Each slot joins the chain again only once written whole. */
	for (int j = 0; pool != LOC_NIL; j++) {
		struct loc_slot *sl = &s->slots[pool];

		i = pool;
		pool = sl->next;
		loc_conn_unlink(s, i);
		if (j < n) {
			sl->b = bs[j];
			__atomic_store_n(&sl->kind, LOC_SLOT_BINDING,
					 __ATOMIC_RELEASE);
			loc_conn_link(s, i);
		} else if (j == 0 && known_until > now) {
			memset(&sl->b, 0, sizeof(sl->b));
			strcpy(sl->b.aor, aor);
			sl->known_until = known_until;
			__atomic_store_n(&sl->kind, LOC_SLOT_KNOWN,
					 __ATOMIC_RELEASE);
		} else {
			loc_slot_free(s, i);
			continue;
		}
		sl->next = bk->head;
		__atomic_store_n(&bk->head, i, __ATOMIC_RELEASE);
	}
	loc_count(s, n - old);
out:
	loc_unlock(&bk->lock);
	return rc;
}

void
loc_shm_touch(struct loc_shm *s, const char *aor)
{
	struct loc_bucket *bk = loc_bucket_of(s, aor);

	if (loc_lock(s, &bk->lock, bk) == 0) {
		bk->wseq++;
		loc_unlock(&bk->lock);
	}
}

/* The write sequence of aor's bucket, for loc_shm_replace_aor. */
uint32_t
loc_shm_wseq(struct loc_shm *s, const char *aor)
{
	struct loc_bucket *bk = loc_bucket_of(s, aor);
	uint32_t w = 0;

	if (loc_lock(s, &bk->lock, bk) == 0) {
		w = bk->wseq;
		loc_unlock(&bk->lock);
	}
	return w;
}

int
loc_shm_bucket_aors(struct loc_shm *s, uint32_t i, char (*aors)[LOC_AOR_MAX],
		    int max)
{
	struct loc_bucket *bk = &s->buckets[i];
	int n = 0, seen;

	if (loc_lock(s, &bk->lock, bk) < 0)
		return 0;
	for (uint32_t j = bk->head; j != LOC_NIL && n < max;
	     j = s->slots[j].next) {
		seen = 0;
		for (int k = 0; k < n && !seen; k++)
			seen = strcasecmp(aors[k], s->slots[j].b.aor) == 0;
		if (!seen)
			strcpy(aors[n++], s->slots[j].b.aor);
	}
	loc_unlock(&bk->lock);
	return n;
}
