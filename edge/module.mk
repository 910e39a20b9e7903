EDGE_SRCS += edge/edge_sip.c edge/edge_fwd.c edge/edge_udp.c edge/edge_conn.c \
	     edge/edge_stream.c edge/edge_ws.c edge/edge_guest.c \
	     edge/edge_limit.c edge/edge_hep.c
# WebSocket (libwebsockets, whose libuv glue Debian ships as the plugin
# libwebsockets-evlib-uv) and TLS (OpenSSL): only the edge links them.
EDGE_LIBS := $(shell pkg-config --libs libwebsockets openssl 2>/dev/null)
BINS += $(BIN)/sipmesh-edge
$(BIN)/sipmesh-edge: LDLIBS += $(EDGE_LIBS)
$(BUILD)/tests/unit/edge/%: LDLIBS += $(EDGE_LIBS)
$(BIN)/sipmesh-edge: $(call objs,edge/edge_main.c) $(BUILD)/libedge.a $(BUILD)/libauth.a \
		      $(BUILD)/libsm.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
