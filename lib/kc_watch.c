/* Watch stream decoding and one watch session (see kc_watch.h). */
#include "kc_watch.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "llm_json.h"

static const char *const type_names[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};

llm_err kc_event_type_parse(const char *s, enum kc_event_type *out)
{
	for (int i = 0; i <= KC_ERROR; i++) {
		if (strcmp(s, type_names[i]) == 0) {
			*out = (enum kc_event_type)i;
			return LLM_OK;
		}
	}
	return llm_fail(LLM_EINVAL, "unknown watch event type '%s'", s);
}

const char *kc_event_type_name(enum kc_event_type t)
{
	return t <= KC_ERROR ? type_names[t] : "UNKNOWN";
}

void kc_watch_decoder_init(struct kc_watch_decoder *d, size_t max_event, kc_event_fn fn, void *data)
{
	llm_buf_init(&d->line, max_event ? max_event : KC_WATCH_MAX_EVENT);
	d->fn = fn;
	d->data = data;
	d->stopped = false;
	d->events = 0;
}

/* Decodes one complete line and hands the event over. */
static llm_err deliver(struct kc_watch_decoder *d, const char *line, size_t len)
{
	char where[64];
	const char *type_name;
	enum kc_event_type type = KC_ERROR;
	json_t *ev, *obj;
	llm_err rc;

	if (len == 0 || (len == 1 && line[0] == '\r'))
		return LLM_OK; /* blank keep-alive line */
	snprintf(where, sizeof(where), "watch event %lu", d->events + 1);
	rc = llm_json_parse(line, len, d->line.max, where, &ev);
	if (rc)
		return rc;
	if (llm_json_get_str(ev, "type", &type_name) || kc_event_type_parse(type_name, &type) ||
	    llm_json_get_obj(ev, "object", &obj)) {
		json_decref(ev);
		return llm_fail(LLM_EPARSE, "%s: not a watch event (%s)", where, llm_last_error());
	}
	d->events++;
	if (!d->fn(type, obj, d->data))
		d->stopped = true;
	json_decref(ev);
	return LLM_OK;
}

llm_err kc_watch_decoder_feed(struct kc_watch_decoder *d, const char *p, size_t n)
{
	while (n > 0 && !d->stopped) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;
		llm_err rc;

		if (llm_buf_append(&d->line, p, take) != LLM_OK)
			return llm_fail(LLM_ETOOLARGE,
					"watch event %lu is over the limit of %zu bytes",
					d->events + 1, d->line.max);
		if (!nl)
			return LLM_OK;
		rc = deliver(d, llm_buf_str(&d->line), d->line.len);
		llm_buf_reset(&d->line);
		if (rc)
			return rc;
		p = nl + 1;
		n -= take + 1;
	}
	return LLM_OK;
}

llm_err kc_watch_decoder_finish(struct kc_watch_decoder *d)
{
	size_t i;

	for (i = 0; i < d->line.len; i++)
		if (!strchr(" \t\r", d->line.data[i]))
			return llm_fail(LLM_EPARSE,
					"watch stream ended inside event %lu (%zu bytes received)",
					d->events + 1, d->line.len);
	return LLM_OK;
}

void kc_watch_decoder_free(struct kc_watch_decoder *d)
{
	llm_buf_free(&d->line);
}

/* State of one session, shared by the transport's chunk callback and the
 * decoder's event callback (both on the transport's I/O thread). */
struct session {
	struct kc_watch_decoder dec;
	kc_event_fn fn;
	void *data;
	char *rv;
	size_t rv_size;
	llm_err error; /* decoding error or the ERROR event's mapping */
	char error_msg[512];
};

/* Records an ERROR event's Status: 410/Expired/Gone ends the session with
 * LLM_EGONE, anything else with its mapped error. */
static void on_error_event(struct session *s, json_t *status)
{
	json_int_t code = 0;

	llm_json_get_int(status, "code", &code);
	s->error = kc_status_err((long)code, llm_json_str_or(status, "reason", ""));
	if (strcmp(llm_json_str_or(status, "reason", ""), "Gone") == 0)
		s->error = LLM_EGONE;
	snprintf(s->error_msg, sizeof(s->error_msg), "watch ERROR event: %lld %s: %s",
		 (long long)code, llm_json_str_or(status, "reason", ""),
		 llm_json_str_or(status, "message", ""));
}

