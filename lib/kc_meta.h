/* Object metadata helpers over plain JSON objects, as controller-runtime's
 * meta and controllerutil packages provide them: status conditions
 * (metav1.Condition, keyed by type, with apimachinery's SetStatusCondition
 * rules), finalizers, controller owner references and generations.
 *
 * Nothing here does I/O: callers fetch the object, change it with these
 * helpers, and write it back (kc_update, kc_patch, kc_apply). Every mutator
 * reports through *changed (which may be NULL) whether the object differs
 * afterwards, so a reconciler can skip a write that would change nothing.
 * Returned json_t pointers are borrowed from the object.
 * Design limit: fields are edited in place; a mistyped field (status that is
 * not an object, conditions that are not an array, ...) is LLM_ETYPE, never
 * silently replaced. */
#ifndef KC_META_H
#define KC_META_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "llm_err.h"

/* Room for a kc_meta_now() timestamp, terminator included. */
#define KC_META_TIME_LEN 32

/* Writes the current UTC time as RFC 3339 with second precision
 * ("2026-01-02T03:04:05Z", metav1.Time) into buf. LLM_ETOOLARGE when n is
 * under 21 bytes. */
llm_err kc_meta_now(char *buf, size_t n);

/* --- conditions (status.conditions) --------------------------------------- */

/* Adds or updates the condition of this type under status.conditions
 * (creating status and the list when missing). status is "True", "False" or
 * "Unknown"; reason must match the API's pattern
 * ^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$ (at most 1024 bytes); message may
 * be NULL (""), at most 32768 bytes; type is a qualified name ("Ready",
 * "llmops.dev/Synced"). observed_generation <= 0 leaves the field out.
 * lastTransitionTime is set to now_rfc3339 (NULL: kc_meta_now()) for a new
 * condition or when status flips; a change of reason, message or
 * observedGeneration alone keeps it. *changed (may be NULL) says whether
 * anything changed. LLM_EINVAL for invalid arguments (the object is then
 * untouched), LLM_ETYPE for a mistyped status or conditions field. */
llm_err kc_cond_set(json_t *obj, const char *type, const char *status, const char *reason,
		    const char *message, json_int_t observed_generation, const char *now_rfc3339,
		    bool *changed);

/* The condition of this type (borrowed), or NULL when there is none. */
json_t *kc_cond_get(const json_t *obj, const char *type);

/* True when the condition of this type exists and its status is "True". */
bool kc_cond_is_true(const json_t *obj, const char *type);

/* Removes the condition of this type if present; *changed (may be NULL)
 * says whether it was. The list itself stays, possibly empty. */
llm_err kc_cond_remove(json_t *obj, const char *type, bool *changed);

/* --- finalizers (metadata.finalizers) -------------------------------------- */

/* True when metadata.finalizers holds name. */
bool kc_meta_has_finalizer(const json_t *obj, const char *name);

/* Appends name to metadata.finalizers unless present (idempotent); creates
 * metadata and the list when missing. *changed (may be NULL) says whether
 * it was added. LLM_EINVAL for an empty name. */
llm_err kc_meta_add_finalizer(json_t *obj, const char *name, bool *changed);

/* Removes every occurrence of name from metadata.finalizers (idempotent);
 * the key is dropped when the list becomes empty, as Go's omitempty writes
 * it. *changed (may be NULL) says whether anything was removed. */
llm_err kc_meta_remove_finalizer(json_t *obj, const char *name, bool *changed);

/* --- owner references (metadata.ownerReferences) --------------------------- */

/* Makes owner the controller of child, as controller-runtime's
 * SetControllerReference does: the reference {apiVersion, kind, name, uid,
 * controller: true, blockOwnerDeletion: true} comes from owner's fields (all
 * required: LLM_EINVAL otherwise) and replaces a reference to the same
 * object (same API group, kind and name, so a re-created owner's new uid is
 * taken over) or is appended. LLM_ECONFLICT, child untouched, when child
 * already has a controller that is another object; LLM_EINVAL when owner is
 * namespaced and child is not in owner's namespace (owner references cannot
 * cross namespaces). *changed (may be NULL) says whether child changed. */
llm_err kc_meta_set_controller_ref(json_t *child, const json_t *owner, bool *changed);

/* The ownerReference with controller: true (borrowed), or NULL. */
json_t *kc_meta_controller_of(const json_t *obj);

/* True when child has an ownerReference (controller or not) whose uid is
 * owner's metadata.uid. False when owner has no uid. */
bool kc_meta_is_owned_by(const json_t *child, const json_t *owner);

/* --- generations ---------------------------------------------------------- */

/* metadata.generation, or 0 when missing. */
json_int_t kc_meta_generation(const json_t *obj);

/* status.observedGeneration, or 0 when missing. */
json_int_t kc_meta_observed_generation(const json_t *obj);

/* Sets status.observedGeneration (creating status when missing); *changed
 * (may be NULL) says whether it differed. LLM_ETYPE for a non-object
 * status. */
llm_err kc_meta_set_observed_generation(json_t *obj, json_int_t generation, bool *changed);

#endif
