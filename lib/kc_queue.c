/* The controller work queue (see kc_queue.h): client-go's workqueue Type,
 * delaying queue and DefaultControllerRateLimiter, plus a worker pool.
 *
 * Every key the queue knows has one entry in a chained hash table; the entry
 * carries the key's state (dirty = queued or re-added, processing = handed
 * out, heap_idx = waiting for a delay) and is threaded onto the FIFO, the
 * processing list and the delay heap as that state says. In-FIFO is exactly
 * "dirty and not processing", so the FIFO can be an intrusive list. An entry
 * is freed as soon as it is none of dirty, processing and waiting.
 * Design limit: one mutex for everything; delayed keys are moved to the FIFO
 * lazily (on any queue call, or by a getter's timed wait), not by a thread. */
#include "kc_queue.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm_log.h"
#include "llm_time.h"

#define NOT_WAITING	 SIZE_MAX
#define DEFAULT_BASE_MS	 5
#define DEFAULT_MAX_MS	 (1000ull * 1000ull)
#define DEFAULT_QPS	 10.0
#define DEFAULT_BURST	 100
#define MAX_WORKERS	 256
#define HTAB_MIN_BUCKETS 64
#define NS_PER_MS	 1000000ull
#define NS_PER_S	 1000000000ull

/* ---- Clock ---- */

static uint64_t mono_ms(void *data)
{
	(void)data;
	return llm_mono_ns() / NS_PER_MS;
}

/* now + delay, saturating instead of wrapping. */
static uint64_t ns_after(uint64_t now, uint64_t delay_ms)
{
	if (delay_ms > (UINT64_MAX - now) / NS_PER_MS)
		return UINT64_MAX;
	return now + delay_ms * NS_PER_MS;
}

static struct timespec ns_to_timespec(uint64_t ns)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ns / NS_PER_S);
	ts.tv_nsec = (long)(ns % NS_PER_S);
	return ts;
}

/* ---- Keys and a chained hash table of string-keyed nodes ---- */

struct hnode {
	struct hnode *next;
	uint64_t hash;
	const char *key;
};

struct htab {
	struct hnode **b;
	size_t nb; /* power of two */
	size_t n;
};

/* LLM_OK and the length of a usable key, or an error with a detail. */
static llm_err check_key(const char *key, size_t *len)
{
	if (!key || !key[0])
		return llm_fail(LLM_EINVAL, "work queue: empty key");
	*len = strnlen(key, KC_QUEUE_KEY_MAX + 1);
	if (*len > KC_QUEUE_KEY_MAX)
		return llm_fail(LLM_ETOOLARGE, "work queue: key longer than %d bytes",
				KC_QUEUE_KEY_MAX);
	return LLM_OK;
}

/* FNV-1a, 64 bit. */
static uint64_t hash_key(const char *key)
{
	uint64_t h = 14695981039346656037ull;

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ull;
	return h;
}

static llm_err htab_init(struct htab *t)
{
	t->b = calloc(HTAB_MIN_BUCKETS, sizeof(*t->b));
	if (!t->b)
		return llm_fail(LLM_ENOMEM, "work queue: cannot allocate hash table");
	t->nb = HTAB_MIN_BUCKETS;
	t->n = 0;
	return LLM_OK;
}

static struct hnode *htab_find(const struct htab *t, const char *key, uint64_t h)
{
	struct hnode *n;

	for (n = t->b[h & (t->nb - 1)]; n; n = n->next)
		if (n->hash == h && strcmp(n->key, key) == 0)
			return n;
	return NULL;
}

/* Doubles the bucket array; on allocation failure the table just stays
 * denser, so inserting never fails. */
static void htab_grow(struct htab *t)
{
	size_t nb = t->nb * 2, i;
	struct hnode **b = calloc(nb, sizeof(*b));
	struct hnode *n, *next;

	if (!b)
		return;
	for (i = 0; i < t->nb; i++) {
		for (n = t->b[i]; n; n = next) {
			next = n->next;
			n->next = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
		}
	}
	free(t->b);
	t->b = b;
	t->nb = nb;
}

static void htab_insert(struct htab *t, struct hnode *n)
{
	struct hnode **slot;

	if (t->n >= t->nb && t->nb <= SIZE_MAX / 2 / sizeof(*t->b))
		htab_grow(t);
	slot = &t->b[n->hash & (t->nb - 1)];
	n->next = *slot;
	*slot = n;
	t->n++;
}

