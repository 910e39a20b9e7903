# sipmesh-ctl: the operator's command-line tool (accounts).
BINS += $(BIN)/sipmesh-ctl
$(BIN)/sipmesh-ctl: $(call objs,ctl/ctl_main.c) $(BUILD)/libauth.a $(BUILD)/libsm.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
