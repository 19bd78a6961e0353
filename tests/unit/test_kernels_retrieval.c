/* Unit tests for the CPU inference-side kernels: mean pooling, top-k,
 * similarity scores and token sampling.
 *
 * Pooling and scores are compared with naive double loops (1e-6 + 1e-5 |ref|:
 * a few fp32 roundings, sums over <= 33 terms); top-k with a selection sort
 * written here, exactly. Sampling is checked for its rules (greedy ties,
 * determinism per seed and step, only allowed tokens after each filter) and
 * for frequencies: 20,000 draws with a fixed seed must land within 0.02 of
 * each probability, about six standard deviations (sqrt(0.25 / 20000) =
 * 0.0035), and being deterministic the test cannot flake. */
#include "kernels_check.h"

#include <string.h>

#include "llmops_kernels.h"

/* ---- mean pooling ---- */

static void check_pool(const int *lengths, int B, int T, int C, int normalize)
{
	float *x = kc_rnd_array((size_t)B * T * C, 60, 1.0f), *out = kc_falloc((size_t)B * C);
	double *ref = kc_dalloc((size_t)B * C);

	for (int b = 0; b < B; b++) {
		int len = lengths ? lengths[b] : T;
		double ss = 0.0;

		for (int c = 0; c < C; c++) {
			for (int t = 0; t < len; t++)
				ref[b * C + c] += x[((size_t)b * T + t) * C + c];
			ref[b * C + c] = len ? ref[b * C + c] / len : 0.0;
			ss += ref[b * C + c] * ref[b * C + c];
		}
		for (int c = 0; c < C && normalize; c++)
			ref[b * C + c] /= fmax(sqrt(ss), 1e-12);
	}
	for (int i = 0; i < B * C; i++)
		out[i] = NAN; /* overwritten */
	cpu_mean_pool_forward(out, x, lengths, B, T, C, normalize);
	kc_check("pooled", out, ref, (size_t)B * C, 1e-6, 1e-5);
	free(ref), free(out), free(x);
}

static void test_mean_pool_averages_first_length_rows(void **state)
{
	const int len[4] = {3, 0, 9, 1};

	(void)state;
	check_pool(len, 4, 9, 33, 0);
	check_pool(NULL, 4, 9, 33, 0);
}

static void test_mean_pool_normalizes_to_unit_length(void **state)
{
	const int len[4] = {3, 0, 9, 1}; /* length 0: zeros, not NaN */

	(void)state;
	check_pool(len, 4, 9, 33, 1);
	check_pool(NULL, 2, 5, 7, 1);
}

/* ---- top-k ---- */

/* indices of the k best of x (V) by repeated selection */
static void ref_topk(int *idx, const float *x, int V, int k)
{
	char *used = calloc((size_t)V, 1);

	assert_non_null(used);
	for (int r = 0; r < k; r++) {
		int best = -1;

		for (int i = 0; i < V; i++)
			if (!used[i] && (best < 0 || x[i] > x[best]))
				best = i; /* strict >: the lower index wins ties */
		used[best] = 1;
		idx[r] = best;
	}
	free(used);
}

static void test_topk_descending_with_lower_index_on_ties(void **state)
{
	enum { N = 5, V = 300 };
	float *x = kc_rnd_array(N * V, 61, 1.0f);
	const int ks[4] = {1, 7, 64, V};

	(void)state;
	for (int i = 0; i < N * V; i++)
		x[i] = floorf(x[i] * 8.0f); /* 16 distinct values: many ties */
	for (int j = 0; j < 4; j++) {
		int k = ks[j], *idx = calloc((size_t)N * k, sizeof(int)), want[V];
		float *val = kc_falloc((size_t)N * k);

		assert_non_null(idx);
		cpu_topk_forward(val, idx, x, N, V, k);
		for (int n = 0; n < N; n++) {
			ref_topk(want, x + n * V, V, k);
			for (int r = 0; r < k; r++) {
				assert_int_equal(idx[n * k + r], want[r]);
				assert_true(val[n * k + r] == x[n * V + want[r]]);
			}
		}
		free(val), free(idx);
	}
	free(x);
}

/* ---- scores ---- */

