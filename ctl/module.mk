# sipmesh-ctl: the operator's command-line tool (accounts, bindings,
# the rtpengine pool, checking a configuration).
BINS += $(BIN)/sipmesh-ctl
$(BIN)/sipmesh-ctl: $(call objs,ctl/ctl_main.c ctl/ctl_rtp.c ctl/ctl_aor.c \
				     ctl/ctl_proc.c) \
		    $(BUILD)/libauth.a $(BUILD)/librtpc.a $(BUILD)/libloc.a \
		    $(BUILD)/libsm.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
