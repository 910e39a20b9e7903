# libFuzzer harnesses, one per parser of untrusted bytes:
# tests/fuzz/fuzz_<parser>.c, seeds in tests/corpus/<parser>/.  They
# link the real component archives built by clang with the fuzzer's
# coverage hooks and ASan + UBSan, under build/fuzz (FUZZ_BUILD), so
# the gcc build is never touched.  `make fuzz` runs each for FUZZ_TIME
# seconds (FUZZ=<parser> picks one) and fails on a crash; run.sh says
# where the input went.
FUZZ_BUILD := build/fuzz
FUZZ_TIME  ?= 60
FUZZ_SAN   := fuzzer-no-link,address,undefined
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(patsubst %.c,$(BUILD)/%,$(FUZZ_SRCS))

$(BUILD)/tests/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(ARCHIVES)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $< $(ARCHIVES) \
		$(LDLIBS) $(EDGE_LIBS)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)

fuzz:
	@$(MAKE) --no-print-directory CC=clang SANITIZE=$(FUZZ_SAN) \
		BUILD=$(FUZZ_BUILD) fuzz-build
	@sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_TIME) $(FUZZ)
