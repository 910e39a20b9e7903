/*
 * cfg.h - the one configuration of a sipmesh cluster.
 *
 * Every process reads the same INI file (libinih): cores must know
 * every edge's nanomsg address and edges every core's.  Instances are
 * sections "[edge N]" and "[core N]"; keys in a plain "[edge]" or
 * "[core]" section are defaults for all instances of that kind, and
 * "[cluster] edges = N / cores = N" creates instances 1..N that have
 * no section of their own.
 *
 * Loading is three steps (redis config.c): parse the file into a list
 * of entries, check every entry against the key tables, then apply.
 * Any error names "file:line key" and loading stops.
 */
#ifndef SM_CFG_H
#define SM_CFG_H

#include "lib/env.h"

#include <stddef.h>
#include <stdint.h>

#define CFG_MAX_EDGES   32
#define CFG_MAX_CORES   32
#define CFG_MAX_DOMAINS 32
#define CFG_ADDR_LEN    128
#define CFG_MAX_SHARDS  16	/* Redis masters the bindings spread over */
#define CFG_PATH_LEN    256
#define CFG_PSTN_GW_MAX 8	/* [pstn] gateways */
#define CFG_PSTN_DIDS_MAX 256	/* [pstn] dids */
#define CFG_DID_NUM_MAX 33	/* a DID's number, with its NUL */
#define CFG_DID_USER_MAX 64	/* the user it belongs to, with its NUL */

struct cfg_edge {
	int id;			/* 1..CFG_MAX_EDGES, from the section name */
	/* "ip:port" each transport listens on, by enum env_transport,
	   keyed by its env_transport_key() ("udp", "tcp", ...); empty:
	   that transport is off.  UDP is always on. */
	char listen[ENV_TP_END][CFG_ADDR_LEN];
	char advertise[CFG_ADDR_LEN];	/* "host:port" for Via/Record-Route;
					   empty: the udp address.  Other
					   transports use its host with
					   their own port. */
	char ipc[CFG_PATH_LEN];	/* nanomsg endpoint the edge binds */
	int reuseport;		/* SO_REUSEPORT on the SIP sockets */
	int max_msg;		/* largest SIP message accepted, bytes */
	char tls_cert[CFG_PATH_LEN];	/* PEM chain for TLS and WSS; empty:
					   those two stay off */
	char tls_key[CFG_PATH_LEN];	/* PEM private key */
	char tls_ca[CFG_PATH_LEN];	/* PEM CA bundle that outbound TLS
					   peers' certificates must chain to */
	char http_root[CFG_PATH_LEN];	/* static files on the WS/WSS port;
					   empty or missing: 404 */
	int idle_timeout_s;	/* close a silent stream/WS connection */
	int max_conns_per_ip;	/* inbound connections per source IP */
	int max_conns_per_net;	/* ... per IPv6 /64 (IPv4: per address) */
	int max_conns;		/* inbound connections per edge */
	int handshake_timeout_s;	/* accept to first SIP message (TCP,
					   TLS) or WebSocket upgrade */
	int defer_accept_s;	/* TCP_DEFER_ACCEPT on the stream
				   listeners: a connection is accepted
				   with its first bytes, or about this
				   long after a silent connect; 0: off */
	int msg_idle_timeout_s;	/* no SIP message: closed however many
				   keepalives; 0: max_expires + 60 */
	int req_rate, req_burst;	/* requests per source (IPv4 address,
					   IPv6 /64) per second; 0: off */
	int conn_rate, conn_burst;	/* new connections, the same way */
	int ws_ping_s;		/* WebSocket ping after this much silence */
	char ws_origins[1024];	/* Origins a WebSocket upgrade may carry:
				   "scheme://host[:port]" separated by
				   spaces or commas, "*" any; empty: the
				   request's own Host only.  An upgrade
				   without Origin (not a browser) passes */
	int guest_ttl_s;	/* life of KwikyKonf guest credentials */
	char hep[CFG_ADDR_LEN];	/* HEP v3 collector "ip:port"; empty: no
				   capture */
	int hep_id;		/* HEP capture agent id; 0: the edge id */
	char hep_password[64];	/* HEP auth key chunk; empty: none */
	int drain_s;		/* a drain closes connections over this */
	char metrics[CFG_ADDR_LEN];	/* "ip:port" of its Prometheus
					   metrics (lib/hsrv.h); empty: off */
};

