/* Object metadata helpers (see kc_meta.h): conditions, finalizers, owner
 * references and generations, edited in place on jansson objects.
 *
 * Validation follows the API server's rules for metav1.Condition (type is a
 * qualified name, reason matches the CamelCase pattern, bounded lengths), so
 * a bad value fails here, with a detail, instead of as a 422 on the status
 * write. Design limit: lists are scanned linearly; objects carry a handful
 * of conditions, finalizers and owner references. */
#include "kc_meta.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

#define MAX_TYPE_LEN	 316
#define MAX_NAME_PART	 63
#define MAX_PREFIX_LEN	 253
#define MAX_REASON_LEN	 1024
#define MAX_MESSAGE_LEN	 32768
#define RFC3339_SECS_LEN 20

llm_err kc_meta_now(char *buf, size_t n)
{
	time_t t = time(NULL);
	struct tm tm;

	if (!buf || n < RFC3339_SECS_LEN + 1)
		return llm_fail(LLM_ETOOLARGE, "kc_meta_now: buffer of %zu bytes is too small", n);
	gmtime_r(&t, &tm);
	strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return LLM_OK;
}

/* --- shared helpers --------------------------------------------------------- */

/* The object under key in parent, created empty when missing (create). */
static llm_err member_obj(json_t *parent, const char *key, bool create, json_t **out)
{
	json_t *v = json_object_get(parent, key);

	*out = NULL;
	if (!json_is_object(parent))
		return llm_fail(LLM_EINVAL, "kc_meta: not a JSON object");
	if (!v && create) {
		v = json_object();
		if (!v || json_object_set_new(parent, key, v))
			return llm_fail(LLM_ENOMEM, "kc_meta: out of memory");
	}
	if (v && !json_is_object(v))
		return llm_fail(LLM_ETYPE, "kc_meta: %s is not an object", key);
	*out = v;
	return LLM_OK;
}

/* The array under key in parent, created empty when missing (create). */
static llm_err member_arr(json_t *parent, const char *key, bool create, json_t **out)
{
	json_t *v = json_object_get(parent, key);

	*out = NULL;
	if (!v && create) {
		v = json_array();
		if (!v || json_object_set_new(parent, key, v))
			return llm_fail(LLM_ENOMEM, "kc_meta: out of memory");
	}
	if (v && !json_is_array(v))
		return llm_fail(LLM_ETYPE, "kc_meta: %s is not an array", key);
	*out = v;
	return LLM_OK;
}

/* The array at outer.inner (status.conditions, metadata.finalizers), or NULL
 * when either step is missing and create is false. */
static llm_err nested_arr(json_t *obj, const char *outer, const char *inner, bool create,
			  json_t **out)
{
	json_t *parent;
	llm_err rc = member_obj(obj, outer, create, &parent);

	*out = NULL;
	if (rc || !parent)
		return rc;
	return member_arr(parent, inner, create, out);
}

