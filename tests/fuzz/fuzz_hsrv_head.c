/*
 * fuzz_hsrv_head.c - hsrv_head_parse(), the request head of the
 * metrics and control port (anyone who reaches it).  The first byte
 * picks the read size and max_head (16 to 4096, the default); the rest
 * arrives in pieces as hsrv_read_cb reads it, into a buffer of exactly
 * max_head + 1 bytes so ASan sees a read past it.  Read in pieces it
 * must decide as read at once, and a request it takes must name a
 * target inside the head.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hsrv.h"
#include "tests/fuzz/fuzz.h"

/* The decision on data read step bytes at a time, as hsrv_read_cb
 * does: the status, -EAGAIN when the input ended first. */
static int
fuzz_read(const uint8_t *data, size_t size, size_t step, size_t max_head,
	  struct hsrv_req *req, char **head)
{
	size_t len = 0, got, pos = 0;
	int rc = -EAGAIN;

	*head = calloc(1, max_head + 1);
	if (*head == NULL)
		return -ENOMEM;
	while (pos < size && rc == -EAGAIN) {
		got = max_head + 1 - len;
		if (got == 0)
			__builtin_trap();	/* read into no room */
		if (got > step)
			got = step;
		if (got > size - pos)
			got = size - pos;
		memcpy(*head + len, data + pos, got);
		pos += got;
		rc = hsrv_head_parse(*head, len + got, len, max_head, req);
		len += got;
	}
	if (rc == 0 && (req->path <= *head || req->path[-1] != ' ' ||
			req->path + req->path_len > *head + max_head ||
			req->path[0] != '/' ||
			(*req->query &&
			 (req->query < req->path ||
			  req->query + strlen(req->query) >
			  *head + max_head))))
		__builtin_trap();
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t heads[4] = { 16, 64, 512, 4096 };
	struct hsrv_req r1, r2;
	size_t step, max_head;
	char *h1 = NULL, *h2 = NULL;
	int rc1, rc2;

	if (size < 1 || size > 8192)
		return 0;
	step = (size_t)(data[0] & 0x3f) + 1;
	max_head = heads[data[0] >> 6];
	rc1 = fuzz_read(data + 1, size - 1, step, max_head, &r1, &h1);
	rc2 = fuzz_read(data + 1, size - 1, max_head + 1, max_head, &r2, &h2);
	if (rc1 == -ENOMEM || rc2 == -ENOMEM)
		goto done;
	if (rc1 != rc2 ||
	    (rc1 == 0 && (r1.path - h1 != r2.path - h2 ||
			  r1.path_len != r2.path_len ||
			  r1.head_only != r2.head_only ||
			  strcmp(r1.query, r2.query) != 0)))
		__builtin_trap();
done:
	free(h1);
	free(h2);
	return 0;
}