/* One more Redis master of [redis] shards: an address, or a master
 * name at sentinels (user, passwords and timeouts are [redis]'s). */
struct cfg_shard {
	char name[32];			/* hashed with each AOR: renaming a
					   shard moves its AORs */
	char addr[CFG_ADDR_LEN];	/* "host:port"; "" with sentinels */
	char master[128];
	char sentinels[512];
};

struct cfg_core {
	int id;
	char ipc[CFG_PATH_LEN];
	char metrics[CFG_ADDR_LEN];	/* as cfg_edge.metrics */
	int standby;		/* sent to only when no other core takes it */
};

#define CFG_CONTACTS_MOST 16	/* [registrar] max_contacts at most */

struct cfg {
	char path[CFG_PATH_LEN];	/* the file this came from */

	/* [cluster] */
	char run_dir[CFG_PATH_LEN];	/* default home of ipc endpoints */
	char secret[128];		/* keys flow tokens; empty: a random
					   key kept in run_dir/cluster.key
					   (lib/key.h) */
	int n_edges_wanted, n_cores_wanted;
	int link_heartbeat_ms;		/* idle links: a heartbeat; 0: off */
	int link_dead_ms;		/* a peer silent this long is dead */

	/* [log] */
	int log_level;
	char log_levels[256];	/* "sys:level ..." refining log_level */
	char log_format[16];	/* "plain" or "json" */

	/* [redis] */
	char redis[CFG_ADDR_LEN];	/* "host:port"; empty: no Redis */
	char redis_prefix[64];		/* key prefix, so clusters can share */
	char redis_user[64];		/* ACL user; empty: password only */
	char redis_password[256];	/* AUTH on every connection; empty:
					   none */
	int redis_timeout_ms;		/* connect and command timeout */
	int redis_backoff_max_ms;	/* reconnect back-off cap */
	int redis_max_pending;		/* commands in flight per process */
	int redis_dirty_max;		/* unsent AORs remembered */
	char redis_sentinels[512];	/* "host:port,..."; empty: address
					   is the master */
	char redis_master[128];		/* the sentinels' name for it */
	char redis_sentinel_password[256];	/* AUTH to the sentinels */
	char redis_shards_raw[1024];	/* "name=host:port name=master@s:p,..." */
	int n_redis_shards;		/* masters besides [redis]'s ("main") */
	struct cfg_shard redis_shards[CFG_MAX_SHARDS - 1];

	/* [location] */
	char shm_name[64];		/* POSIX shm name, "/sipmesh-loc" */
	int shm_size_mb;
	int max_bindings;		/* slots in the shared store */
	int init_wait_ms;		/* wait for a live process loading it */

	/* [registrar] */
	int min_expires, max_expires, default_expires;
	int max_contacts;	/* <= CFG_CONTACTS_MOST */
	char domains_raw[1024];
	int n_domains;			/* 0: every domain is local */
	char domains[CFG_MAX_DOMAINS][128];
	int auth;			/* digest authentication (core_auth.c);
					   0: open mode, for loopback demos */
	int nonce_lifetime_s;		/* a nonce older than this is stale */
	int guests;			/* accept KwikyKonf guest credentials */
	char auth_algorithms[64];	/* challenge order: "SHA-256 MD5" */
	int auth_cache_max;		/* accounts cached per core */
	int auth_cache_ttl_s;		/* how long a cached account is used */
	int auth_nonces_max;		/* live nonces whose nc each core tracks */

