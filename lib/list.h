/*
 * list.h - an intrusive doubly linked list (nginx ngx_queue.h, Linux
 * list.h): the node is embedded in the object, so linking costs no
 * allocation and unlinking is O(1) from the node alone.
 *
 * The head is a sentinel node; a list is circular through it, so no
 * operation tests for the ends.  A node whose next is NULL (as calloc
 * leaves it, and as list_remove leaves it) is on no list: list_remove
 * of such a node does nothing, so "unlink if linked" needs no flag.
 * Everything here is inline and O(1).
 */
#ifndef SM_LIST_H
#define SM_LIST_H

#include <stddef.h>

struct list_node {
	struct list_node *prev, *next;
};

/* The object holding node n, which is its member `member`. */
#define list_entry(n, type, member) \
	((type *)(void *)((char *)(n) - offsetof(type, member)))

static inline void
list_init(struct list_node *head)
{
	head->prev = head->next = head;
}

static inline int
list_empty(const struct list_node *head)
{
	return head->next == head;
}

static inline int
list_linked(const struct list_node *n)
{
	return n->next != NULL;
}

/* Links n after pos (pos may be the head: n becomes first). */
static inline void
list_insert_after(struct list_node *pos, struct list_node *n)
{
	n->prev = pos;
	n->next = pos->next;
	pos->next->prev = n;
	pos->next = n;
}

static inline void
list_insert_head(struct list_node *head, struct list_node *n)
{
	list_insert_after(head, n);
}

static inline void
list_insert_tail(struct list_node *head, struct list_node *n)
{
	list_insert_after(head->prev, n);
}

/* Unlinks n; nothing when n is on no list. */
static inline void
list_remove(struct list_node *n)
{
	if (n->next == NULL)
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = NULL;
}

/* First and last node, or NULL when the list is empty. */
static inline struct list_node *
list_first(const struct list_node *head)
{
	return head->next == head ? NULL : head->next;
}

static inline struct list_node *
list_last(const struct list_node *head)
{
	return head->prev == head ? NULL : head->prev;
}

/* The node after (before) n, or NULL at the end. */
static inline struct list_node *
list_next(const struct list_node *head, const struct list_node *n)
{
	return n->next == head ? NULL : n->next;
}

static inline struct list_node *
list_prev(const struct list_node *head, const struct list_node *n)
{
	return n->prev == head ? NULL : n->prev;
}

/* Walks the list; the body may remove (and free) the current node. */
#define list_for_each_safe(head, n, tmp) \
	for ((n) = (head)->next, (tmp) = (n)->next; (n) != (head); \
	     (n) = (tmp), (tmp) = (n)->next)

#endif
