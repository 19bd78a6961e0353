/* RagIndex: the index version, exposed for unit tests. */
#ifndef OP_RAGINDEX_H
#define OP_RAGINDEX_H

#include "op.h"

extern const struct op_reconciler ragindex_reconciler;

/* The index version a spec builds: 12 hex digits of the SHA-256 of the
 * canonical spec without spec.search (serving settings do not change what
 * is built). */
void rag_version(json_t *spec, char *out, size_t size);

#endif
