/* Lease-based leader election (see kc_leader.h). One thread per candidate
 * alternates between trying to acquire and, once leading, renewing every
 * retry period. */
#include "kc_leader.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kc_client.h"
#include "llm_json.h"
#include "llm_log.h"
#include "llm_time.h"

struct kc_leader {
	kc_http *h;
	struct kc_leader_opts o;
	char *ns, *name, *id;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool started, stopping, release, leading;
	uint64_t last_renew_ms; /* last successful acquire or renew */
	char observed[512];	/* holder and renewTime last seen */
	uint64_t observed_ms;	/* when they were first seen */
	unsigned int seed;
};

static json_t *new_lease(kc_leader *l)
{
	char now[64];

	llm_micro_time(now, sizeof(now));
	return json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:i, s:s, s:s, s:i}}", "apiVersion",
			 "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name", l->name,
			 "namespace", l->ns, "spec", "holderIdentity", l->id,
			 "leaseDurationSeconds", (l->o.lease_ms + 999) / 1000, "acquireTime", now,
			 "renewTime", now, "leaseTransitions", 0);
}

/* Notes when the holder or renewTime last changed, on the local clock. */
static void observe(kc_leader *l, json_t *lease)
{
	char rec[512];

	snprintf(rec, sizeof(rec), "%s|%s", llm_json_str_or(lease, "spec.holderIdentity", ""),
		 llm_json_str_or(lease, "spec.renewTime", ""));
	if (strcmp(rec, l->observed) != 0) {
		snprintf(l->observed, sizeof(l->observed), "%s", rec);
		l->observed_ms = llm_mono_ms();
	}
}

/* Takes over or renews lease with an update conditioned on its version. */
static bool take(kc_leader *l, json_t *lease, const char *holder)
{
	json_t *spec = json_object_get(lease, "spec"), *out = NULL;
	json_int_t transitions = 0;
	char now[64];
	bool ok;

	llm_micro_time(now, sizeof(now));
	llm_json_get_int(lease, "spec.leaseTransitions", &transitions);
	if (strcmp(holder, l->id) != 0) {
		json_object_set_new(spec, "acquireTime", json_string(now));
		json_object_set_new(spec, "leaseTransitions", json_integer(transitions + 1));
	}
	json_object_set_new(spec, "holderIdentity", json_string(l->id));
	json_object_set_new(spec, "leaseDurationSeconds",
			    json_integer((l->o.lease_ms + 999) / 1000));
	json_object_set_new(spec, "renewTime", json_string(now));
	ok = kc_update(l->h, &KC_LEASES, l->ns, lease, KC_MAIN, &out) == LLM_OK;
	if (ok)
		observe(l, out);
	json_decref(out);
	return ok;
}

/* One round: true when this candidate holds the lease afterwards. */
static bool try_acquire_or_renew(kc_leader *l)
{
	json_t *lease = NULL, *created = NULL;
	const char *holder;
	llm_err rc = kc_get(l->h, &KC_LEASES, l->ns, l->name, KC_MAIN, &lease);
	bool ok = false;

	if (rc == LLM_ENOTFOUND) {
		json_t *fresh = new_lease(l);

		ok = kc_create(l->h, &KC_LEASES, l->ns, fresh, &created) == LLM_OK;
		if (ok)
			observe(l, created);
		json_decref(fresh);
		goto out;
	}
	if (rc)
		goto out;
	observe(l, lease);
	holder = llm_json_str_or(lease, "spec.holderIdentity", "");
	if (holder[0] && strcmp(holder, l->id) != 0 &&
	    llm_mono_ms() < l->observed_ms + (uint64_t)l->o.lease_ms)
		goto out; /* held by another, and not expired */
	ok = take(l, lease, holder);
out:
	if (!ok && rc != LLM_OK && rc != LLM_ENOTFOUND)
		llm_debug("leader", "lease %s/%s: %s", l->ns, l->name, llm_last_error());
	json_decref(lease);
	json_decref(created);
	return ok;
}

/* Clears the holder of a lease this candidate holds. */
static void release_lease(kc_leader *l)
{
	json_t *lease = NULL, *out = NULL, *spec;
	char now[64];

	if (kc_get(l->h, &KC_LEASES, l->ns, l->name, KC_MAIN, &lease) != LLM_OK ||
	    strcmp(llm_json_str_or(lease, "spec.holderIdentity", ""), l->id) != 0)
		goto out;
	llm_micro_time(now, sizeof(now));
	spec = json_object_get(lease, "spec");
	json_object_set_new(spec, "holderIdentity", json_string(""));
	json_object_set_new(spec, "leaseDurationSeconds", json_integer(1));
	json_object_set_new(spec, "renewTime", json_string(now));
	if (kc_update(l->h, &KC_LEASES, l->ns, lease, KC_MAIN, &out) == LLM_OK)
		llm_info("leader", "released lease %s/%s", l->ns, l->name);
	else
		llm_warn("leader", "could not release lease %s/%s: %s", l->ns, l->name,
			 llm_last_error());
out:
	json_decref(lease);
	json_decref(out);
}

