/* One register tile of the packed SGEMM, instantiated by gemm.c once per
 * vector width (a C template). Before including, define:
 *   GT_NAME   suffix of the generated function (gemm_tile_<GT_NAME>)
 *   GT_TARGET the function's target attribute ("avx2,fma", "avx512f,fma")
 *   GT_VW     floats per vector (8 for ymm, 16 for zmm)
 *   GT_MR     rows of the tile; GT_NV vectors per row (NR = GT_NV * GT_VW)
 * The generated function has the gemm_tile_fn contract of gemm.c: it
 * multiplies an MR-row panel of packed A by an NR-column panel of packed B
 * over kc steps, keeping the MR x NV accumulators in registers, then writes
 * C = alpha * acc + beta * C over the top-left m x n of the tile. gemm.c
 * builds it with -ffp-contract=fast so each multiply-add is one FMA. */
#define GT_NR	      (GT_NV * GT_VW)
#define GT_CAT2(a, b) a##b
#define GT_CAT(a, b)  GT_CAT2(a, b)
#define GT_VEC	      GT_CAT(gt_vec_, GT_NAME)
#define GT_UVEC	      GT_CAT(gt_uvec_, GT_NAME)

typedef float GT_VEC __attribute__((vector_size(GT_VW * 4)));
typedef float GT_UVEC __attribute__((vector_size(GT_VW * 4), aligned(4)));

__attribute__((target(GT_TARGET))) static void
GT_CAT(gemm_tile_, GT_NAME)(int kc, const float *restrict a, const float *restrict b,
			    float *restrict c, int ldc, int m, int n, float alpha, float beta)
{
	GT_VEC acc[GT_MR][GT_NV];
	float tmp[GT_MR * GT_NR] __attribute__((aligned(64)));
	float *dst = c;
	int ld = ldc;
	float vbeta = beta;

#pragma GCC unroll 8
	for (int i = 0; i < GT_MR; i++)
#pragma GCC unroll 4
		for (int v = 0; v < GT_NV; v++)
			acc[i][v] = (GT_VEC){0};
	/* C is written once per KC block: start pulling its rows in now */
	for (int i = 0; i < m; i++) {
		__builtin_prefetch(c + (long)i * ldc, 1);
		__builtin_prefetch(c + (long)i * ldc + n - 1, 1);
	}
#pragma GCC unroll 4
	for (int k = 0; k < kc; k++, a += GT_MR, b += GT_NR) {
		GT_VEC bv[GT_NV];

#pragma GCC unroll 4
		for (int v = 0; v < GT_NV; v++)
			bv[v] = *(const GT_VEC *)(b + v * GT_VW);
#pragma GCC unroll 8
		for (int i = 0; i < GT_MR; i++) {
			GT_VEC av = a[i] - (GT_VEC){0}; /* a broadcast: x - 0 is x */

#pragma GCC unroll 4
			for (int v = 0; v < GT_NV; v++)
				acc[i][v] += av * bv[v];
		}
	}
	/* a partial tile goes through tmp so the vector stores stay in bounds */
	if (m < GT_MR || n < GT_NR) {
		dst = tmp;
		ld = GT_NR;
		vbeta = 0.0f;
	}
#pragma GCC unroll 8
	for (int i = 0; i < GT_MR; i++)
#pragma GCC unroll 4
		for (int v = 0; v < GT_NV; v++) {
			GT_UVEC *p = (GT_UVEC *)(dst + (long)i * ld + v * GT_VW);

			*p = vbeta == 0.0f ? alpha * acc[i][v] : alpha * acc[i][v] + vbeta * *p;
		}
	if (dst == tmp)
		gemm_tile_edge(c, ldc, tmp, GT_NR, m, n, beta);
}

#undef GT_NR
#undef GT_VEC
#undef GT_UVEC
#undef GT_CAT
#undef GT_CAT2