static bool on_event(enum kc_event_type type, json_t *obj, void *data)
{
	struct session *s = data;
	const char *rv;

	if (type == KC_ERROR) {
		on_error_event(s, obj);
		return false;
	}
	if (llm_json_get_str(obj, "metadata.resourceVersion", &rv) == LLM_OK)
		snprintf(s->rv, s->rv_size, "%s", rv);
	if (type == KC_BOOKMARK)
		return true; /* bookmarks only advance the version */
	return s->fn(type, obj, s->data);
}

static bool on_chunk(const char *p, size_t n, void *data)
{
	struct session *s = data;
	llm_err rc = kc_watch_decoder_feed(&s->dec, p, n);

	if (rc) {
		s->error = rc;
		snprintf(s->error_msg, sizeof(s->error_msg), "%s", llm_last_error());
		return false;
	}
	return !s->dec.stopped;
}

/* Builds the watch URL: path plus watch parameters. */
static llm_err watch_path(llm_buf *p, const struct kc_gvr *r, const char *ns,
			  const struct kc_watch_opts *o)
{
	llm_buf q;
	llm_err rc;

	llm_buf_init(&q, p->max);
	rc = kc_path(p, r, ns, NULL, KC_MAIN);
	if (!rc)
		rc = kc_query_add(&q, "watch", "1");
	if (!rc)
		rc = kc_query_add(&q, "allowWatchBookmarks", "true");
	if (!rc)
		rc = llm_buf_printf(&q, "&timeoutSeconds=%d",
				    o->timeout_seconds > 0 ? o->timeout_seconds : 300);
	if (!rc)
		rc = kc_query_add(&q, "resourceVersion", o->resource_version);
	if (!rc)
		rc = kc_query_add(&q, "labelSelector", o->label_selector);
	if (!rc)
		rc = kc_query_add(&q, "fieldSelector", o->field_selector);
	if (!rc)
		rc = llm_buf_append(p, q.data, q.len);
	llm_buf_free(&q);
	return rc;
}

/* Maps how the stream ended to the session's result. */
static llm_err session_result(struct session *s, llm_err rc, struct kc_http_resp *resp,
			      const char *path)
{
	if (s->error) {
		/* Our own stop (decoding error or ERROR event) looks canceled to
		 * the transport; the recorded reason is the real one. */
		return llm_fail(s->error, "%s: %s", path, s->error_msg);
	}
	if (rc)
		return rc;
	if (resp->status != 200) {
		json_t *status = NULL;
		const char *reason, *message;

		llm_json_parse(llm_buf_str(&resp->body), resp->body.len, resp->body.max, path,
			       &status);
		reason = llm_json_str_or(status, "reason", "");
		message = llm_json_str_or(status, "message", llm_buf_str(&resp->body));
		rc = llm_fail(kc_status_err(resp->status, reason), "%s: %ld %s: %s", path,
			      resp->status, reason, message);
		json_decref(status);
		return rc;
	}
	return kc_watch_decoder_finish(&s->dec);
}

llm_err kc_watch_run(kc_http *h, const struct kc_gvr *r, const char *ns,
		     const struct kc_watch_opts *opts, kc_event_fn fn, void *data, char *rv,
		     size_t rv_size)
{
	struct session s = {.fn = fn, .data = data, .rv = rv, .rv_size = rv_size};
	struct kc_watch_opts o = *opts;
	struct kc_http_req req = {.method = "GET", .on_chunk = on_chunk, .data = &s};
	struct kc_http_resp resp;
	llm_buf path;
	llm_err rc;

	o.resource_version = rv;
	llm_buf_init(&path, 8192);
	rc = watch_path(&path, r, ns, &o);
	if (rc)
		goto out;
	kc_watch_decoder_init(&s.dec, o.max_event, on_event, &s);
	req.path = llm_buf_str(&path);
	req.cancel = o.cancel;
	/* The server ends the watch after timeoutSeconds; allow a margin before
	 * deciding the connection died silently. */
	req.timeout_ms = ((o.timeout_seconds > 0 ? o.timeout_seconds : 300) + 30) * 1000;
	rc = kc_http_do(h, &req, &resp);
	rc = session_result(&s, rc, &resp, req.path);
	kc_http_resp_free(&resp);
	kc_watch_decoder_free(&s.dec);
out:
	llm_buf_free(&path);
	return rc;
}