/* Waits ms unless stopping; returns false when stopping. */
static bool wait_ms(kc_leader *l, uint64_t ms)
{
	return !llm_cond_wait_stop(&l->cond, &l->mu, &l->stopping, ms);
}

static void set_leading(kc_leader *l, bool leading)
{
	pthread_mutex_lock(&l->mu);
	l->leading = leading;
	if (leading)
		l->last_renew_ms = llm_mono_ms();
	pthread_mutex_unlock(&l->mu);
	llm_info("leader", "%s %s lease %s/%s", l->id, leading ? "acquired" : "lost", l->ns,
		 l->name);
	if (leading && l->o.on_started)
		l->o.on_started(l->o.data);
	if (!leading && l->o.on_stopped)
		l->o.on_stopped(l->o.data);
}

/* Renews until stopping or until renewals fail for the renew deadline. */
static void lead(kc_leader *l)
{
	while (wait_ms(l, (uint64_t)l->o.retry_ms)) {
		if (try_acquire_or_renew(l)) {
			pthread_mutex_lock(&l->mu);
			l->last_renew_ms = llm_mono_ms();
			pthread_mutex_unlock(&l->mu);
		} else if (!kc_leader_is_leader(l)) {
			set_leading(l, false);
			return;
		}
	}
}

static bool is_stopping(kc_leader *l)
{
	bool s;

	pthread_mutex_lock(&l->mu);
	s = l->stopping;
	pthread_mutex_unlock(&l->mu);
	return s;
}

static void *run(void *arg)
{
	kc_leader *l = arg;
	/* client-go jitters the retry period by up to 1.2x. */
	uint64_t jitter;

	while (!is_stopping(l)) {
		if (try_acquire_or_renew(l)) {
			set_leading(l, true);
			lead(l);
			continue;
		}
		jitter = (uint64_t)(rand_r(&l->seed) % (unsigned)(l->o.retry_ms / 5 + 1));
		if (!wait_ms(l, (uint64_t)l->o.retry_ms + jitter))
			break;
	}
	if (l->leading) {
		if (l->release)
			release_lease(l);
		set_leading(l, false);
	}
	return NULL;
}

llm_err kc_leader_new(kc_http *h, const struct kc_leader_opts *opts, kc_leader **out)
{
	struct kc_leader_opts o = *opts;
	kc_leader *l;

	*out = NULL;
	o.lease_ms = o.lease_ms ? o.lease_ms : 15000;
	o.renew_ms = o.renew_ms ? o.renew_ms : 10000;
	o.retry_ms = o.retry_ms ? o.retry_ms : 2000;
	if (!o.ns || !o.ns[0] || !o.name || !o.name[0] || !o.identity || !o.identity[0])
		return llm_fail(LLM_EINVAL,
				"leader election needs a lease namespace, name and identity");
	if (!(o.lease_ms > o.renew_ms && o.renew_ms * 10 > o.retry_ms * 12 && o.retry_ms > 0))
		return llm_fail(LLM_EINVAL,
				"leader election: need lease duration (%d ms) > renew deadline "
				"(%d ms) > 1.2 x retry period (%d ms)",
				o.lease_ms, o.renew_ms, o.retry_ms);
	l = calloc(1, sizeof(*l));
	if (!l)
		return llm_fail(LLM_ENOMEM, "leader election: out of memory");
	l->h = h;
	l->o = o;
	l->ns = strdup(o.ns);
	l->name = strdup(o.name);
	l->id = strdup(o.identity);
	l->seed = (unsigned int)llm_mono_ms();
	pthread_mutex_init(&l->mu, NULL);
	llm_cond_init_monotonic(&l->cond);
	if (!l->ns || !l->name || !l->id) {
		kc_leader_destroy(l);
		return llm_fail(LLM_ENOMEM, "leader election: out of memory");
	}
	*out = l;
	return LLM_OK;
}

llm_err kc_leader_start(kc_leader *l)
{
	if (l->started)
		return llm_fail(LLM_EINVAL, "leader election already started");
	if (pthread_create(&l->thread, NULL, run, l) != 0)
		return llm_fail(LLM_ENOMEM, "leader election: cannot start thread");
	l->started = true;
	return LLM_OK;
}

bool kc_leader_is_leader(kc_leader *l)
{
	bool leading;

	pthread_mutex_lock(&l->mu);
	leading = l->leading && llm_mono_ms() - l->last_renew_ms <= (uint64_t)l->o.renew_ms;
	pthread_mutex_unlock(&l->mu);
	return leading;
}

void kc_leader_stop(kc_leader *l, bool release)
{
	pthread_mutex_lock(&l->mu);
	if (!l->started || l->stopping) {
		pthread_mutex_unlock(&l->mu);
		return;
	}
	l->stopping = true;
	l->release = release;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->thread, NULL);
}

void kc_leader_destroy(kc_leader *l)
{
	if (!l)
		return;
	kc_leader_stop(l, true);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->mu);
	free(l->ns);
	free(l->name);
	free(l->id);
	free(l);
}
