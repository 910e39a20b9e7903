/*
 * key.c - the master key and HKDF (RFC 5869) through OpenSSL 3's
 * EVP_KDF, so no hand-written HMAC chaining.
 */
#include "lib/key.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* HKDF-SHA256 in the given mode over ikm; salt and info may be NULL. */
static int
key_hkdf(int mode, const unsigned char *ikm, size_t ikm_len,
	 const char *salt, const char *info, unsigned char *out)
{
	OSSL_PARAM p[5], *q = p;
	EVP_KDF_CTX *ctx;
	EVP_KDF *kdf;
	int rc = -EIO;

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (kdf == NULL)
		return -EIO;
	ctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (ctx == NULL)
		return -EIO;
	*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						(char *)"SHA256", 0);
	*q++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
						 (void *)ikm, ikm_len);
	if (salt)
		*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
							 (void *)salt,
							 strlen(salt));
	if (info)
		*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
							 (void *)info,
							 strlen(info));
	*q = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, KEY_LEN, p) == 1)
		rc = 0;
	EVP_KDF_CTX_free(ctx);
	return rc;
}

/* The host's random master: made once with O_EXCL, read by everyone. */
static int
key_file_load(const struct cfg *c, unsigned char *master)
{
	char path[CFG_PATH_LEN + 16];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/cluster.key", c->run_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		unsigned char k[KEY_LEN];

		if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k) ||
		    write(fd, k, sizeof(k)) != (ssize_t)sizeof(k)) {
			close(fd);
			unlink(path);
			return -EIO;
		}
		close(fd);
	} else if (errno != EEXIST) {
		return -errno;
	}
	/* Another process may be writing it right now: retry briefly. */
	for (int i = 0; i < 100; i++) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		n = read(fd, master, KEY_LEN);
		close(fd);
		if (n == KEY_LEN)
			return 0;
		usleep(10000);
	}
	return -EIO;
}

int
key_master_load(const struct cfg *c, unsigned char *master)
{
	if (c->secret[0] == '\0')
		return key_file_load(c, master);
	/* A typed secret is not uniformly random: extract first. */
	return key_hkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY,
			(const unsigned char *)c->secret, strlen(c->secret),
			"sipmesh cluster", NULL, master);
}

int
key_derive(const unsigned char *master, const char *use, unsigned char *out)
{
	return key_hkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, master, KEY_LEN, NULL,
			use, out);
}

int
key_load(const struct cfg *c, const char *use, unsigned char *out)
{
	unsigned char master[KEY_LEN];
	int rc;

	rc = key_master_load(c, master);
	if (rc == 0)
		rc = key_derive(master, use, out);
	OPENSSL_cleanse(master, sizeof(master));
	return rc;
}