	/* [proxy] */
	int t1_ms, t2_ms, t4_ms;
	int timer_c_s;
	int max_forwards;
	int max_transactions;	/* live server transactions per core;
				   beyond: 503 with Retry-After */
	int record_route;
	int media;		/* anchor SDP on rtpengine via rtpctl */

	/* [federation]: foreign domains located by DNS (lib/dns.h) */
	char dns_servers[512];	/* "ip:port,..."; empty: /etc/resolv.conf */
	int dns_timeout_ms;	/* per DNS try */
	int dns_tries;		/* tries per DNS server */
	int dns_cache_size;	/* DNS answers cached per core */
	int failover_ms;	/* UDP: no response in this, next target */
	int blocklist_s;	/* a dead target stays behind the others */
	char tls_client_cert_domains_raw[1024];
	int n_tls_client_cert_domains;	/* peer domains whose requests
					   must come over TLS with a client
					   certificate proving the From
					   domain (RFC 5922 7.4); lower case */
	char tls_client_cert_domains[CFG_MAX_DOMAINS][128];

	/* [pstn]: numbers sent to SIP trunks (core/core_pstn.c) */
	char pstn_gateways[1024];	/* "sip:host[:port][;transport=x] ..."
					   in the order they are tried;
					   empty: no trunk */
	char pstn_numbers[256];		/* POSIX extended regex a user part
					   must match to be a number */
	int pstn_strip;			/* leading characters cut off */
	char pstn_prefix[32];		/* then put in front: digits, + or * */
	char pstn_username[128];	/* answers a gateway's 401/407 */
	char pstn_password[128];
	char pstn_dids[8192];		/* "<number>=<user>@<domain> ...":
					   the phone numbers of local users */
	int pstn_register;		/* register username at the carrier */
	int pstn_register_expires;	/* asked for, seconds */

	/* [rtpctl] */
	char rtpctl_instances[1024];	/* "ip:port/weight ..." of the
					   rtpengine ng sockets */
	char rtpctl_ipc[1024];		/* nanomsg endpoint of rtpctl 1..N,
					   space separated; empty:
					   ipc://<run_dir>/rtpctl-1 */
	int rtpctl_ping_ms;		/* health-check interval */
	int rtpctl_fail_threshold;	/* consecutive failures: down */
	int rtpctl_ng_timeout_ms;	/* wait before retransmitting */
	int rtpctl_ng_tries;		/* sends of one ng command */
	int rtpctl_call_ttl_s;		/* sticky Call-ID entry lifetime */
	int rtpctl_max_calls;		/* local sticky table size */
	char rtpctl_metrics[1024];	/* "ip:port" of rtpctl 1..N's
					   metrics, space separated; empty
					   (or short): off */

	struct cfg_edge edges[CFG_MAX_EDGES];
	int n_edges;
	struct cfg_core cores[CFG_MAX_CORES];
	int n_cores;
};

/*
 * Fills *c with defaults, then the file's values.  path NULL loads
 * defaults only.  Returns 0, or -EINVAL with a "file:line key: why"
 * message in err.
 */
int cfg_load(struct cfg *c, const char *path, char *err, size_t errlen);

/*
 * The start of every sipmesh process: names its log lines (procname is
 * borrowed), loads path, applies the file's log level or `level` when
 * not NULL, creates run_dir for the ipc endpoints and ignores SIGPIPE
 * (a peer going away must not kill the process).  Returns 0, or
 * -EINVAL after logging why.
 */
int cfg_start(struct cfg *c, const char *procname, const char *path,
	      const char *level);

/* The command line of a sipmesh daemon: -c FILE -i ID [-l LEVEL] [-L]. */
struct cfg_args {
	const char *path;	/* -c FILE, borrowed from argv */
	const char *level;	/* -l LEVEL, or NULL */
	int id;			/* -i ID, at least 1 (0 with a -L that
				   needs none) */
	int list;		/* -L: print something and exit */
};

