# auth: digest-authentication accounts (Redis schema and administration).
AUTH_SRCS += auth/auth_acct.c auth/auth_guest.c auth/auth_store.c
$(BUILD)/libauth.a: $(call objs,$(AUTH_SRCS))
