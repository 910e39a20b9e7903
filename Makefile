# sipmesh - one non-recursive Makefile; each folder adds its sources in
# <dir>/module.mk.  Objects go under $(BUILD) so a sanitizer build
# (make SANITIZE=address,undefined) never mixes with a plain one.
#
#   make                 build sipmesh-edge, sipmesh-core, sipmesh-rtpctl, sipmesh-ctl
#   make run             install deps, build, start the cluster on loopback
#   make test            install deps, build, run unit + integration + browser tests
#   make test-unit T=test_loc_shm           one unit binary
#   make test-integ T=20-message N='fork'   one integration file (or T=20),
#                                           only the tests named like N
#   make test-browser T=10 N='3-party'      the same for the browser tests
#   make web             build the KwikyKonf bundle (web/dist/)
#   make test-san        the same tests under ASan + UBSan
#   make test-cluster    three Debian 12 hosts in systemd-nspawn, deployed by
#                        ansible over SSH, then SIP through them (root; ~10 min)
#   make fuzz            libFuzzer on every parser, FUZZ_TIME s each
#                        (FUZZ=edge_sip: one), tests/fuzz/
#   make bench           load tests against sipmesh and Kamailio
#   make profile         instructions per message in edge and cores (callgrind)
#   make build/core/core_txn.o   one object

CC      ?= cc
SANITIZE ?=
PKGS    := libosip2 hiredis nanomsg libuv inih libcrypto libcares

ifneq ($(SANITIZE),)
BUILD   ?= build/san
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD   ?= build
SANFLAGS :=
endif

CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wshadow -Werror -D_GNU_SOURCE -I. \
	   $(SANFLAGS) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS += $(SANFLAGS)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lrt

BIN     := $(BUILD)/bin
BINS    :=
UNIT_TESTS :=

# Sources of each component, filled by the module.mk files.
LIB_SRCS :=
LOC_SRCS :=
AUTH_SRCS :=
CORE_SRCS :=
EDGE_SRCS :=

objs = $(patsubst %.c,$(BUILD)/%.o,$(1))

ARCHIVES := $(BUILD)/libcore.a $(BUILD)/libedge.a $(BUILD)/libloc.a $(BUILD)/librtpc.a $(BUILD)/libauth.a $(BUILD)/libsm.a

all: build-all

include lib/module.mk
include location/module.mk
include auth/module.mk
include core/module.mk
include edge/module.mk
include rtpctl/module.mk
include ctl/module.mk
include tests/unit/module.mk
include tests/fuzz/module.mk
include web/module.mk
include bench/module.mk

# One static archive per component: tests link the real objects from it.
$(BUILD)/libsm.a: $(call objs,$(LIB_SRCS))
$(BUILD)/libloc.a: $(call objs,$(LOC_SRCS))
$(BUILD)/libcore.a: $(call objs,$(CORE_SRCS))
$(BUILD)/libedge.a: $(call objs,$(EDGE_SRCS))
$(BUILD)/%.a:
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

build-all: $(BINS)

.PHONY: all build-all deps run test test-unit test-integ test-deploy test-cluster test-browser test-san bench profile clean

deps:
	@sh scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory build-all
	@sh scripts/run.sh

test: deps
	@$(MAKE) --no-print-directory build-all $(UNIT_TESTS)
	@$(MAKE) --no-print-directory test-unit test-integ test-deploy test-browser

# T picks one unit binary (test_loc_shm) or test file (20-message, or
# 20); N a test name pattern (node --test-name-pattern).
UNIT_SEL = $(if $(T),$(filter %/$(T),$(UNIT_TESTS)),$(UNIT_TESTS))
TEST_ARGS = $(if $(N),-n '$(N)') $(T)

test-unit: $(UNIT_SEL)
	@$(if $(UNIT_SEL),,echo "unit: no unit test binary $(T) (tests/unit/*/$(T).c)" >&2; exit 2;) \
	sh tests/unit/run.sh $(UNIT_SEL)

test-integ: $(BINS)
	@SIPMESH_BIN=$(abspath $(BIN)) sh tests/integ/run.sh $(TEST_ARGS)

test-browser: $(BINS)
	@SIPMESH_BIN=$(abspath $(BIN)) sh tests/browser/run.sh $(TEST_ARGS)

test-deploy: $(BINS)
	@SIPMESH_CORE=$(abspath $(BIN))/sipmesh-core sh deploy/check.sh

# Not part of `make test`: the first run builds a Debian root (about 8
# minutes, cached in /var/tmp), every run deploys three hosts twice.
test-cluster: $(BINS)
	@sh scripts/deps.sh --cluster
	@SIPMESH_BIN=$(abspath $(BIN)) sh tests/cluster/run.sh

# Sanitized processes run 2-3x slower: half as many integration files
# at once, so their SIP timers (T1 = 100 ms in the tests) are not
# outrun by a starved machine.
test-san:
	@SIPMESH_INTEG_JOBS=$${SIPMESH_INTEG_JOBS:-2} \
	$(MAKE) --no-print-directory test SANITIZE=address,undefined

bench: deps
	@sh scripts/deps.sh --bench
	@$(MAKE) --no-print-directory build-all $(BUILD)/bench/latprobe
	@SIPMESH_BIN=$(abspath $(BIN)) sh bench/run.sh

# Instructions per message in the edge and the cores, under callgrind.
profile: deps
	@sh scripts/deps.sh --bench
	@$(MAKE) --no-print-directory build-all
	@SIPMESH_BIN=$(abspath $(BIN)) python3 bench/profile.py

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
