CORE_SRCS += core/core.c core/core_msg.c core/core_txn.c core/core_proxy.c \
	     core/core_splice.c \
	     core/core_dialog.c core/core_stateless.c core/core_flow.c \
	     core/core_media.c core/core_sign.c \
	     core/core_registrar.c core/core_auth.c core/core_fed.c \
	     core/core_pstn.c core/core_pstn_reg.c core/core_metrics.c
BINS += $(BIN)/sipmesh-core
$(BIN)/sipmesh-core: $(call objs,core/core_main.c) $(BUILD)/libcore.a $(BUILD)/libloc.a $(BUILD)/librtpc.a $(BUILD)/libauth.a $(BUILD)/libsm.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
