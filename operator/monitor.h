/* Monitor reconciler. */
#ifndef OP_MONITOR_H
#define OP_MONITOR_H

#include "op.h"

extern const struct op_reconciler monitor_reconciler;

#endif
