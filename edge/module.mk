EDGE_SRCS += 
BINS += $(BIN)/sipmesh-edge
$(BIN)/sipmesh-edge: $(call objs,edge/edge_main.c) $(BUILD)/libedge.a $(BUILD)/libsm.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
