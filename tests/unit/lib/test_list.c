/*
 * test_list.c - the intrusive list against a trivial model (an array
 * kept in list order), over a random run of inserts at both ends and
 * after a node, removals (twice, the second a no-op) and walks in both
 * directions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/list.h"

#define NODES 64

struct item {
	int id;
	struct list_node link;
};

static void
check(const struct list_node *head, const int *model, int n)
{
	const struct list_node *x;
	int i = 0;

	assert_int_equal(list_empty(head), n == 0);
	for (x = list_first(head); x; x = list_next(head, x))
		assert_int_equal(list_entry(x, struct item, link)->id,
				 model[i++]);
	assert_int_equal(i, n);
	for (x = list_last(head); x; x = list_prev(head, x))
		assert_int_equal(list_entry(x, struct item, link)->id,
				 model[--i]);
	assert_int_equal(i, 0);
}

static int
model_find(const int *model, int n, int id)
{
	for (int i = 0; i < n; i++)
		if (model[i] == id)
			return i;
	return -1;
}

static void
test_list__matches_model(void **state)
{
	struct item items[NODES];
	struct list_node head;
	int model[NODES], n = 0;

	(void)state;
	memset(items, 0, sizeof(items));
	list_init(&head);
	srandom(3);
	for (int i = 0; i < NODES; i++)
		items[i].id = i;
	for (int step = 0; step < 20000; step++) {
		int k = (int)(random() % NODES), at = model_find(model, n, k);
		int op = (int)(random() % 4);

		if (at >= 0 || op == 3) {
			list_remove(&items[k].link);
			list_remove(&items[k].link);
			if (at >= 0) {
				memmove(&model[at], &model[at + 1],
					(size_t)(n - at - 1) * sizeof(*model));
				n--;
			}
			assert_false(list_linked(&items[k].link));
		} else if (op == 0) {
			list_insert_head(&head, &items[k].link);
			memmove(&model[1], &model[0], (size_t)n * sizeof(*model));
			model[0] = k;
			n++;
		} else if (op == 1 || n == 0) {
			list_insert_tail(&head, &items[k].link);
			model[n++] = k;
		} else {
			int p = (int)(random() % n);

			list_insert_after(&items[model[p]].link, &items[k].link);
			memmove(&model[p + 2], &model[p + 1],
				(size_t)(n - p - 1) * sizeof(*model));
			model[p + 1] = k;
			n++;
		}
		check(&head, model, n);
	}
}

static void
test_list__for_each_safe_removes(void **state)
{
	struct item items[8];
	struct list_node head, *x, *tmp;
	int seen = 0;

	(void)state;
	memset(items, 0, sizeof(items));
	list_init(&head);
	for (int i = 0; i < 8; i++) {
		items[i].id = i;
		list_insert_tail(&head, &items[i].link);
	}
	list_for_each_safe(&head, x, tmp) {
		assert_int_equal(list_entry(x, struct item, link)->id, seen++);
		list_remove(x);
	}
	assert_int_equal(seen, 8);
	assert_true(list_empty(&head));
	assert_null(list_first(&head));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list__matches_model),
		cmocka_unit_test(test_list__for_each_safe_removes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
