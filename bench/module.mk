# bench/ - C load tools.  Not part of build-all: `make
# build/bench/link_rate` builds the link cost meter (bench/link_rate.c);
# `make bench` builds the response-time probe (bench/latprobe.c).
$(BUILD)/bench/link_rate: $(BUILD)/bench/link_rate.o $(BUILD)/libsm.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/latprobe: $(BUILD)/bench/latprobe.o
	$(CC) $(LDFLAGS) -o $@ $^
