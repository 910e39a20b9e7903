# One cmocka binary per tests/unit/<dir>/test_<file>.c, linked against
# the real component archives.
UNIT_SRCS  := $(wildcard tests/unit/*/test_*.c)
UNIT_TESTS += $(patsubst %.c,$(BUILD)/%,$(UNIT_SRCS))

$(BUILD)/tests/unit/%: tests/unit/%.c $(ARCHIVES)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(ARCHIVES) $(LDLIBS) -lcmocka