static void check_scores(int Q, int N, int D, enum llm_metric metric)
{
	float *q = kc_rnd_array((size_t)Q * D, 62, 1.0f),
	      *m = kc_rnd_array((size_t)N * D, 63, 1.0f);
	float *s = kc_falloc((size_t)Q * N);
	double *ref = kc_dalloc((size_t)Q * N);

	for (int d = 0; d < D; d++)
		q[d] = 0.0f, m[(size_t)(N - 1) * D + d] = 0.0f; /* zero vectors score 0 */
	for (int i = 0; i < Q; i++)
		for (int j = 0; j < N; j++) {
			double dot = 0.0, qq = 0.0, mm = 0.0;

			for (int d = 0; d < D; d++) {
				dot += (double)q[i * D + d] * m[j * D + d];
				qq += (double)q[i * D + d] * q[i * D + d];
				mm += (double)m[j * D + d] * m[j * D + d];
			}
			if (metric == LLM_METRIC_COSINE)
				dot = qq > 0 && mm > 0 ? dot / sqrt(qq * mm) : 0.0;
			ref[(size_t)i * N + j] = dot;
		}
	cpu_score_forward(s, q, m, Q, N, D, metric);
	kc_check("scores", s, ref, (size_t)Q * N, 1e-6, 1e-5);
	free(ref), free(s), free(m), free(q);
}

static void test_score_dot_matches_naive(void **state)
{
	(void)state;
	check_scores(3, 50, 33, LLM_METRIC_DOT);
}

static void test_score_cosine_matches_naive_and_zero_vectors_score_zero(void **state)
{
	(void)state;
	check_scores(3, 50, 33, LLM_METRIC_COSINE);
	check_scores(300, 70, 16, LLM_METRIC_COSINE); /* more queries than one norm chunk */
}

/* ---- sampling ---- */

enum { SV = 6 };
/* probabilities 0.4, 0.25, 0.2, 0.1, 0.05, 0 as logits (log p; -inf never) */
static const double sp[SV] = {0.4, 0.25, 0.2, 0.1, 0.05, 0.0};

static void prob_logits(float *logits, int rows)
{
	for (int n = 0; n < rows; n++)
		for (int i = 0; i < SV; i++) /* a permutation, so order is not index order */
			logits[n * SV + (i * 5 + 2) % SV] = sp[i] > 0 ? (float)log(sp[i]) : -1e30f;
}

/* counts (SV) of tokens drawn over `steps` steps of `rows` rows */
static void sample_counts(long *counts, const struct llm_sampling *s, int rows, int steps)
{
	float *logits = kc_falloc((size_t)rows * SV), *copy;
	int *tok = calloc((size_t)rows, sizeof(int));
	void *scratch = malloc((size_t)rows * SV * 8);

	assert_non_null(tok);
	assert_non_null(scratch);
	prob_logits(logits, rows);
	copy = kc_copy(logits, (size_t)rows * SV);
	memset(counts, 0, SV * sizeof(*counts));
	for (int st = 0; st < steps; st++) {
		cpu_sample_forward(tok, logits, s, scratch, rows, SV, (uint64_t)st);
		for (int n = 0; n < rows; n++) {
			assert_true(tok[n] >= 0 && tok[n] < SV);
			counts[tok[n]]++;
		}
	}
	assert_memory_equal(logits, copy, (size_t)rows * SV * sizeof(float)); /* read only */
	free(copy), free(scratch), free(tok), free(logits);
}

/* count of the token with probability sp[i] */
static long count_of(const long *counts, int i)
{
	return counts[(i * 5 + 2) % SV];
}

static void test_sample_greedy_takes_lowest_index_on_ties(void **state)
{
	const float logits[2 * 5] = {1, 3, 0, 3, 2, -5, -1, -1, -2, -7};
	const struct llm_sampling zero = {0.0f, 2, 0.5f, 0.1f, 1}, neg = {-1.0f, 0, 1, 0, 1};
	int tok[2];
	float scratch[2 * 2 * 5];

	(void)state;
	cpu_sample_forward(tok, logits, &zero, scratch, 2, 5, 0);
	assert_int_equal(tok[0], 1);
	assert_int_equal(tok[1], 1);
	cpu_sample_forward(tok, logits, &neg, scratch, 2, 5, 9);
	assert_int_equal(tok[0], 1);
	assert_int_equal(tok[1], 1);
}

