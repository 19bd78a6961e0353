/* Clocks, deadlines and timestamps shared by the threaded modules. Waits and
 * intervals use CLOCK_MONOTONIC, so wall-clock steps never shorten or
 * stretch a timeout; timestamps written into API objects use UTC. */
#ifndef LLM_TIME_H
#define LLM_TIME_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Monotonic time in nanoseconds and milliseconds. */
uint64_t llm_mono_ns(void);
uint64_t llm_mono_ms(void);

/* The CLOCK_MONOTONIC time ms from now, for pthread_cond_timedwait on a
 * condition made by llm_cond_init_monotonic(). */
struct timespec llm_deadline_ms(uint64_t ms);

/* Initialises c to measure timed waits on CLOCK_MONOTONIC. */
void llm_cond_init_monotonic(pthread_cond_t *c);

/* Locks mu and waits on c until *stop is true or ms have passed; returns
 * *stop. c must be monotonic and signalled (under mu) when *stop is set. */
bool llm_cond_wait_stop(pthread_cond_t *c, pthread_mutex_t *mu, const bool *stop, uint64_t ms);

/* Now as metav1.MicroTime: RFC 3339 in UTC with microseconds
 * ("2026-11-27T21:42:02.123456Z"); size of at least 32. */
void llm_micro_time(char *out, size_t size);

#endif
