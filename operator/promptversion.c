/* PromptVersion reconciler: nothing to run. It validates the template,
 * hashes the spec, keeps aliases (labels llmops.dev/alias-<name>) unique
 * within a prompt family, and reports all that in status. Alias clashes
 * concern several objects, so each reconcile re-evaluates the whole family
 * and updates every member whose AliasConflict condition changed. */
#include "promptversion.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "kc_meta.h"
#include "llm_json.h"
#include "llm_prompt.h"

#define ALIAS_PREFIX "llmops.dev/alias-"

/* Every example gives every required variable without a default, and an
 * output; there are as many as the shots need. */
static llm_err check_examples(const json_t *spec)
{
	const char *shots = llm_json_str_or(spec, "shots", "zero");
	json_t *examples = json_object_get(spec, "examples"), *ex, *v;
	size_t need = strcmp(shots, "one") == 0 ? 1 : strcmp(shots, "few") == 0 ? 2 : 0, i, j;

	if (json_array_size(examples) < need)
		return llm_fail(LLM_EINVAL, "spec.shots is %s but spec.examples has %zu (need %zu)",
				shots, json_array_size(examples), need);
	json_array_foreach(examples, i, ex)
	{
		if (!json_string_length(json_object_get(ex, "output")))
			return llm_fail(LLM_EINVAL, "spec.examples[%zu] has no output", i);
		json_array_foreach(json_object_get(spec, "variables"), j, v)
		{
			const char *name = llm_json_str_or(v, "name", "");

			if (json_is_true(json_object_get(v, "required")) &&
			    !json_object_get(v, "default") &&
			    !json_object_get(json_object_get(ex, "inputs"), name))
				return llm_fail(
					LLM_EINVAL,
					"spec.examples[%zu].inputs lacks required variable '%s'", i,
					name);
		}
	}
	return LLM_OK;
}

llm_err pv_validate(const json_t *spec)
{
	llm_err rc;

	if (!json_object_get(spec, "template") == !json_object_get(spec, "messages"))
		return llm_fail(LLM_EINVAL, "spec needs exactly one of template and messages");
	rc = llm_prompt_check(spec);
	return rc ? rc : check_examples(spec);
}

void pv_content_hash(const json_t *spec, char *out, size_t size)
{
	unsigned char digest[SHA256_DIGEST_LENGTH];
	char *canon = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	size_t n = snprintf(out, size, "sha256:");

	SHA256((const unsigned char *)(canon ? canon : ""), canon ? strlen(canon) : 0, digest);
	for (int i = 0; i < SHA256_DIGEST_LENGTH && n + 2 < size; i++)
		n += snprintf(out + n, size - n, "%02x", digest[i]);
	free(canon);
}

/* True when pv holds the alias: its label alias_key is "true". */
static bool holds(json_t *pv, const char *alias_key)
{
	const char *v = json_string_value(json_object_get(
		json_object_get(json_object_get(pv, "metadata"), "labels"), alias_key));

	return v && strcmp(v, "true") == 0;
}

/* "alias production also held by v2, v3" for member, or "" when none. */
static void conflicts_of(json_t *member, json_t *family, char *out, size_t size)
{
	json_t *labels = json_object_get(json_object_get(member, "metadata"), "labels"), *v, *o;
	const char *key, *me = llm_json_str_or(member, "metadata.name", "");
	size_t n = 0, i;

	out[0] = '\0';
	json_object_foreach(labels, key, v)
	{
		if (strncmp(key, ALIAS_PREFIX, strlen(ALIAS_PREFIX)) != 0 || !holds(member, key))
			continue;
		json_array_foreach(family, i, o)
		{
			const char *other = llm_json_str_or(o, "metadata.name", "");

			if (strcmp(other, me) != 0 && holds(o, key) && n < size)
				n += snprintf(out + n, size - n, "%salias %s also held by %s",
					      n ? "; " : "", key + strlen(ALIAS_PREFIX), other);
		}
	}
}

/* The PromptVersions of pv's family in its namespace. */
static json_t *family_of(struct op_ctx *c, json_t *pv)
{
	const char *family = llm_json_str_or(pv, "spec.family", "");
	json_t *all = op_list(c, &OP_PROMPTVERSIONS, llm_json_str_or(pv, "metadata.namespace", ""));
	json_t *out = json_array(), *item;
	size_t i;

	json_array_foreach(all, i, item)
	{
		if (strcmp(llm_json_str_or(item, "spec.family", ""), family) == 0)
			json_array_append(out, item);
	}
	json_decref(all);
	return out;
}

/* The status pv should have, given its family. */
static json_t *desired_status(json_t *pv, json_t *family)
{
	json_t *spec = json_object_get(pv, "spec");
	llm_err invalid = pv_validate(spec);
	char hash[80], clash[1024];
	json_t *status = op_status(pv, invalid ? "Invalid" : "Ready");

	pv_content_hash(spec, hash, sizeof(hash));
	json_object_set_new(status, "contentHash", json_string(hash));
	if (invalid)
		op_condition(status, pv, "Ready", "False", "InvalidTemplate", llm_last_error());
	else
		op_condition(status, pv, "Ready", "True", "Valid",
			     "template and examples are valid");
	conflicts_of(pv, family, clash, sizeof(clash));
	if (clash[0])
		op_condition(status, pv, "AliasConflict", "True", "AliasHeldElsewhere", clash);
	else
		op_condition(status, pv, "AliasConflict", "False", "Unique",
			     "no alias of this version is held by another in its family");
	return status;
}

static bool status_differs(json_t *pv, json_t *status)
{
	json_t *cur = json_object_get(pv, "status");

	return !cur ||
	       !json_equal(json_object_get(cur, "conditions"),
			   json_object_get(status, "conditions")) ||
	       !json_equal(json_object_get(cur, "contentHash"),
			   json_object_get(status, "contentHash")) ||
	       !json_equal(json_object_get(cur, "observedGeneration"),
			   json_object_get(status, "observedGeneration"));
}

static struct kc_result reconcile(struct op_ctx *c, json_t *pv)
{
	json_t *family = family_of(c, pv), *member;
	bool failed = false;
	size_t i;

	json_array_foreach(family, i, member)
	{
		json_t *status = desired_status(member, family);

		if (status_differs(member, status) &&
		    op_apply_status(c, &OP_PROMPTVERSIONS, member, status))
			failed = true;
		json_decref(status);
	}
	json_decref(family);
	return failed ? op_retry() : op_done();
}

/* A deleted version may have held an alias another one now holds alone:
 * re-evaluate every family of the namespace. */
static struct kc_result gone(struct op_ctx *c, const char *ns, const char *name)
{
	json_t *all = op_list(c, &OP_PROMPTVERSIONS, ns), *pv;
	bool failed = false;
	size_t i;

	(void)name;
	json_array_foreach(all, i, pv)
	{
		if (reconcile(c, pv).outcome != KC_DONE)
			failed = true;
	}
	json_decref(all);
	return failed ? op_retry() : op_done();
}

const struct op_reconciler promptversion_reconciler = {
	.kind = "PromptVersion",
	.component = "promptversion",
	.gvr = &OP_PROMPTVERSIONS,
	.reconcile = reconcile,
	.gone = gone,
};
