/*
 * fuzz_cfg.c - cfg_load(), the configuration file every process reads
 * (libinih, then the key tables).  An operator writes it, so this is
 * about robustness: any bytes must give 0 or an error message, never
 * a crash.  The input is the file, read through a memfd.
 */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/cfg.h"
#define FUZZ_SETUP fuzz_setup
#include "tests/fuzz/fuzz.h"

static int fuzz_fd = -1;
static char fuzz_path[64];

static void
fuzz_setup(void)
{
	fuzz_fd = memfd_create("fuzz-cfg", 0);
	if (fuzz_fd < 0)
		__builtin_trap();
	snprintf(fuzz_path, sizeof(fuzz_path), "/proc/self/fd/%d", fuzz_fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cfg c;
	char err[256];

	if (ftruncate(fuzz_fd, 0) != 0 ||
	    pwrite(fuzz_fd, data, size, 0) != (ssize_t)size)
		return 0;
	if (cfg_load(&c, fuzz_path, err, sizeof(err)) == 0) {
		char out[CFG_ADDR_LEN], host[CFG_ADDR_LEN];
		int port;

		for (int i = 0; i < c.n_edges; i++) {
			cfg_edge_sent_by(&c.edges[i], ENV_TCP, out, sizeof(out));
			cfg_edge_listen(&c.edges[i], ENV_WS, host,
					sizeof(host), &port);
		}
		cfg_domain_is_local(&c, "example.com", 11);
	}
	return 0;
}
