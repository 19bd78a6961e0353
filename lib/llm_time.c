/* Clocks and deadlines (see llm_time.h). */
#include "llm_time.h"

#include <stdio.h>

uint64_t llm_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t llm_mono_ms(void)
{
	return llm_mono_ns() / 1000000u;
}

struct timespec llm_deadline_ms(uint64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

void llm_cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
}

bool llm_cond_wait_stop(pthread_cond_t *c, pthread_mutex_t *mu, const bool *stop, uint64_t ms)
{
	struct timespec until = llm_deadline_ms(ms);
	bool stopped;

	pthread_mutex_lock(mu);
	while (!*stop && pthread_cond_timedwait(c, mu, &until) == 0)
		;
	stopped = *stop;
	pthread_mutex_unlock(mu);
	return stopped;
}

void llm_micro_time(char *out, size_t size)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, size - n, ".%06ldZ", ts.tv_nsec / 1000);
}
