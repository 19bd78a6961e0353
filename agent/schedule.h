/* Learning-rate schedules of a FineTuneJob (spec.hyperparameters.schedule
 * and warmupSteps), with the same formulas as transformers'
 * get_{constant,linear,cosine}_schedule_with_warmup: step s (0-based, the
 * number of optimizer steps already taken) warms up linearly as
 * peak * s / warmup while s < warmup, then stays at peak (constant) or
 * decays to 0 at total steps (linear; cosine as 0.5 * (1 + cos(pi * p))
 * with p the fraction of the decay done). The first step of a run with
 * warm-up therefore uses learning rate 0, as the transformers Trainer does. */
#ifndef AGENT_SCHEDULE_H
#define AGENT_SCHEDULE_H

#include <stdint.h>

#include "llm_err.h"

enum sched_kind { SCHED_CONSTANT = 0, SCHED_LINEAR = 1, SCHED_COSINE = 2 };

struct sched {
	enum sched_kind kind;
	double peak;	/* spec.hyperparameters.learningRate */
	int64_t warmup; /* warmupSteps, >= 0 */
	int64_t total;	/* steps the run takes, >= 1 */
};

/* Parses "constant", "linear" or "cosine" (NULL: cosine, the CRD default).
 * LLM_EINVAL with a detail for anything else. */
llm_err sched_parse(const char *name, enum sched_kind *out);

/* The learning rate of the optimizer step taken after step steps (0-based);
 * never negative, 0 from total on for the decaying schedules. */
double sched_lr(const struct sched *s, int64_t step);

#endif
