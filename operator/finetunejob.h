/* FineTuneJob: the desired children, exposed for unit tests. */
#ifndef OP_FINETUNEJOB_H
#define OP_FINETUNEJOB_H

#include "op.h"

#define FTJ_RENDEZVOUS_PORT 29500

extern const struct op_reconciler finetunejob_reconciler;

/* The headless Service that gives workers stable DNS names. */
json_t *ftj_service(json_t *ftj);

/* The Pod of worker rank in gang attempt `attempt`. */
json_t *ftj_worker_pod(struct op_ctx *c, json_t *ftj, long attempt, long rank);

#endif
