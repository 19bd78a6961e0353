/* Leader election on a coordination.k8s.io/v1 Lease, with client-go's
 * algorithm: a candidate takes the lease when it is free or its holder has
 * not renewed it for a lease duration (measured on the local clock from when
 * the candidate last saw the record change, so clock skew between nodes does
 * not matter); the leader renews every retry period and gives up leadership
 * as soon as it has failed to renew for the renew deadline, which is shorter
 * than the lease duration, so it stops acting before anyone else may take
 * over. Releasing on shutdown clears the holder so a successor takes over
 * at its next retry instead of waiting out the lease.
 *
 * Writes use the Lease's resourceVersion, so two candidates can never both
 * win the same round. */
#ifndef KC_LEADER_H
#define KC_LEADER_H

#include <stdbool.h>

#include "kc_http.h"

typedef struct kc_leader kc_leader;

struct kc_leader_opts {
	const char *ns;	      /* namespace of the Lease; required */
	const char *name;     /* name of the Lease; required */
	const char *identity; /* this candidate; required, unique per process */
	int lease_ms;	      /* lease duration [15000], whole seconds on the wire */
	int renew_ms;	      /* renew deadline [10000] */
	int retry_ms;	      /* retry period [2000] */
	/* Called on the election thread; on_stopped also after a release. */
	void (*on_started)(void *data);
	void (*on_stopped)(void *data);
	void *data;
};

/* Validates opts (lease > renew > 1.2 x retry, as client-go requires) and
 * creates a candidate. h must outlive it. */
llm_err kc_leader_new(kc_http *h, const struct kc_leader_opts *opts, kc_leader **out);

/* Starts campaigning on a thread of its own. */
llm_err kc_leader_start(kc_leader *l);

/* True while this candidate holds the lease and has renewed it within the
 * renew deadline. */
bool kc_leader_is_leader(kc_leader *l);

/* Stops campaigning; when leading and release is true, clears the holder
 * of the Lease so a successor takes over at once. */
void kc_leader_stop(kc_leader *l, bool release);

/* Stops (releasing) if needed and frees. NULL is a no-op. */
void kc_leader_destroy(kc_leader *l);

#endif