static void htab_remove(struct htab *t, struct hnode *n)
{
	struct hnode **p = &t->b[n->hash & (t->nb - 1)];

	while (*p && *p != n)
		p = &(*p)->next;
	if (*p) {
		*p = n->next;
		t->n--;
	}
}

/* Frees every node with free() (nodes are allocated in one piece) and the table. */
static void htab_free_all(struct htab *t)
{
	struct hnode *n, *next;
	size_t i;

	for (i = 0; t->b && i < t->nb; i++) {
		for (n = t->b[i]; n; n = next) {
			next = n->next;
			free(n);
		}
	}
	free(t->b);
	t->b = NULL;
}

/* ---- Rate limiter ---- */

struct failure {
	struct hnode h; /* first: freed as one block */
	unsigned count;
	char key[];
};

struct kc_queue_limiter {
	pthread_mutex_t mu;
	struct htab failures;
	uint64_t base_ms, max_ms;
	double qps, burst, tokens;
	uint64_t last_ms; /* clock time tokens was last brought up to date */
	uint64_t (*now_ms)(void *data);
	void *clock_data;
	size_t max_keys;
};

static llm_err limiter_configure(kc_queue_limiter *l, const struct kc_queue_limiter_opts *o)
{
	if (o->qps < 0 || o->burst < 0)
		return llm_fail(LLM_EINVAL,
				"rate limiter: qps %g and burst %d must not be negative", o->qps,
				o->burst);
	l->base_ms = o->base_delay_ms ? o->base_delay_ms : DEFAULT_BASE_MS;
	l->max_ms = o->max_delay_ms ? o->max_delay_ms : DEFAULT_MAX_MS;
	l->qps = o->qps > 0 ? o->qps : DEFAULT_QPS;
	l->burst = o->burst ? o->burst : DEFAULT_BURST;
	l->now_ms = o->now_ms ? o->now_ms : mono_ms;
	l->clock_data = o->clock_data;
	l->max_keys = o->max_keys ? o->max_keys : KC_QUEUE_DEFAULT_MAX_KEYS;
	return LLM_OK;
}

llm_err kc_queue_limiter_new(const struct kc_queue_limiter_opts *opts, kc_queue_limiter **out)
{
	static const struct kc_queue_limiter_opts defaults;
	kc_queue_limiter *l;
	llm_err err;

	*out = NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return llm_fail(LLM_ENOMEM, "rate limiter: out of memory");
	err = limiter_configure(l, opts ? opts : &defaults);
	if (err)
		goto out_free;
	err = htab_init(&l->failures);
	if (err)
		goto out_free;
	pthread_mutex_init(&l->mu, NULL);
	l->tokens = l->burst; /* a new bucket starts full, as in x/time/rate */
	l->last_ms = l->now_ms(l->clock_data);
	*out = l;
	return LLM_OK;
out_free:
	free(l);
	return err;
}

