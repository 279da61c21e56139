/* queue.c - the bounded FIFO of node/ (queue.h). */
#include "queue.h"

#include "lora.h"
#include "thread.h"

/* One wait on c until deadline_ms: 0 when woken (or spuriously), else
 * LORA_ETIMEOUT. The caller re-checks its condition either way. */
static int wait_until(struct nqueue *q, pthread_cond_t *c, uint64_t deadline_ms)
{
	if (deadline_ms == NQ_NOW)
		return LORA_ETIMEOUT;
	q->waiting++;
	int rc = node_cond_wait_until(c, &q->mu, deadline_ms);
	q->waiting--;
	return rc;
}

int nq_init(struct nqueue *q, size_t cap)
{
	LORA_ASSERT(cap > 0);
	*q = (struct nqueue){.cap = cap};
	if (pthread_mutex_init(&q->mu, NULL) != 0)
		return LORA_EINTERNAL;
	if (node_cond_init(&q->items) != 0) {
		pthread_mutex_destroy(&q->mu);
		return LORA_EINTERNAL;
	}
	if (node_cond_init(&q->room) != 0) {
		pthread_cond_destroy(&q->items);
		pthread_mutex_destroy(&q->mu);
		return LORA_EINTERNAL;
	}
	return 0;
}

void nq_destroy(struct nqueue *q)
{
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->items);
	pthread_cond_destroy(&q->room);
}

static void append(struct nqueue *q, struct nq_link *it)
{
	it->next = NULL;
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->len++;
}

int nq_push(struct nqueue *q, struct nq_link *it, uint64_t deadline_ms)
{
	int rc = 0;
	pthread_mutex_lock(&q->mu);
	while (!q->closed && q->len + q->busy >= q->cap && rc == 0)
		rc = wait_until(q, &q->room, deadline_ms);
	if (q->closed) {
		rc = LORA_ECLOSED;
	} else if (q->len + q->busy < q->cap) {
		rc = 0;
		append(q, it);
		pthread_cond_signal(&q->items);
	} else {
		rc = LORA_ELIMIT;
	}
	pthread_mutex_unlock(&q->mu);
	return rc;
}

int nq_push_lazy(struct nqueue *q, struct nq_link *it)
{
	int rc = 0;
	pthread_mutex_lock(&q->mu);
	if (q->closed)
		rc = LORA_ECLOSED;
	else if (q->len + q->busy >= q->cap)
		rc = LORA_ELIMIT;
	else
		append(q, it);
	pthread_mutex_unlock(&q->mu);
	return rc;
}

void nq_push_front(struct nqueue *q, struct nq_link *first, size_t cnt)
{
	if (cnt == 0)
		return;
	struct nq_link *last = first;
	for (size_t i = 1; i < cnt; i++)
		last = last->next;
	LORA_ASSERT(last != NULL && last->next == NULL);
	pthread_mutex_lock(&q->mu);
	last->next = q->head;
	q->head = first;
	if (q->tail == NULL)
		q->tail = last;
	q->len += cnt;
	pthread_cond_signal(&q->items);
	pthread_mutex_unlock(&q->mu);
}

/* nq_take; busy: count the items as busy until nq_done. */
static struct nq_link *take(struct nqueue *q, size_t max, uint64_t deadline_ms,
                            size_t *cnt, int busy)
{
	*cnt = 0;
	if (max == 0)
		return NULL;
	pthread_mutex_lock(&q->mu);
	while (q->head == NULL && !q->closed && !q->kicked &&
	       wait_until(q, &q->items, deadline_ms) == 0)
		;
	q->kicked = 0;
	struct nq_link *first = q->head, *last = NULL;
	for (struct nq_link *it = q->head; it && *cnt < max; it = it->next) {
		last = it;
		(*cnt)++;
	}
	if (last) {
		q->head = last->next;
		if (q->head == NULL)
			q->tail = NULL;
		last->next = NULL;
		q->len -= *cnt;
		if (busy)
			q->busy += *cnt;
		else
			pthread_cond_broadcast(&q->room);
	}
	pthread_mutex_unlock(&q->mu);
	return last == NULL ? NULL : first;
}

struct nq_link *nq_take(struct nqueue *q, size_t max, uint64_t deadline_ms,
                        size_t *cnt)
{
	return take(q, max, deadline_ms, cnt, 1);
}

struct nq_link *nq_take_done(struct nqueue *q, size_t max, uint64_t deadline_ms,
                             size_t *cnt)
{
	return take(q, max, deadline_ms, cnt, 0);
}

void nq_done(struct nqueue *q, size_t cnt)
{
	if (cnt == 0)
		return;
	pthread_mutex_lock(&q->mu);
	LORA_ASSERT(q->busy >= cnt);
	q->busy -= cnt;
	pthread_cond_broadcast(&q->room);
	pthread_mutex_unlock(&q->mu);
}

struct nq_link *nq_remove_if(struct nqueue *q,
                             int (*keep)(struct nq_link *, void *), void *arg,
                             size_t *cnt)
{
	struct nq_link *out = NULL, **out_tail = &out;
	*cnt = 0;
	pthread_mutex_lock(&q->mu);
	q->tail = NULL;
	for (struct nq_link **pp = &q->head; *pp;) {
		struct nq_link *it = *pp;
		if (keep(it, arg)) {
			q->tail = it;
			pp = &it->next;
			continue;
		}
		*pp = it->next;
		it->next = NULL;
		*out_tail = it;
		out_tail = &it->next;
		q->len--;
		(*cnt)++;
	}
	if (*cnt)
		pthread_cond_broadcast(&q->room);
	pthread_mutex_unlock(&q->mu);
	return out;
}

int nq_drain(struct nqueue *q, uint64_t deadline_ms)
{
	int rc = 0;
	pthread_mutex_lock(&q->mu);
	while ((q->len || q->busy) && !q->closed && rc == 0)
		rc = wait_until(q, &q->room, deadline_ms);
	if (q->len == 0 && q->busy == 0)
		rc = 0;
	else if (q->closed)
		rc = LORA_ECLOSED;
	pthread_mutex_unlock(&q->mu);
	return rc;
}

void nq_close(struct nqueue *q)
{
	pthread_mutex_lock(&q->mu);
	q->closed = 1;
	pthread_cond_broadcast(&q->items);
	pthread_cond_broadcast(&q->room);
	pthread_mutex_unlock(&q->mu);
}

void nq_kick(struct nqueue *q)
{
	pthread_mutex_lock(&q->mu);
	q->kicked = 1;
	pthread_cond_broadcast(&q->items);
	pthread_mutex_unlock(&q->mu);
}

size_t nq_len(struct nqueue *q)
{
	pthread_mutex_lock(&q->mu);
	size_t len = q->len + q->busy;
	pthread_mutex_unlock(&q->mu);
	return len;
}

size_t nq_waiting(struct nqueue *q)
{
	pthread_mutex_lock(&q->mu);
	size_t w = q->waiting;
	pthread_mutex_unlock(&q->mu);
	return w;
}
