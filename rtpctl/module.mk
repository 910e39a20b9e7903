# rtpctl: the client library cores link (build/librtpc.a: only
# rtpc_client.o is pulled into a core; the rest is the process, kept in
# the archive so unit tests link the real objects), the sipmesh-rtpctl
# process, and rtpc-probe, the test driver of tests/integ/40-media-rtpctl.
RTPC_SRCS += rtpctl/rtpc_client.c rtpctl/rtpc_pool.c rtpctl/rtpc_ng.c \
	     rtpctl/rtpc_calls.c rtpctl/rtpc_srv.c rtpctl/rtpc_redis.c \
	     rtpctl/rtpc_metrics.c
$(BUILD)/librtpc.a: $(call objs,$(RTPC_SRCS))
BINS += $(BIN)/sipmesh-rtpctl $(BIN)/rtpc-probe
$(BIN)/sipmesh-rtpctl: $(call objs,rtpctl/rtpc_main.c) $(BUILD)/librtpc.a $(BUILD)/libsm.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BIN)/rtpc-probe: $(call objs,rtpctl/rtpc_probe.c) $(BUILD)/librtpc.a $(BUILD)/libsm.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