static void test_sample_is_deterministic_per_seed_and_step(void **state)
{
	enum { N = 64, V = 100 };
	float *logits = kc_rnd_array(N * V, 64, 2.0f), *scratch = kc_falloc(2 * N * V);
	const struct llm_sampling s = {0.8f, 0, 1.0f, 0.0f, 42};
	int a[N], b[N], c[N], differ = 0;

	(void)state;
	cpu_sample_forward(a, logits, &s, scratch, N, V, 3);
	cpu_sample_forward(b, logits, &s, scratch, N, V, 3);
	cpu_sample_forward(c, logits, &s, scratch, N, V, 4);
	assert_memory_equal(a, b, sizeof(a));
	for (int n = 0; n < N; n++)
		differ += a[n] != c[n];
	assert_true(differ > N / 4); /* another step, other draws */
	free(scratch), free(logits);
}

static void test_sample_frequencies_follow_probabilities(void **state)
{
	const struct llm_sampling s = {1.0f, 0, 1.0f, 0.0f, 7};
	long counts[SV];

	(void)state;
	sample_counts(counts, &s, 100, 200);
	for (int i = 0; i < SV; i++)
		assert_true(fabs(count_of(counts, i) / 20000.0 - sp[i]) < 0.02);
}

/* temperature 0.5 squares the probabilities before renormalising */
static void test_sample_temperature_sharpens_distribution(void **state)
{
	const struct llm_sampling s = {0.5f, 0, 1.0f, 0.0f, 8};
	long counts[SV];
	double z = 0.0;

	(void)state;
	for (int i = 0; i < SV; i++)
		z += sp[i] * sp[i];
	sample_counts(counts, &s, 100, 200);
	for (int i = 0; i < SV; i++)
		assert_true(fabs(count_of(counts, i) / 20000.0 - sp[i] * sp[i] / z) < 0.02);
}

static void test_sample_filters_keep_only_allowed_tokens(void **state)
{
	/* with p = 0.4, 0.25, 0.2, 0.1, 0.05, 0:
	 * top_k 2 keeps {0.4, 0.25};
	 * top_p 0.6 keeps 0.4 (no mass before it) and 0.25 (0.4 before it) but
	 * not 0.2 (0.65 before it);
	 * min_p 0.3 keeps p >= 0.3 * 0.4 = 0.12: {0.4, 0.25, 0.2} */
	const struct llm_sampling topk = {1.0f, 2, 1.0f, 0.0f, 9};
	const struct llm_sampling topp = {1.0f, 0, 0.6f, 0.0f, 10};
	const struct llm_sampling minp = {1.0f, 0, 1.0f, 0.3f, 11};
	long counts[SV];

	(void)state;
	sample_counts(counts, &topk, 50, 100);
	assert_true(count_of(counts, 0) + count_of(counts, 1) == 5000);
	assert_true(fabs(count_of(counts, 0) / 5000.0 - 0.4 / 0.65) < 0.03);
	sample_counts(counts, &topp, 50, 100);
	assert_true(count_of(counts, 0) + count_of(counts, 1) == 5000);
	assert_true(count_of(counts, 1) > 0);
	sample_counts(counts, &minp, 50, 100);
	assert_true(count_of(counts, 0) + count_of(counts, 1) + count_of(counts, 2) == 5000);
	assert_true(count_of(counts, 2) > 0);
}

/* transformers keeps every token tied with the k-th value */
static void test_sample_top_k_keeps_ties_at_the_boundary(void **state)
{
	const float logits[4] = {2.0f, 1.0f, 1.0f, 0.0f};
	const struct llm_sampling s = {1.0f, 2, 1.0f, 0.0f, 12};
	int tok, seen[4] = {0};
	float scratch[8];

	(void)state;
	for (uint64_t st = 0; st < 2000; st++) {
		cpu_sample_forward(&tok, logits, &s, scratch, 1, 4, st);
		seen[tok]++;
	}
	assert_true(seen[0] > 0 && seen[1] > 0 && seen[2] > 0);
	assert_int_equal(seen[3], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mean_pool_averages_first_length_rows),
		cmocka_unit_test(test_mean_pool_normalizes_to_unit_length),
		cmocka_unit_test(test_topk_descending_with_lower_index_on_ties),
		cmocka_unit_test(test_score_dot_matches_naive),
		cmocka_unit_test(test_score_cosine_matches_naive_and_zero_vectors_score_zero),
		cmocka_unit_test(test_sample_greedy_takes_lowest_index_on_ties),
		cmocka_unit_test(test_sample_is_deterministic_per_seed_and_step),
		cmocka_unit_test(test_sample_frequencies_follow_probabilities),
		cmocka_unit_test(test_sample_temperature_sharpens_distribution),
		cmocka_unit_test(test_sample_filters_keep_only_allowed_tokens),
		cmocka_unit_test(test_sample_top_k_keeps_ties_at_the_boundary),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
