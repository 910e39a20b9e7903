CORE_SRCS += 
BINS += $(BIN)/sipmesh-core
$(BIN)/sipmesh-core: $(call objs,core/core_main.c) $(BUILD)/libcore.a $(BUILD)/libloc.a $(BUILD)/libsm.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
