# auth: digest-authentication accounts (Redis schema and administration).
AUTH_SRCS += auth/auth_acct.c
$(BUILD)/libauth.a: $(call objs,$(AUTH_SRCS))