/* The string at key of o, or "" when missing or not a string. */
static const char *str_of(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* Sets o[key] to the string s unless it already holds it; notes a change. */
static llm_err set_str(json_t *o, const char *key, const char *s, bool *changed)
{
	const json_t *old = json_object_get(o, key);

	if (json_is_string(old) && strcmp(json_string_value(old), s) == 0)
		return LLM_OK;
	if (json_object_set_new(o, key, json_string(s)))
		return llm_fail(LLM_ENOMEM, "kc_meta: cannot set %s", key);
	*changed = true;
	return LLM_OK;
}

/* Sets o[key] to the integer v unless it already holds it; notes a change. */
static llm_err set_int(json_t *o, const char *key, json_int_t v, bool *changed)
{
	const json_t *old = json_object_get(o, key);

	if (json_is_integer(old) && json_integer_value(old) == v)
		return LLM_OK;
	if (json_object_set_new(o, key, json_integer(v)))
		return llm_fail(LLM_ENOMEM, "kc_meta: cannot set %s", key);
	*changed = true;
	return LLM_OK;
}

/* --- conditions -------------------------------------------------------------- */

/* [A-Za-z0-9] at both ends, [-A-Za-z0-9_.] inside, 1..63 bytes. */
static bool valid_name_part(const char *s, size_t n)
{
	if (n == 0 || n > MAX_NAME_PART || !isalnum((unsigned char)s[0]) ||
	    !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
}

/* A DNS subdomain: lower-case alphanumerics, '-' and '.', alphanumeric ends. */
static bool valid_prefix(const char *s, size_t n)
{
	if (n == 0 || n > MAX_PREFIX_LEN || !isalnum((unsigned char)s[0]) ||
	    !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (isupper((unsigned char)s[i]) ||
		    (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.'))
			return false;
	return true;
}

/* A Kubernetes qualified name: [prefix/]name, at most 316 bytes in all. */
static bool valid_type(const char *type)
{
	const char *slash;
	size_t n;

	if (!type || (n = strlen(type)) == 0 || n > MAX_TYPE_LEN)
		return false;
	slash = strchr(type, '/');
	if (!slash)
		return valid_name_part(type, n);
	return valid_prefix(type, (size_t)(slash - type)) &&
	       valid_name_part(slash + 1, strlen(slash + 1));
}

/* ^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$, 1..1024 bytes. */
static bool valid_reason(const char *r)
{
	size_t n;

	if (!r || (n = strlen(r)) == 0 || n > MAX_REASON_LEN || !isalpha((unsigned char)r[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)r[i]) && !strchr("_,:", r[i]))
			return false;
	return isalnum((unsigned char)r[n - 1]) || r[n - 1] == '_';
}

static bool valid_status(const char *s)
{
	return s && (!strcmp(s, "True") || !strcmp(s, "False") || !strcmp(s, "Unknown"));
}

static llm_err check_condition(const char *type, const char *status, const char *reason,
			       const char *message)
{
	if (!valid_type(type))
		return llm_fail(LLM_EINVAL, "condition type \"%s\" is not a qualified name",
				type ? type : "");
	if (!valid_status(status))
		return llm_fail(LLM_EINVAL,
				"condition %s: status \"%s\" is not True, False or Unknown", type,
				status ? status : "");
	if (!valid_reason(reason))
		return llm_fail(LLM_EINVAL,
				"condition %s: reason \"%s\" does not match "
				"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
				type, reason ? reason : "");
	if (message && strlen(message) > MAX_MESSAGE_LEN)
		return llm_fail(LLM_EINVAL, "condition %s: message is over %d bytes", type,
				MAX_MESSAGE_LEN);
	return LLM_OK;
}

/* The condition of this type in list and its index, or NULL. */
static json_t *find_cond(const json_t *list, const char *type, size_t *at)
{
	size_t i;
	json_t *c;

	json_array_foreach(list, i, c)
	{
		if (strcmp(str_of(c, "type"), type) == 0) {
			if (at)
				*at = i;
			return c;
		}
	}
	return NULL;
}

static llm_err append_cond(json_t *list, const char *type, const char *status, const char *reason,
			   const char *message, json_int_t gen, const char *now)
{
	json_t *c = json_pack("{s:s, s:s}", "type", type, "status", status);

	if (c && gen > 0)
		json_object_set_new(c, "observedGeneration", json_integer(gen));
	if (c && (json_object_set_new(c, "lastTransitionTime", json_string(now)) ||
		  json_object_set_new(c, "reason", json_string(reason)) ||
		  json_object_set_new(c, "message", json_string(message)))) {
		json_decref(c);
		c = NULL;
	}
	if (!c || json_array_append_new(list, c))
		return llm_fail(LLM_ENOMEM, "condition %s: out of memory", type);
	return LLM_OK;
}

/* Updates c in place; lastTransitionTime moves only when status flips. */
static llm_err update_cond(json_t *c, const char *status, const char *reason, const char *message,
			   json_int_t gen, const char *now, bool *changed)
{
	bool flipped = false;
	llm_err rc = set_str(c, "status", status, &flipped);

	if (!rc && (flipped || !json_is_string(json_object_get(c, "lastTransitionTime"))))
		rc = set_str(c, "lastTransitionTime", now, changed);
	if (!rc)
		rc = set_str(c, "reason", reason, changed);
	if (!rc)
		rc = set_str(c, "message", message, changed);
	if (!rc && gen > 0)
		rc = set_int(c, "observedGeneration", gen, changed);
	if (!rc && gen <= 0 && json_object_del(c, "observedGeneration") == 0)
		*changed = true;
	*changed = *changed || flipped;
	return rc;
}

llm_err kc_cond_set(json_t *obj, const char *type, const char *status, const char *reason,
		    const char *message, json_int_t observed_generation, const char *now_rfc3339,
		    bool *changed)
{
	char now[KC_META_TIME_LEN];
	bool ignored = false;
	json_t *list, *c;
	llm_err rc;

	changed = changed ? changed : &ignored;
	*changed = false;
	message = message ? message : "";
	rc = check_condition(type, status, reason, message);
	if (rc)
		return rc;
	if (!now_rfc3339) {
		kc_meta_now(now, sizeof(now));
		now_rfc3339 = now;
	}
	rc = nested_arr(obj, "status", "conditions", true, &list);
	if (rc)
		return rc;
	c = find_cond(list, type, NULL);
	if (c)
		return update_cond(c, status, reason, message, observed_generation, now_rfc3339,
				   changed);
	rc = append_cond(list, type, status, reason, message, observed_generation, now_rfc3339);
	*changed = rc == LLM_OK;
	return rc;
}

json_t *kc_cond_get(const json_t *obj, const char *type)
{
	const json_t *list = json_object_get(json_object_get(obj, "status"), "conditions");

	if (!type || !json_is_array(list))
		return NULL;
	return find_cond(list, type, NULL);
}

bool kc_cond_is_true(const json_t *obj, const char *type)
{
	return strcmp(str_of(kc_cond_get(obj, type), "status"), "True") == 0;
}

llm_err kc_cond_remove(json_t *obj, const char *type, bool *changed)
{
	bool ignored = false;
	json_t *list;
	size_t at;
	llm_err rc = nested_arr(obj, "status", "conditions", false, &list);

	changed = changed ? changed : &ignored;
	*changed = false;
	if (rc || !list || !type || !find_cond(list, type, &at))
		return rc;
	json_array_remove(list, at);
	*changed = true;
	return LLM_OK;
}

/* --- finalizers ------------------------------------------------------------ */

bool kc_meta_has_finalizer(const json_t *obj, const char *name)
{
	const json_t *list = json_object_get(json_object_get(obj, "metadata"), "finalizers");
	size_t i;
	json_t *f;

	if (!name || !json_is_array(list))
		return false;
	json_array_foreach(list, i, f)
	{
		if (json_is_string(f) && strcmp(json_string_value(f), name) == 0)
			return true;
	}
	return false;
}

llm_err kc_meta_add_finalizer(json_t *obj, const char *name, bool *changed)
{
	bool ignored = false;
	json_t *list;
	llm_err rc;

	changed = changed ? changed : &ignored;
	*changed = false;
	if (!name || !name[0])
		return llm_fail(LLM_EINVAL, "finalizer name is empty");
	if (kc_meta_has_finalizer(obj, name))
		return LLM_OK;
	rc = nested_arr(obj, "metadata", "finalizers", true, &list);
	if (rc)
		return rc;
	if (json_array_append_new(list, json_string(name)))
		return llm_fail(LLM_ENOMEM, "finalizer %s: out of memory", name);
	*changed = true;
	return LLM_OK;
}

llm_err kc_meta_remove_finalizer(json_t *obj, const char *name, bool *changed)
{
	bool ignored = false;
	json_t *list;
	llm_err rc = nested_arr(obj, "metadata", "finalizers", false, &list);

	changed = changed ? changed : &ignored;
	*changed = false;
	if (rc || !list || !name)
		return rc;
	for (size_t i = json_array_size(list); i-- > 0;) {
		const json_t *f = json_array_get(list, i);

		if (json_is_string(f) && strcmp(json_string_value(f), name) == 0) {
			json_array_remove(list, i);
			*changed = true;
		}
	}
	if (json_array_size(list) == 0)
		json_object_del(json_object_get(obj, "metadata"), "finalizers");
	return LLM_OK;
}

/* --- owner references ------------------------------------------------------- */

/* The API group of an apiVersion: "apps" for "apps/v1", "" for "v1". */
static size_t group_len(const char *api_version)
{
	const char *slash = strchr(api_version, '/');

	return slash ? (size_t)(slash - api_version) : 0;
}

/* controller-runtime's referSameObject: same group, kind and name. */
static bool same_object(const json_t *ref, const json_t *want)
{
	const char *a = str_of(ref, "apiVersion"), *b = str_of(want, "apiVersion");
	size_t n = group_len(a);

	return n == group_len(b) && strncmp(a, b, n) == 0 &&
	       strcmp(str_of(ref, "kind"), str_of(want, "kind")) == 0 &&
	       strcmp(str_of(ref, "name"), str_of(want, "name")) == 0;
}

/* The controller reference owner would get, or NULL (with a detail). */
static json_t *controller_ref_for(const json_t *child, const json_t *owner)
{
	const json_t *om = json_object_get(owner, "metadata");
	const char *av = str_of(owner, "apiVersion"), *kind = str_of(owner, "kind");
	const char *name = str_of(om, "name"), *uid = str_of(om, "uid");
	const char *ons = str_of(om, "namespace");
	const char *cns = str_of(json_object_get(child, "metadata"), "namespace");

	if (!av[0] || !kind[0] || !name[0] || !uid[0]) {
		llm_fail(LLM_EINVAL, "owner needs apiVersion, kind, metadata.name and "
				     "metadata.uid");
		return NULL;
	}
	if (ons[0] && strcmp(ons, cns) != 0) {
		llm_fail(LLM_EINVAL, "owner %s %s/%s is namespaced; the child is in \"%s\"", kind,
			 ons, name, cns);
		return NULL;
	}
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "apiVersion", av, "kind", kind, "name",
			 name, "uid", uid, "controller", 1, "blockOwnerDeletion", 1);
}

/* Replaces the reference to the same object as ref in list, or appends ref
 * (stolen either way). */
static llm_err upsert_ref(json_t *list, json_t *ref, bool *changed)
{
	size_t i;
	json_t *r;

	json_array_foreach(list, i, r)
	{
		if (!same_object(r, ref))
			continue;
		if (json_equal(r, ref)) {
			json_decref(ref);
			return LLM_OK;
		}
		*changed = true;
		return json_array_set_new(list, i, ref) ? LLM_ENOMEM : LLM_OK;
	}
	*changed = true;
	return json_array_append_new(list, ref) ? LLM_ENOMEM : LLM_OK;
}

llm_err kc_meta_set_controller_ref(json_t *child, const json_t *owner, bool *changed)
{
	bool ignored = false;
	const json_t *cur = kc_meta_controller_of(child);
	json_t *ref, *list;
	llm_err rc;

	changed = changed ? changed : &ignored;
	*changed = false;
	ref = controller_ref_for(child, owner);
	if (!ref)
		return LLM_EINVAL;
	if (cur && !same_object(cur, ref)) {
		rc = llm_fail(LLM_ECONFLICT, "already controlled by %s %s (uid %s)",
			      str_of(cur, "kind"), str_of(cur, "name"), str_of(cur, "uid"));
		goto out_free_ref;
	}
	rc = nested_arr(child, "metadata", "ownerReferences", true, &list);
	if (rc)
		goto out_free_ref;
	return upsert_ref(list, ref, changed);
out_free_ref:
	json_decref(ref);
	return rc;
}

json_t *kc_meta_controller_of(const json_t *obj)
{
	const json_t *list = json_object_get(json_object_get(obj, "metadata"), "ownerReferences");
	size_t i;
	json_t *r;

	json_array_foreach(list, i, r)
	{
		if (json_is_true(json_object_get(r, "controller")))
			return r;
	}
	return NULL;
}

bool kc_meta_is_owned_by(const json_t *child, const json_t *owner)
{
	const json_t *list = json_object_get(json_object_get(child, "metadata"), "ownerReferences");
	const char *uid = str_of(json_object_get(owner, "metadata"), "uid");
	size_t i;
	json_t *r;

	if (!uid[0])
		return false;
	json_array_foreach(list, i, r)
	{
		if (strcmp(str_of(r, "uid"), uid) == 0)
			return true;
	}
	return false;
}

/* --- generations ------------------------------------------------------------ */

json_int_t kc_meta_generation(const json_t *obj)
{
	return json_integer_value(json_object_get(json_object_get(obj, "metadata"), "generation"));
}

json_int_t kc_meta_observed_generation(const json_t *obj)
{
	return json_integer_value(
		json_object_get(json_object_get(obj, "status"), "observedGeneration"));
}

llm_err kc_meta_set_observed_generation(json_t *obj, json_int_t generation, bool *changed)
{
	bool ignored = false;
	json_t *status;
	llm_err rc;

	changed = changed ? changed : &ignored;
	*changed = false;
	rc = member_obj(obj, "status", true, &status);
	if (rc)
		return rc;
	return set_int(status, "observedGeneration", generation, changed);
}
