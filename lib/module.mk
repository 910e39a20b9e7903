LIB_SRCS += lib/rconn.c lib/digest.c lib/infra.c lib/key.c lib/log.c lib/cfg.c lib/env.c lib/hash.c lib/htab.c lib/sip.c lib/sip_alloc.c lib/link.c lib/benc.c lib/sig.c lib/dns.c lib/dns_msg.c