#define CFG_ARGS_LIST		0x1	/* -L allowed, with -i */
#define CFG_ARGS_LIST_ALL	0x2	/* -L allowed, -i not needed: it
					   lists the whole cluster */

/*
 * Reads argv into *a; flags (CFG_ARGS_*, or 0) say whether -L is
 * allowed.  On -h, or a command line without -c and a positive -i
 * (unless -L needs none) or with anything else, prints usage
 * (borrowed; the levels follow it) on stderr and exits, with status 0
 * or 2: nothing is running yet that would need a cleanup.
 */
void cfg_args_parse(struct cfg_args *a, int argc, char **argv,
		    const char *usage, unsigned flags);

/* Returns the instance with that id, or NULL. */
const struct cfg_edge *cfg_edge_find(const struct cfg *c, int id);
const struct cfg_core *cfg_core_find(const struct cfg *c, int id);

/*
 * The "host:port" an edge writes in Via and Record-Route for a
 * transport (enum env_transport): the advertised host with that
 * transport's port.  Returns 0, or -ENOENT when the edge does not
 * listen on that transport.
 */
int cfg_edge_sent_by(const struct cfg_edge *e, int transport, char *out,
		     size_t cap);

/*
 * Splits the address edge e listens on for transport into host and
 * *port (the transport's default port when it names none).  Returns
 * 0, -ENOENT when e does not listen on that transport, -EINVAL when
 * the address is not "host[:port]".
 */
int cfg_edge_listen(const struct cfg_edge *e, int transport, char *host,
		    size_t hostlen, int *port);

/*
 * The metrics address of rtpctl process id (1..N): the id-th of
 * [rtpctl] metrics, into out.  Returns 0, or -ENOENT when the list is
 * shorter (metrics off for that process).
 */
int cfg_rtpctl_metrics(const struct cfg *c, int id, char *out, size_t cap);

/* Whether the domain (case-insensitive) is served here. */
int cfg_domain_is_local(const struct cfg *c, const char *host, size_t len);

/* A phone number of a local user ([pstn] dids). */
struct cfg_did {
	int index;			/* its place in the list, from 0 */
	char number[CFG_DID_NUM_MAX];	/* digits, '+' and '*' */
	char user[CFG_DID_USER_MAX];
	char domain[CFG_ADDR_LEN];	/* a local domain, lower case */
};

/*
 * Reads [pstn] dids into out[0..max): each "<number>=<user>@<domain>"
 * with a number of 1-32 digits, '+' or '*', a user of letters, digits
 * and "._-+", a local domain, and no number twice.  Returns how many;
 * -EINVAL with the entry at fault in err, or more than max.
 */
int cfg_pstn_dids(const struct cfg *c, struct cfg_did *out, int max,
		  char *err, size_t errlen);

/*
 * Whether requests from the domain (case-insensitive) must prove it
 * with a TLS client certificate ([federation] tls_client_cert_domains).
 */
int cfg_domain_needs_client_cert(const struct cfg *c, const char *host,
				 size_t len);

/*
 * Splits "host:port", "[v6]:port" or "host" (port = defport) into
 * host (NUL-terminated, no brackets) and *port.  Returns 0 or -EINVAL.
 */
int cfg_addr_split(const char *addr, char *host, size_t hostlen,
		   int *port, int defport);

/* sun_path's size: a unix socket path must be shorter. */
#define CFG_UNIX_PATH_MAX 108

/*
 * A Redis address: "host[:port]" as cfg_addr_split with 6379, or the
 * absolute path of Redis's unix socket (host = the path, *port = 0):
 * the cheaper way to a Redis on the same host, as loopback TCP costs
 * both sides the whole IP stack per write.  Returns 0 or -EINVAL.
 */
int cfg_redis_split(const char *addr, char *host, size_t hostlen,
		    int *port);

#endif