void kc_queue_limiter_destroy(kc_queue_limiter *l)
{
	if (!l)
		return;
	htab_free_all(&l->failures);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

/* base * 2^exp, or max when that is larger (or would overflow). */
static uint64_t backoff_ms(uint64_t base, uint64_t max, unsigned exp)
{
	if (exp >= 64 || base > (max >> exp))
		return max;
	return base << exp;
}

/* Counts a failure of key and returns the backoff it earned. Caller holds mu. */
static llm_err backoff_locked(kc_queue_limiter *l, const char *key, uint64_t *delay_ms)
{
	struct failure *f;
	size_t len;
	uint64_t h;
	llm_err err = check_key(key, &len);

	if (err)
		return err;
	h = hash_key(key);
	f = (struct failure *)htab_find(&l->failures, key, h);
	if (!f) {
		if (l->failures.n >= l->max_keys)
			return llm_fail(LLM_ETOOLARGE, "rate limiter: more than %zu failing keys",
					l->max_keys);
		f = calloc(1, sizeof(*f) + len + 1);
		if (!f)
			return llm_fail(LLM_ENOMEM, "rate limiter: out of memory");
		memcpy(f->key, key, len + 1);
		f->h.key = f->key;
		f->h.hash = h;
		htab_insert(&l->failures, &f->h);
	}
	*delay_ms = backoff_ms(l->base_ms, l->max_ms, f->count);
	if (f->count < UINT_MAX)
		f->count++;
	return LLM_OK;
}

/* x/time/rate Reserve(): refill for the time passed (up to burst), take one
 * token, and return how long until the balance is back to zero. Caller holds mu. */
static uint64_t reserve_locked(kc_queue_limiter *l)
{
	uint64_t now = l->now_ms(l->clock_data), wait;
	double ms;

	if (now > l->last_ms) {
		l->tokens += (double)(now - l->last_ms) * l->qps / 1000.0;
		if (l->tokens > l->burst)
			l->tokens = l->burst;
		l->last_ms = now;
	}
	l->tokens -= 1.0;
	if (l->tokens >= 0)
		return 0;
	ms = -l->tokens * 1000.0 / l->qps;
	if (ms >= 18446744073709549568.0) /* largest double below 2^64 */
		return UINT64_MAX;
	wait = (uint64_t)ms;
	return (double)wait < ms ? wait + 1 : wait;
}

llm_err kc_queue_limiter_backoff(kc_queue_limiter *l, const char *key, uint64_t *delay_ms)
{
	llm_err err;

	pthread_mutex_lock(&l->mu);
	err = backoff_locked(l, key, delay_ms);
	pthread_mutex_unlock(&l->mu);
	return err;
}

uint64_t kc_queue_limiter_reserve(kc_queue_limiter *l)
{
	uint64_t wait;

	pthread_mutex_lock(&l->mu);
	wait = reserve_locked(l);
	pthread_mutex_unlock(&l->mu);
	return wait;
}

llm_err kc_queue_limiter_when(kc_queue_limiter *l, const char *key, uint64_t *delay_ms)
{
	uint64_t backoff, bucket;
	llm_err err;

	pthread_mutex_lock(&l->mu);
	err = backoff_locked(l, key, &backoff);
	if (!err) {
		bucket = reserve_locked(l);
		*delay_ms = backoff > bucket ? backoff : bucket;
	}
	pthread_mutex_unlock(&l->mu);
	return err;
}

void kc_queue_limiter_forget(kc_queue_limiter *l, const char *key)
{
	struct hnode *n;

	if (!key)
		return;
	pthread_mutex_lock(&l->mu);
	n = htab_find(&l->failures, key, hash_key(key));
	if (n) {
		htab_remove(&l->failures, n);
		free(n);
	}
	pthread_mutex_unlock(&l->mu);
}

unsigned kc_queue_limiter_num_requeues(kc_queue_limiter *l, const char *key)
{
	struct failure *f;
	unsigned count = 0;

	if (!key)
		return 0;
	pthread_mutex_lock(&l->mu);
	f = (struct failure *)htab_find(&l->failures, key, hash_key(key));
	if (f)
		count = f->count;
	pthread_mutex_unlock(&l->mu);
	return count;
}

/* ---- Queue state ---- */

struct entry {
	struct hnode h;			     /* first: freed as one block */
	struct entry *fifo_next;	     /* while in the FIFO */
	struct entry *proc_prev, *proc_next; /* while processing, oldest first */
	uint64_t proc_start_ns;
	uint64_t ready_ns, seq; /* while waiting: heap order (seq breaks ties) */
	size_t heap_idx;	/* NOT_WAITING or index in heap */
	bool dirty, processing;
	char key[];
};

struct kc_queue {
	pthread_mutex_t mu;
	pthread_cond_t cond_get;  /* getters: FIFO, heap top or shutdown changed */
	pthread_cond_t cond_idle; /* drainers: the queue may have emptied */
	struct htab keys;
	struct entry *fifo_head, *fifo_tail;
	size_t fifo_len;
	struct entry *proc_head, *proc_tail;
	size_t nprocessing;
	struct entry **heap;
	size_t heap_len, heap_cap;
	uint64_t seq;
	bool shutting_down, draining;
	uint64_t adds_total, retries_total;
	size_t max_keys;
	kc_queue_limiter *limiter;
};

/* Frees e once nothing refers to it. Caller holds mu. */
static void entry_release(kc_queue *q, struct entry *e)
{
	if (e->dirty || e->processing || e->heap_idx != NOT_WAITING)
		return;
	htab_remove(&q->keys, &e->h);
	free(e);
}

/* Finds key's entry or creates an idle one. Caller holds mu. */
static llm_err entry_get(kc_queue *q, const char *key, struct entry **out)
{
	struct entry *e;
	size_t len;
	uint64_t h;
	llm_err err = check_key(key, &len);

	if (err)
		return err;
	h = hash_key(key);
	e = (struct entry *)htab_find(&q->keys, key, h);
	if (e) {
		*out = e;
		return LLM_OK;
	}
	if (q->keys.n >= q->max_keys)
		return llm_fail(LLM_ETOOLARGE, "work queue: more than %zu keys", q->max_keys);
	e = calloc(1, sizeof(*e) + len + 1);
	if (!e)
		return llm_fail(LLM_ENOMEM, "work queue: out of memory");
	memcpy(e->key, key, len + 1);
	e->h.key = e->key;
	e->h.hash = h;
	e->heap_idx = NOT_WAITING;
	htab_insert(&q->keys, &e->h);
	*out = e;
	return LLM_OK;
}

static void fifo_push(kc_queue *q, struct entry *e)
{
	e->fifo_next = NULL;
	if (q->fifo_tail)
		q->fifo_tail->fifo_next = e;
	else
		q->fifo_head = e;
	q->fifo_tail = e;
	q->fifo_len++;
	pthread_cond_signal(&q->cond_get);
}

static struct entry *fifo_pop(kc_queue *q)
{
	struct entry *e = q->fifo_head;

	q->fifo_head = e->fifo_next;
	if (!q->fifo_head)
		q->fifo_tail = NULL;
	q->fifo_len--;
	e->fifo_next = NULL;
	return e;
}

/* client-go Type.Add on an entry: dedup against dirty, hold back while processing. */
static void enqueue_locked(kc_queue *q, struct entry *e)
{
	if (e->dirty)
		return;
	q->adds_total++;
	e->dirty = true;
	if (!e->processing)
		fifo_push(q, e);
}

static void proc_link(kc_queue *q, struct entry *e, uint64_t now)
{
	e->processing = true;
	e->proc_start_ns = now;
	e->proc_next = NULL;
	e->proc_prev = q->proc_tail;
	if (q->proc_tail)
		q->proc_tail->proc_next = e;
	else
		q->proc_head = e;
	q->proc_tail = e;
	q->nprocessing++;
}

static void proc_unlink(kc_queue *q, struct entry *e)
{
	if (e->proc_prev)
		e->proc_prev->proc_next = e->proc_next;
	else
		q->proc_head = e->proc_next;
	if (e->proc_next)
		e->proc_next->proc_prev = e->proc_prev;
	else
		q->proc_tail = e->proc_prev;
	e->proc_prev = e->proc_next = NULL;
	e->processing = false;
	q->nprocessing--;
}

/* ---- Delay heap: min-heap on (ready_ns, seq) ---- */

static bool heap_less(const struct entry *a, const struct entry *b)
{
	return a->ready_ns < b->ready_ns || (a->ready_ns == b->ready_ns && a->seq < b->seq);
}

static void heap_set(kc_queue *q, size_t i, struct entry *e)
{
	q->heap[i] = e;
	e->heap_idx = i;
}

static void heap_up(kc_queue *q, size_t i)
{
	struct entry *e = q->heap[i];

	while (i > 0 && heap_less(e, q->heap[(i - 1) / 2])) {
		heap_set(q, i, q->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(q, i, e);
}

static void heap_down(kc_queue *q, size_t i)
{
	struct entry *e = q->heap[i];
	size_t c;

	while ((c = 2 * i + 1) < q->heap_len) {
		if (c + 1 < q->heap_len && heap_less(q->heap[c + 1], q->heap[c]))
			c++;
		if (!heap_less(q->heap[c], e))
			break;
		heap_set(q, i, q->heap[c]);
		i = c;
	}
	heap_set(q, i, e);
}

static llm_err heap_push(kc_queue *q, struct entry *e)
{
	struct entry **h;
	size_t cap;

	if (q->heap_len == q->heap_cap) {
		cap = q->heap_cap ? q->heap_cap * 2 : 16;
		h = realloc(q->heap, cap * sizeof(*h));
		if (!h)
			return llm_fail(LLM_ENOMEM, "work queue: cannot grow the delay heap");
		q->heap = h;
		q->heap_cap = cap;
	}
	heap_set(q, q->heap_len++, e);
	heap_up(q, q->heap_len - 1);
	return LLM_OK;
}

static struct entry *heap_pop(kc_queue *q)
{
	struct entry *top = q->heap[0];

	q->heap_len--;
	if (q->heap_len > 0) {
		heap_set(q, 0, q->heap[q->heap_len]);
		heap_down(q, 0);
	}
	top->heap_idx = NOT_WAITING;
	return top;
}

/* Moves every delayed key whose time has come to the FIFO, in ready order. */
static void promote_ready(kc_queue *q, uint64_t now)
{
	while (q->heap_len > 0 && q->heap[0]->ready_ns <= now)
		enqueue_locked(q, heap_pop(q));
}

/* Delayed keys whose time has come but that no call has promoted yet. */
static size_t count_ready(const kc_queue *q, size_t i, uint64_t now)
{
	if (i >= q->heap_len || q->heap[i]->ready_ns > now)
		return 0;
	return 1 + count_ready(q, 2 * i + 1, now) + count_ready(q, 2 * i + 2, now);
}

/* Drops every delayed key (client-go stops its waiting loop on shutdown). */
static void heap_clear(kc_queue *q)
{
	struct entry *e;

	while (q->heap_len > 0) {
		e = q->heap[--q->heap_len];
		e->heap_idx = NOT_WAITING;
		entry_release(q, e);
	}
}

/* ---- Queue API ---- */

llm_err kc_queue_new(const struct kc_queue_opts *opts, kc_queue **out)
{
	static const struct kc_queue_opts defaults;
	pthread_condattr_t attr;
	kc_queue *q;
	llm_err err;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	q = calloc(1, sizeof(*q));
	if (!q)
		return llm_fail(LLM_ENOMEM, "work queue: out of memory");
	err = kc_queue_limiter_new(&opts->limiter, &q->limiter);
	if (err)
		goto out_free_queue;
	err = htab_init(&q->keys);
	if (err)
		goto out_free_limiter;
	q->max_keys = opts->max_keys ? opts->max_keys : KC_QUEUE_DEFAULT_MAX_KEYS;
	pthread_mutex_init(&q->mu, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cond_get, &attr);
	pthread_cond_init(&q->cond_idle, &attr);
	pthread_condattr_destroy(&attr);
	*out = q;
	return LLM_OK;
out_free_limiter:
	kc_queue_limiter_destroy(q->limiter);
out_free_queue:
	free(q);
	return err;
}

void kc_queue_destroy(kc_queue *q)
{
	if (!q)
		return;
	htab_free_all(&q->keys);
	free(q->heap);
	kc_queue_limiter_destroy(q->limiter);
	pthread_cond_destroy(&q->cond_get);
	pthread_cond_destroy(&q->cond_idle);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

llm_err kc_queue_add(kc_queue *q, const char *key)
{
	struct entry *e;
	llm_err err = LLM_OK;

	pthread_mutex_lock(&q->mu);
	if (q->shutting_down)
		goto out_unlock;
	promote_ready(q, llm_mono_ns());
	err = entry_get(q, key, &e);
	if (!err)
		enqueue_locked(q, e);
out_unlock:
	pthread_mutex_unlock(&q->mu);
	return err;
}

/* Puts e on the delay heap, or moves it earlier if it waits for a later time. */
static llm_err wait_locked(kc_queue *q, struct entry *e, uint64_t ready)
{
	llm_err err;

	if (e->heap_idx != NOT_WAITING) {
		if (ready < e->ready_ns) {
			e->ready_ns = ready;
			heap_up(q, e->heap_idx);
		}
	} else {
		e->ready_ns = ready;
		e->seq = q->seq++;
		err = heap_push(q, e);
		if (err)
			return err;
	}
	if (q->heap[0] == e) /* a new earliest deadline: getters must re-arm */
		pthread_cond_broadcast(&q->cond_get);
	return LLM_OK;
}

llm_err kc_queue_add_after(kc_queue *q, const char *key, uint64_t delay_ms)
{
	uint64_t now = llm_mono_ns();
	struct entry *e;
	llm_err err = LLM_OK;

	pthread_mutex_lock(&q->mu);
	if (q->shutting_down)
		goto out_unlock;
	promote_ready(q, now);
	err = entry_get(q, key, &e);
	if (err)
		goto out_unlock;
	q->retries_total++;
	if (delay_ms == 0) {
		enqueue_locked(q, e);
		goto out_unlock;
	}
	err = wait_locked(q, e, ns_after(now, delay_ms));
	if (err)
		entry_release(q, e);
out_unlock:
	pthread_mutex_unlock(&q->mu);
	return err;
}

llm_err kc_queue_add_rate_limited(kc_queue *q, const char *key)
{
	uint64_t delay;
	llm_err err;

	if (kc_queue_shutting_down(q))
		return LLM_OK;
	err = kc_queue_limiter_when(q->limiter, key, &delay);
	if (err)
		return err;
	return kc_queue_add_after(q, key, delay);
}

void kc_queue_forget(kc_queue *q, const char *key)
{
	kc_queue_limiter_forget(q->limiter, key);
}

unsigned kc_queue_num_requeues(kc_queue *q, const char *key)
{
	return kc_queue_limiter_num_requeues(q->limiter, key);
}

/* Waits for the FIFO, a delayed key's time, or shutdown. Caller holds mu. */
static void wait_for_work(kc_queue *q)
{
	struct timespec deadline;

	if (q->heap_len == 0) {
		pthread_cond_wait(&q->cond_get, &q->mu);
		return;
	}
	deadline = ns_to_timespec(q->heap[0]->ready_ns);
	pthread_cond_timedwait(&q->cond_get, &q->mu, &deadline);
}

bool kc_queue_get(kc_queue *q, const char **key)
{
	struct entry *e;

	*key = NULL;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		if (q->shutting_down && !q->draining)
			goto out_none;
		promote_ready(q, llm_mono_ns());
		if (q->fifo_head)
			break;
		if (q->shutting_down)
			goto out_none;
		wait_for_work(q);
	}
	e = fifo_pop(q);
	e->dirty = false;
	proc_link(q, e, llm_mono_ns());
	*key = e->key;
	pthread_mutex_unlock(&q->mu);
	return true;
out_none:
	pthread_mutex_unlock(&q->mu);
	return false;
}

/* True when a drain has nothing left to wait for. Caller holds mu. */
static bool idle_locked(const kc_queue *q)
{
	return q->nprocessing == 0 && (q->fifo_len == 0 || !q->draining);
}

void kc_queue_done(kc_queue *q, const char *key)
{
	struct entry *e = NULL;

	pthread_mutex_lock(&q->mu);
	if (key)
		e = (struct entry *)htab_find(&q->keys, key, hash_key(key));
	if (!e || !e->processing) {
		pthread_mutex_unlock(&q->mu);
		llm_warn("workqueue", "done() for key \"%s\" that is not being processed",
			 key ? key : "(null)");
		return;
	}
	proc_unlink(q, e);
	if (e->dirty)
		fifo_push(q, e);
	else
		entry_release(q, e);
	if (q->shutting_down && idle_locked(q))
		pthread_cond_broadcast(&q->cond_idle);
	pthread_mutex_unlock(&q->mu);
}

void kc_queue_shutdown(kc_queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->shutting_down = true;
	q->draining = false;
	heap_clear(q);
	pthread_cond_broadcast(&q->cond_get);
	pthread_cond_broadcast(&q->cond_idle);
	pthread_mutex_unlock(&q->mu);
}

llm_err kc_queue_shutdown_drain(kc_queue *q, uint64_t timeout_ms)
{
	struct timespec deadline = ns_to_timespec(ns_after(llm_mono_ns(), timeout_ms));
	llm_err err = LLM_OK;

	pthread_mutex_lock(&q->mu);
	if (!q->shutting_down)
		q->draining = true; /* after a plain shutdown queued keys stay abandoned */
	q->shutting_down = true;
	heap_clear(q);
	pthread_cond_broadcast(&q->cond_get);
	while (!idle_locked(q)) {
		if (pthread_cond_timedwait(&q->cond_idle, &q->mu, &deadline) == ETIMEDOUT &&
		    !idle_locked(q)) {
			err = llm_fail(LLM_ETIMEDOUT,
				       "work queue: drain timed out after %llu ms with %zu keys "
				       "queued and %zu processing",
				       (unsigned long long)timeout_ms, q->fifo_len, q->nprocessing);
			break;
		}
	}
	pthread_mutex_unlock(&q->mu);
	return err;
}

bool kc_queue_shutting_down(kc_queue *q)
{
	bool down;

	pthread_mutex_lock(&q->mu);
	down = q->shutting_down;
	pthread_mutex_unlock(&q->mu);
	return down;
}

void kc_queue_stats(const kc_queue *q, struct kc_queue_stats *out)
{
	/* The mutex is not part of the queue's logical state; locking it is
	 * fine on a queue that is const only through this pointer. */
	pthread_mutex_t *mu = (pthread_mutex_t *)&q->mu;
	uint64_t now = llm_mono_ns(), age;
	const struct entry *e;
	size_t ready;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(mu);
	ready = count_ready(q, 0, now);
	out->depth = q->fifo_len + ready;
	out->waiting = q->heap_len - ready;
	out->processing = q->nprocessing;
	out->adds_total = q->adds_total;
	out->retries_total = q->retries_total;
	for (e = q->proc_head; e; e = e->proc_next) {
		age = now > e->proc_start_ns ? (now - e->proc_start_ns) / NS_PER_MS : 0;
		if (e == q->proc_head)
			out->longest_running_ms = age;
		out->unfinished_work_ms += age;
	}
	pthread_mutex_unlock(mu);
}

/* ---- Worker pool ---- */

struct kc_workers {
	kc_queue *q;
	kc_process_fn process;
	void *data;
	pthread_t *threads;
	int n;
	pthread_mutex_t mu; /* guards gate */
	pthread_cond_t cond;
	int gate; /* 0: hold, 1: run, -1: exit at once (start-up failed) */
};

/* Applies a process() outcome to key (controller-runtime's reconcileHandler). */
static void apply_outcome(kc_queue *q, const char *key, struct kc_result res)
{
	llm_err err = LLM_OK;

	switch (res.outcome) {
	case KC_DONE:
	case KC_TERMINAL: kc_queue_forget(q, key); break;
	case KC_REQUEUE_AFTER:
		kc_queue_forget(q, key);
		err = kc_queue_add_after(q, key, res.after_ms);
		break;
	case KC_RETRY: err = kc_queue_add_rate_limited(q, key); break;
	default:
		llm_warn("workqueue", "unknown outcome %d for key \"%s\"; retrying",
			 (int)res.outcome, key);
		err = kc_queue_add_rate_limited(q, key);
		break;
	}
	if (err)
		llm_warn("workqueue", "cannot requeue key \"%s\": %s: %s", key, llm_strerror(err),
			 llm_last_error());
}

static bool worker_wait_gate(kc_workers *w)
{
	int gate;

	pthread_mutex_lock(&w->mu);
	while (w->gate == 0)
		pthread_cond_wait(&w->cond, &w->mu);
	gate = w->gate;
	pthread_mutex_unlock(&w->mu);
	return gate > 0;
}

static void *worker_main(void *arg)
{
	kc_workers *w = arg;
	const char *key;

	if (!worker_wait_gate(w))
		return NULL;
	while (kc_queue_get(w->q, &key)) {
		apply_outcome(w->q, key, w->process(key, w->data));
		kc_queue_done(w->q, key);
	}
	return NULL;
}

static void workers_open_gate(kc_workers *w, int gate)
{
	pthread_mutex_lock(&w->mu);
	w->gate = gate;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
}

static void workers_free(kc_workers *w)
{
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->mu);
	free(w->threads);
	free(w);
}

llm_err kc_queue_run_workers(kc_queue *q, int n, kc_process_fn process, void *data,
			     kc_workers **out)
{
	kc_workers *w;
	int i, rc, started;

	*out = NULL;
	if (!q || !process || n < 1 || n > MAX_WORKERS)
		return llm_fail(LLM_EINVAL, "work queue: %d workers (want 1..%d and a callback)", n,
				MAX_WORKERS);
	w = calloc(1, sizeof(*w));
	if (!w || !(w->threads = calloc((size_t)n, sizeof(*w->threads)))) {
		free(w);
		return llm_fail(LLM_ENOMEM, "work queue: out of memory");
	}
	w->q = q;
	w->process = process;
	w->data = data;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cond, NULL);
	for (i = 0; i < n; i++) {
		rc = pthread_create(&w->threads[i], NULL, worker_main, w);
		if (rc)
			goto out_stop;
		w->n++;
	}
	workers_open_gate(w, 1);
	*out = w;
	return LLM_OK;
out_stop:
	started = w->n;
	workers_open_gate(w, -1);
	for (i = 0; i < started; i++)
		pthread_join(w->threads[i], NULL);
	workers_free(w);
	return llm_fail(rc == EAGAIN ? LLM_ENOMEM : LLM_EINTERNAL,
			"work queue: cannot start worker thread %d of %d (error %d)", started + 1,
			n, rc);
}

void kc_workers_join(kc_workers *w)
{
	int i;

	if (!w)
		return;
	for (i = 0; i < w->n; i++)
		pthread_join(w->threads[i], NULL);
	workers_free(w);
}
