EDGE_SRCS += edge/edge_sip.c edge/edge_fwd.c edge/edge_udp.c
BINS += $(BIN)/sipmesh-edge
$(BIN)/sipmesh-edge: $(call objs,edge/edge_main.c) $(BUILD)/libedge.a $(BUILD)/libsm.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
