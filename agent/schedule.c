/* Learning-rate schedules (see schedule.h); pure functions of the step, so
 * a resumed run gets the same rates as an uninterrupted one. */
#include "schedule.h"

#include <math.h>
#include <string.h>

llm_err sched_parse(const char *name, enum sched_kind *out)
{
	static const char *const names[] = {"constant", "linear", "cosine"};

	if (!name) {
		*out = SCHED_COSINE;
		return LLM_OK;
	}
	for (int i = 0; i < 3; i++) {
		if (strcmp(name, names[i]) == 0) {
			*out = (enum sched_kind)i;
			return LLM_OK;
		}
	}
	return llm_fail(LLM_EINVAL,
			"spec.hyperparameters.schedule: '%s' is not constant, linear or cosine",
			name);
}

double sched_lr(const struct sched *s, int64_t step)
{
	double progress, decay = s->total - s->warmup;

	if (step < 0)
		step = 0;
	if (step < s->warmup)
		return s->peak * (double)step / (double)s->warmup;
	if (s->kind == SCHED_CONSTANT)
		return s->peak;
	progress = decay > 0 ? (double)(step - s->warmup) / decay : 1.0;
	if (progress > 1.0)
		progress = 1.0;
	if (s->kind == SCHED_LINEAR)
		return s->peak * (1.0 - progress);
	return s->peak * 0.5 * (1.0 + cos(M_PI * progress));
}
