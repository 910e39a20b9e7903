# web/ - KwikyKonf, the browser app the edge serves over HTTP(S).
# `make web` builds web/dist/ (npm ci from package-lock.json when
# needed, then esbuild).  Not part of build-all: that needs no network;
# `make run` and `make test-browser` build it themselves.
.PHONY: web
web:
	@sh web/build.sh
