/* ModelEndpoint: the variants served, exposed for unit tests. */
#ifndef OP_MODELENDPOINT_H
#define OP_MODELENDPOINT_H

#include "op.h"

extern const struct op_reconciler modelendpoint_reconciler;

/* spec.variants, or one variant "default" with weight 100 when none is
 * listed (a new array of {name, weight, model?}). */
json_t *mep_variants(json_t *mep);

/* Whether traffic needs the router: several variants or a shadow. */
bool mep_needs_router(json_t *mep);

#endif
