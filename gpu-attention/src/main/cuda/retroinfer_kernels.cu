// Wave attention on the GPU: the kernels of one decode step, batched over "items"
// (item = one request x one KV head; its g query heads are one query group).
//
// Semantics (ALGORITHM.md; the Java mirror is org.retroinfer.gpu.emulation.KernelEmulator):
//   centroid_logits_g*  l[h][c] = scale * q_h . C[c]            (+ per-tile max and sum of exp)
//   cluster_scores      s[c] = sum_h exp(l[h][c] - M_h) / Z_h   (softmax per head, summed over the group)
//   select_top          top r (retrieved) and next e (estimated) by (score, lower id first), both
//                       listed in ascending cluster id; exec length and each retrieved cluster's row
//                       in the execution buffer (steady zone first, then clusters in id order)
//   gather_tasks        execution-buffer assembly from up to three row sources (steady zone,
//                       block cache, pinned host tier read through a mapped pointer)
//   gather_clusters     the same from a device-resident cluster-contiguous pool (no host involved)
//   attend_partial_*    split-K exact attention over rows [base, base + len): per split the
//                       softmax state (m, Z, O = sum exp(l - m) v), flash-decoding style
//   estimate_partial_g* the estimation zone: m = max l, Z = sum size * exp(l - m),
//                       O = sum exp(l - m) * valueSum, from the centroid logits
//   merge_partials      the log-sum-exp merge of every partial state of an item: out = O / Z
//
// K/V rows are float32, float16 or bfloat16 (little-endian, the layout of wave-core's VectorStore);
// centroids and value sums are float32. Head dim d: a multiple of 16, at most 256. Each lane owns
// 8 consecutive components of a row ("slot"); a team of T = nextpow2(d / 8) lanes reads one row.
// Group size g: at most 8 (kernels come in G = 1, 2, 4, 8; any g <= G runs on the G variant).

#include <cuda_fp16.h>

#define FULL_MASK 0xffffffffu

namespace retroinfer {

constexpr int WARPS = 4;
constexpr int THREADS = WARPS * 32;
constexpr int TILE = 128;   // rows scored per tile (scores of a tile live in shared memory)
constexpr int MAX_D = 256;
constexpr int UNROLL = 4;   // rows in flight per team in the streaming loops
constexpr int SELECT_THREADS = 1024;

struct F32 {
  static constexpr int BYTES = 4;
};
struct F16 {
  static constexpr int BYTES = 2;
};
struct BF16 {
  static constexpr int BYTES = 2;
};

__device__ __forceinline__ float bf16_lo(unsigned w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float bf16_hi(unsigned w) { return __uint_as_float(w & 0xffff0000u); }
__device__ __forceinline__ float f16_lo(unsigned w) {
  return __half2float(__ushort_as_half((unsigned short)(w & 0xffffu)));
}
__device__ __forceinline__ float f16_hi(unsigned w) {
  return __half2float(__ushort_as_half((unsigned short)(w >> 16)));
}

// Components [8 * slot, 8 * slot + 8) of the row at `row` (16-byte aligned).
template <typename T>
__device__ __forceinline__ void load8(const char* row, int slot, float (&x)[8]);

template <>
__device__ __forceinline__ void load8<BF16>(const char* row, int slot, float (&x)[8]) {
  const uint4 u = __ldg(reinterpret_cast<const uint4*>(row) + slot);
  x[0] = bf16_lo(u.x); x[1] = bf16_hi(u.x); x[2] = bf16_lo(u.y); x[3] = bf16_hi(u.y);
  x[4] = bf16_lo(u.z); x[5] = bf16_hi(u.z); x[6] = bf16_lo(u.w); x[7] = bf16_hi(u.w);
}

template <>
__device__ __forceinline__ void load8<F16>(const char* row, int slot, float (&x)[8]) {
  const uint4 u = __ldg(reinterpret_cast<const uint4*>(row) + slot);
  x[0] = f16_lo(u.x); x[1] = f16_hi(u.x); x[2] = f16_lo(u.y); x[3] = f16_hi(u.y);
  x[4] = f16_lo(u.z); x[5] = f16_hi(u.z); x[6] = f16_lo(u.w); x[7] = f16_hi(u.w);
}

template <>
__device__ __forceinline__ void load8<F32>(const char* row, int slot, float (&x)[8]) {
  const float4 a = __ldg(reinterpret_cast<const float4*>(row) + 2 * slot);
  const float4 b = __ldg(reinterpret_cast<const float4*>(row) + 2 * slot + 1);
  x[0] = a.x; x[1] = a.y; x[2] = a.z; x[3] = a.w;
  x[4] = b.x; x[5] = b.y; x[6] = b.z; x[7] = b.w;
}

__device__ __forceinline__ int team_size(int slots) {
  int t = 1;
  while (t < slots) t <<= 1;
  return t;
}

__device__ __forceinline__ float team_sum(float v, int team) {
  for (int off = team >> 1; off > 0; off >>= 1) v += __shfl_xor_sync(FULL_MASK, v, off);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, off));
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(FULL_MASK, v, off);
  return v;
}

// The lane geometry of a block of THREADS threads reading rows of d components.
struct Teams {
  int slots, size, lane, inWarp, perWarp, count, warp;
  bool active;
  __device__ explicit Teams(int d) {
    slots = d >> 3;
    size = team_size(slots);
    const int l = threadIdx.x & 31;
    warp = threadIdx.x >> 5;
    lane = l & (size - 1);
    inWarp = l / size;
    perWarp = 32 / size;
    count = WARPS * perWarp;
    active = lane < slots;
  }
};

// Scores of tile rows [0, n): s_p[h][j] = scale * q_h . row(j) for h < g. Every lane of a warp
// runs the same number of iterations (the shuffles need the whole warp).
template <typename T, int G, typename RowFn>
__device__ __forceinline__ void score_tile(const Teams& tm, RowFn rowOf, int n, int g, float scale,
                                           const float (&q)[G][8], float (*s_p)[TILE]) {
  for (int jb = tm.warp * tm.perWarp; jb < n; jb += tm.count * UNROLL) {
    float k[UNROLL][8];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int j = jb + u * tm.count + tm.inWarp;
      if (tm.active && j < n) {
        load8<T>(rowOf(j), tm.lane, k[u]);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) k[u][e] = 0.f;
      }
    }
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int j = jb + u * tm.count + tm.inWarp;
#pragma unroll
      for (int h = 0; h < G; ++h) {
        float s = 0.f;
#pragma unroll
        for (int e = 0; e < 8; ++e) s = fmaf(q[h][e], k[u][e], s);
        s = team_sum(s, tm.size);
        if (tm.lane == 0 && j < n && h < g) s_p[h][j] = s * scale;
      }
    }
  }
}

// Online-softmax step for one tile: turns s_p[h][0..n) into exp(s - m_new) (times w[j] in the
// normaliser when weights are given), updates m, Z and the rescale factor alpha of each head.
__device__ __forceinline__ void softmax_tile(int n, int g, float (*s_p)[TILE], const float* s_w,
                                             float* s_m, float* s_l, float* s_alpha) {
  const int lane = threadIdx.x & 31;
  for (int h = threadIdx.x >> 5; h < g; h += WARPS) {
    float mx = -INFINITY;
    for (int j = lane; j < n; j += 32) mx = fmaxf(mx, s_p[h][j]);
    mx = warp_max(mx);
    const float mOld = s_m[h];
    const float mNew = fmaxf(mOld, mx);
    float sum = 0.f;
    for (int j = lane; j < n; j += 32) {
      const float p = expf(s_p[h][j] - mNew);
      s_p[h][j] = p;
      sum += s_w == nullptr ? p : p * s_w[j];
    }
    sum = warp_sum(sum);
    if (lane == 0) {
      const float alpha = s_l[h] == 0.f ? 0.f : expf(mOld - mNew);
      s_alpha[h] = alpha;
      s_l[h] = s_l[h] * alpha + sum;
      s_m[h] = mNew;
    }
  }
}

// acc[h] = alpha[h] * acc[h] + sum_j p[h][j] * row(j) over the lane's slot.
template <typename T, int G, typename RowFn>
__device__ __forceinline__ void accumulate_tile(const Teams& tm, RowFn rowOf, int n, int g,
                                                float (*s_p)[TILE], const float* s_alpha,
                                                float (&acc)[G][8]) {
#pragma unroll
  for (int h = 0; h < G; ++h) {
    const float a = h < g ? s_alpha[h] : 0.f;
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[h][e] *= a;
  }
  if (!tm.active) return;
  for (int jb = tm.warp * tm.perWarp + tm.inWarp; jb < n; jb += tm.count * UNROLL) {
    float v[UNROLL][8];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int j = jb + u * tm.count;
      if (j < n) {
        load8<T>(rowOf(j), tm.lane, v[u]);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) v[u][e] = 0.f;
      }
    }
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int j = jb + u * tm.count;
      if (j >= n) break;
#pragma unroll
      for (int h = 0; h < G; ++h) {
        if (h < g) {
          const float p = s_p[h][j];
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[h][e] = fmaf(p, v[u][e], acc[h][e]);
        }
      }
    }
  }
}

// Sums every team's accumulators and writes the block's softmax state as partial `part`.
template <int G>
__device__ __forceinline__ void write_partial(const Teams& tm, int d, int g, const float (&acc)[G][8],
                                              float (*s_acc)[MAX_D], const float* s_m,
                                              const float* s_l, size_t part, float* partM,
                                              float* partL, float* partO) {
  if (tm.active) {
#pragma unroll
    for (int h = 0; h < G; ++h) {
      if (h < g) {
#pragma unroll
        for (int e = 0; e < 8; ++e) atomicAdd(&s_acc[h][tm.lane * 8 + e], acc[h][e]);
      }
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < g * d; i += THREADS) partO[part * g * d + i] = s_acc[i / d][i % d];
  if (threadIdx.x < g) {
    partM[part * g + threadIdx.x] = s_m[threadIdx.x];
    partL[part * g + threadIdx.x] = s_l[threadIdx.x];
  }
}

template <int G>
__device__ __forceinline__ void init_state(int d, float (*s_acc)[MAX_D], float* s_m, float* s_l) {
  for (int i = threadIdx.x; i < G * MAX_D; i += THREADS) s_acc[i / MAX_D][i % MAX_D] = 0.f;
  if (threadIdx.x < G) {
    s_m[threadIdx.x] = -INFINITY;
    s_l[threadIdx.x] = 0.f;
  }
}

template <int G>
__device__ __forceinline__ void load_queries(const Teams& tm, const float* Q, int item, int g, int d,
                                             float (&q)[G][8]) {
#pragma unroll
  for (int h = 0; h < G; ++h) {
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      q[h][e] = (tm.active && h < g) ? Q[((size_t)item * g + h) * d + tm.lane * 8 + e] : 0.f;
    }
  }
}

// Split-K exact attention: block (split, item) attends rows [base + from, base + to) of K/V.
template <typename T, int G>
__device__ void attend_partial_impl(const char* __restrict__ K, const char* __restrict__ V,
                                    const long long* __restrict__ itemBase,
                                    const int* __restrict__ itemLen, const float* __restrict__ Q,
                                    int d, int g, float scale, int rowsPerSplit, int partsPerItem,
                                    int partOffset, float* __restrict__ partM,
                                    float* __restrict__ partL, float* __restrict__ partO) {
  __shared__ float s_p[G][TILE];
  __shared__ float s_acc[G][MAX_D];
  __shared__ float s_m[G], s_l[G], s_alpha[G];
  const int item = blockIdx.y;
  const int split = blockIdx.x;
  const Teams tm(d);
  const int len = itemLen[item];
  const int from = min(len, split * rowsPerSplit);
  const int to = min(len, from + rowsPerSplit);
  const size_t rowBytes = (size_t)d * T::BYTES;
  float q[G][8];
  float acc[G][8];
  load_queries<G>(tm, Q, item, g, d, q);
#pragma unroll
  for (int h = 0; h < G; ++h)
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[h][e] = 0.f;
  init_state<G>(d, s_acc, s_m, s_l);
  __syncthreads();
  for (int t0 = from; t0 < to; t0 += TILE) {
    const int n = min(TILE, to - t0);
    const long long first = itemBase[item] + t0;
    score_tile<T, G>(tm, [&](int j) { return K + (size_t)(first + j) * rowBytes; }, n, g, scale, q, s_p);
    __syncthreads();
    softmax_tile(n, g, s_p, nullptr, s_m, s_l, s_alpha);
    __syncthreads();
    accumulate_tile<T, G>(tm, [&](int j) { return V + (size_t)(first + j) * rowBytes; }, n, g, s_p,
                          s_alpha, acc);
    __syncthreads();
  }
  write_partial<G>(tm, d, g, acc, s_acc, s_m, s_l, (size_t)item * partsPerItem + partOffset + split,
                   partM, partL, partO);
}

// Centroid logits of tile blockIdx.x of item blockIdx.y, plus the tile's max and sum of exp.
template <int G>
__device__ void centroid_logits_impl(const float* __restrict__ C, const long long* __restrict__ centBase,
                                     const int* __restrict__ clusters, const float* __restrict__ Q,
                                     int d, int g, float scale, int cStride, int tiles,
                                     float* __restrict__ logits, float* __restrict__ tileM,
                                     float* __restrict__ tileS) {
  __shared__ float s_p[G][TILE];
  const int item = blockIdx.y;
  const int nc = clusters[item];
  const int c0 = blockIdx.x * TILE;
  const Teams tm(d);
  const int n = max(0, min(TILE, nc - c0));
  const size_t rowBytes = (size_t)d * 4;
  const char* base = reinterpret_cast<const char*>(C) + (size_t)(centBase[item] + c0) * rowBytes;
  float q[G][8];
  load_queries<G>(tm, Q, item, g, d, q);
  score_tile<F32, G>(tm, [&](int j) { return base + (size_t)j * rowBytes; }, n, g, scale, q, s_p);
  __syncthreads();
  const int lane = threadIdx.x & 31;
  for (int h = threadIdx.x >> 5; h < g; h += WARPS) {
    float mx = -INFINITY;
    for (int j = lane; j < n; j += 32) {
      const float l = s_p[h][j];
      logits[((size_t)item * g + h) * cStride + c0 + j] = l;
      mx = fmaxf(mx, l);
    }
    mx = warp_max(mx);
    float sum = 0.f;
    for (int j = lane; j < n; j += 32) sum += expf(s_p[h][j] - mx);
    sum = warp_sum(sum);
    if (lane == 0) {
      tileM[((size_t)item * tiles + blockIdx.x) * g + h] = mx;
      tileS[((size_t)item * tiles + blockIdx.x) * g + h] = sum;
    }
  }
}

// The estimation zone of item blockIdx.y, clusters [split * per, (split + 1) * per) of its list.
template <int G>
__device__ void estimate_partial_impl(const float* __restrict__ logits, int cStride,
                                      const int* __restrict__ estIds, const int* __restrict__ estCount,
                                      int eStride, const float* __restrict__ VS,
                                      const int* __restrict__ clusterSize,
                                      const long long* __restrict__ centBase, int d, int g,
                                      int clustersPerSplit, int partsPerItem, int partOffset,
                                      float* __restrict__ partM, float* __restrict__ partL,
                                      float* __restrict__ partO) {
  __shared__ float s_p[G][TILE];
  __shared__ float s_w[TILE];
  __shared__ int s_id[TILE];
  __shared__ float s_acc[G][MAX_D];
  __shared__ float s_m[G], s_l[G], s_alpha[G];
  const int item = blockIdx.y;
  const int split = blockIdx.x;
  const Teams tm(d);
  const int count = estCount[item];
  const int from = min(count, split * clustersPerSplit);
  const int to = min(count, from + clustersPerSplit);
  const long long cb = centBase[item];
  const size_t rowBytes = (size_t)d * 4;
  const char* vs = reinterpret_cast<const char*>(VS);
  float acc[G][8];
#pragma unroll
  for (int h = 0; h < G; ++h)
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[h][e] = 0.f;
  init_state<G>(d, s_acc, s_m, s_l);
  __syncthreads();
  for (int t0 = from; t0 < to; t0 += TILE) {
    const int n = min(TILE, to - t0);
    for (int j = threadIdx.x; j < n; j += THREADS) {
      const int c = estIds[(size_t)item * eStride + t0 + j];
      s_id[j] = c;
      s_w[j] = (float)clusterSize[cb + c];
      for (int h = 0; h < g; ++h) s_p[h][j] = logits[((size_t)item * g + h) * cStride + c];
    }
    __syncthreads();
    softmax_tile(n, g, s_p, s_w, s_m, s_l, s_alpha);
    __syncthreads();
    accumulate_tile<F32, G>(tm, [&](int j) { return vs + (size_t)(cb + s_id[j]) * rowBytes; }, n, g,
                            s_p, s_alpha, acc);
    __syncthreads();
  }
  write_partial<G>(tm, d, g, acc, s_acc, s_m, s_l, (size_t)item * partsPerItem + partOffset + split,
                   partM, partL, partO);
}

// Exclusive prefix sum over the SELECT_THREADS threads of a block; `total` gets the block's sum.
__device__ __forceinline__ int block_exclusive_scan(int v, int* s_warp, int& total) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  int x = v;
  for (int o = 1; o < 32; o <<= 1) {
    const int y = __shfl_up_sync(FULL_MASK, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) s_warp[warp] = x;
  __syncthreads();
  if (warp == 0) {
    int w = s_warp[lane];
    for (int o = 1; o < 32; o <<= 1) {
      const int y = __shfl_up_sync(FULL_MASK, w, o);
      if (lane >= o) w += y;
    }
    s_warp[lane] = w;
  }
  __syncthreads();
  const int before = warp > 0 ? s_warp[warp - 1] : 0;
  total = s_warp[31];
  __syncthreads();
  return before + x - v;
}

// The k-th largest of keys[0..n) (1 <= k <= n) by a 4-pass 8-bit radix select; `quota` gets how
// many keys equal to it belong to the top k (the rest of the top k is strictly larger).
__device__ void radix_kth_largest(const unsigned* keys, int n, int k, unsigned* s_hist,
                                  unsigned* s_sel, unsigned& key, int& quota) {
  unsigned prefix = 0, mask = 0;
  int kk = k;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += blockDim.x) s_hist[i] = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      const unsigned x = keys[i];
      if ((x & mask) == prefix) atomicAdd(&s_hist[(x >> shift) & 255u], 1u);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int cum = 0;
      int b = 255;
      for (; b > 0; --b) {
        if (cum + (int)s_hist[b] >= kk) break;
        cum += (int)s_hist[b];
      }
      s_sel[0] = prefix | ((unsigned)b << shift);
      s_sel[1] = (unsigned)(kk - cum);
    }
    __syncthreads();
    prefix = s_sel[0];
    kk = (int)s_sel[1];
    mask |= 255u << shift;
    __syncthreads();
  }
  key = prefix;
  quota = kk;
}

}  // namespace retroinfer

using namespace retroinfer;

extern "C" {

#define ATTEND_PARTIAL(NAME, T, G)                                                              \
  __global__ void __launch_bounds__(THREADS) NAME(                                               \
      const char* K, const char* V, const long long* itemBase, const int* itemLen, const float* Q, \
      int d, int g, float scale, int rowsPerSplit, int partsPerItem, int partOffset, float* partM, \
      float* partL, float* partO) {                                                              \
    attend_partial_impl<T, G>(K, V, itemBase, itemLen, Q, d, g, scale, rowsPerSplit, partsPerItem, \
                              partOffset, partM, partL, partO);                                  \
  }

ATTEND_PARTIAL(attend_partial_bf16_g1, BF16, 1)
ATTEND_PARTIAL(attend_partial_bf16_g2, BF16, 2)
ATTEND_PARTIAL(attend_partial_bf16_g4, BF16, 4)
ATTEND_PARTIAL(attend_partial_bf16_g8, BF16, 8)
ATTEND_PARTIAL(attend_partial_f16_g1, F16, 1)
ATTEND_PARTIAL(attend_partial_f16_g2, F16, 2)
ATTEND_PARTIAL(attend_partial_f16_g4, F16, 4)
ATTEND_PARTIAL(attend_partial_f16_g8, F16, 8)
ATTEND_PARTIAL(attend_partial_f32_g1, F32, 1)
ATTEND_PARTIAL(attend_partial_f32_g2, F32, 2)
ATTEND_PARTIAL(attend_partial_f32_g4, F32, 4)
ATTEND_PARTIAL(attend_partial_f32_g8, F32, 8)

#define CENTROID_LOGITS(NAME, G)                                                                 \
  __global__ void __launch_bounds__(THREADS) NAME(                                               \
      const float* C, const long long* centBase, const int* clusters, const float* Q, int d, int g, \
      float scale, int cStride, int tiles, float* logits, float* tileM, float* tileS) {          \
    centroid_logits_impl<G>(C, centBase, clusters, Q, d, g, scale, cStride, tiles, logits, tileM, \
                            tileS);                                                              \
  }

CENTROID_LOGITS(centroid_logits_g1, 1)
CENTROID_LOGITS(centroid_logits_g2, 2)
CENTROID_LOGITS(centroid_logits_g4, 4)
CENTROID_LOGITS(centroid_logits_g8, 8)

#define ESTIMATE_PARTIAL(NAME, G)                                                                \
  __global__ void __launch_bounds__(THREADS) NAME(                                               \
      const float* logits, int cStride, const int* estIds, const int* estCount, int eStride,     \
      const float* VS, const int* clusterSize, const long long* centBase, int d, int g,          \
      int clustersPerSplit, int partsPerItem, int partOffset, float* partM, float* partL,        \
      float* partO) {                                                                            \
    estimate_partial_impl<G>(logits, cStride, estIds, estCount, eStride, VS, clusterSize,        \
                             centBase, d, g, clustersPerSplit, partsPerItem, partOffset, partM,  \
                             partL, partO);                                                      \
  }

ESTIMATE_PARTIAL(estimate_partial_g1, 1)
ESTIMATE_PARTIAL(estimate_partial_g2, 2)
ESTIMATE_PARTIAL(estimate_partial_g4, 4)
ESTIMATE_PARTIAL(estimate_partial_g8, 8)

// Block (tile, item), THREADS threads: s[c] = sum_h exp(l[h][c] - M_h) / Z_h, where M_h and Z_h
// combine the per-tile maxima and sums of centroid_logits.
__global__ void __launch_bounds__(THREADS) cluster_scores(const float* logits, const float* tileM,
                                                          const float* tileS, const int* clusters,
                                                          int g, int cStride, int tiles,
                                                          float* scores) {
  __shared__ float s_M[8], s_Z[8];
  const int item = blockIdx.y;
  const int nc = clusters[item];
  const int used = (nc + TILE - 1) / TILE;
  const int lane = threadIdx.x & 31;
  for (int h = threadIdx.x >> 5; h < g; h += WARPS) {
    float mx = -INFINITY;
    for (int t = lane; t < used; t += 32) mx = fmaxf(mx, tileM[((size_t)item * tiles + t) * g + h]);
    mx = warp_max(mx);
    float z = 0.f;
    for (int t = lane; t < used; t += 32) {
      const size_t at = ((size_t)item * tiles + t) * g + h;
      z += tileS[at] * expf(tileM[at] - mx);
    }
    z = warp_sum(z);
    if (lane == 0) {
      s_M[h] = mx;
      s_Z[h] = z;
    }
  }
  __syncthreads();
  const int c = blockIdx.x * TILE + threadIdx.x;
  if (c < nc) {
    float s = 0.f;
    for (int h = 0; h < g; ++h) {
      s += expf(logits[((size_t)item * g + h) * cStride + c] - s_M[h]) / s_Z[h];
    }
    scores[(size_t)item * cStride + c] = s;
  }
}

// Block item, SELECT_THREADS threads. Retrieved = the top r by (score, lower id); estimated = the
// next e. Both lists ascending by id. execLen = steadyLen + retrieved tokens; retDst[i] = row of
// retrieved cluster i in the item's execution buffer (after the steady rows, in id order).
__global__ void __launch_bounds__(SELECT_THREADS) select_top(
    const float* scores, const int* clusters, const int* rCount, const int* eCount, int cStride,
    const int* clusterSize, const long long* centBase, const int* steadyLen, int rStride,
    int eStride, int* retIds, int* retDst, int* estIds, int* execLen) {
  __shared__ unsigned s_hist[256];
  __shared__ unsigned s_sel[2];
  __shared__ int s_warp[32];
  const int item = blockIdx.x;
  const int nc = clusters[item];
  const int r = rCount[item];
  const int e = eCount[item];
  const unsigned* keys = reinterpret_cast<const unsigned*>(scores + (size_t)item * cStride);
  const int* sizes = clusterSize + centBase[item];
  unsigned keyAll = 0, keyR = 0;
  int quotaAll = 0, quotaR = 0;
  if (r + e > 0) radix_kth_largest(keys, nc, r + e, s_hist, s_sel, keyAll, quotaAll);
  if (r > 0) radix_kth_largest(keys, nc, r, s_hist, s_sel, keyR, quotaR);
  int eqAllSeen = 0, eqRSeen = 0, retSeen = 0, estSeen = 0;
  int rowsSeen = steadyLen[item];
  for (int base = 0; base < nc; base += SELECT_THREADS) {
    const int c = base + threadIdx.x;
    const bool in = c < nc;
    const unsigned x = in ? keys[c] : 0u;
    const bool eqAll = in && r + e > 0 && x == keyAll;
    const bool eqR = in && r > 0 && x == keyR;
    int total;
    const int eqRank = block_exclusive_scan((eqAll ? 1 : 0) | (eqR ? 1 << 16 : 0), s_warp, total);
    const bool selAll = in && r + e > 0 && (x > keyAll || (eqAll && eqAllSeen + (eqRank & 0xffff) < quotaAll));
    const bool selR = in && r > 0 && (x > keyR || (eqR && eqRSeen + (eqRank >> 16) < quotaR));
    const bool isRet = selR;
    const bool isEst = selAll && !selR;
    eqAllSeen += total & 0xffff;
    eqRSeen += total >> 16;
    int flags;
    const int pos = block_exclusive_scan((isRet ? 1 : 0) | (isEst ? 1 << 16 : 0), s_warp, flags);
    int rows;
    const int rowPos = block_exclusive_scan(isRet ? sizes[c] : 0, s_warp, rows);
    if (isRet) {
      const int i = retSeen + (pos & 0xffff);
      retIds[(size_t)item * rStride + i] = c;
      retDst[(size_t)item * rStride + i] = rowsSeen + rowPos;
    }
    if (isEst) estIds[(size_t)item * eStride + estSeen + (pos >> 16)] = c;
    retSeen += flags & 0xffff;
    estSeen += flags >> 16;
    rowsSeen += rows;
  }
  if (threadIdx.x == 0) execLen[item] = rowsSeen;
}

// Block per task, THREADS threads: copies `rows` K and V rows from source src (0, 1 or 2) at row
// srcRow to the execution buffer at row dstRow. Rows are whole multiples of 16 bytes.
__global__ void __launch_bounds__(THREADS) gather_tasks(
    const int* taskSrc, const long long* taskSrcRow, const long long* taskDstRow, const int* taskRows,
    const char* srcK0, const char* srcV0, const char* srcK1, const char* srcV1, const char* srcK2,
    const char* srcV2, char* dstK, char* dstV, long long rowBytes) {
  const int t = blockIdx.x;
  const int src = taskSrc[t];
  const char* sk = src == 0 ? srcK0 : (src == 1 ? srcK1 : srcK2);
  const char* sv = src == 0 ? srcV0 : (src == 1 ? srcV1 : srcV2);
  const size_t from = (size_t)taskSrcRow[t] * rowBytes;
  const size_t to = (size_t)taskDstRow[t] * rowBytes;
  const size_t words = (size_t)taskRows[t] * rowBytes / 16;
  const uint4* ks = reinterpret_cast<const uint4*>(sk + from);
  const uint4* vs = reinterpret_cast<const uint4*>(sv + from);
  uint4* kd = reinterpret_cast<uint4*>(dstK + to);
  uint4* vd = reinterpret_cast<uint4*>(dstV + to);
  for (size_t i = threadIdx.x; i < words; i += THREADS) {
    kd[i] = ks[i];
    vd[i] = vs[i];
  }
}

// Block (i, item): copies retrieved cluster i of the item from the device-resident
// cluster-contiguous pool to its rows in the execution buffer.
__global__ void __launch_bounds__(THREADS) gather_clusters(
    const char* srcK, const char* srcV, const long long* clusterRow, const int* clusterSize,
    const long long* centBase, const int* rCount, const int* retIds, const int* retDst, int rStride,
    const long long* execBase, char* dstK, char* dstV, long long rowBytes) {
  const int item = blockIdx.y;
  const int i = blockIdx.x;
  if (i >= rCount[item]) return;
  const long long c = centBase[item] + retIds[(size_t)item * rStride + i];
  const size_t from = (size_t)clusterRow[c] * rowBytes;
  const size_t to = (size_t)(execBase[item] + retDst[(size_t)item * rStride + i]) * rowBytes;
  const size_t words = (size_t)clusterSize[c] * rowBytes / 16;
  const uint4* ks = reinterpret_cast<const uint4*>(srcK + from);
  const uint4* vs = reinterpret_cast<const uint4*>(srcV + from);
  uint4* kd = reinterpret_cast<uint4*>(dstK + to);
  uint4* vd = reinterpret_cast<uint4*>(dstV + to);
  for (size_t w = threadIdx.x; w < words; w += THREADS) {
    kd[w] = __ldg(ks + w);
    vd[w] = __ldg(vs + w);
  }
}

// Block item, 256 threads: the log-sum-exp merge of the item's `parts` partial states (empty ones,
// Z = 0, are skipped): out[h] = sum_p e^(m_p - M) O_p / sum_p e^(m_p - M) Z_p; zeros if all empty.
__global__ void __launch_bounds__(256) merge_partials(const float* partM, const float* partL,
                                                      const float* partO, int parts, int g, int d,
                                                      float* out) {
  const int item = blockIdx.x;
  for (int h = 0; h < g; ++h) {
    float M = -INFINITY;
    for (int p = 0; p < parts; ++p) {
      const size_t at = ((size_t)item * parts + p) * g + h;
      if (partL[at] > 0.f) M = fmaxf(M, partM[at]);
    }
    for (int c = threadIdx.x; c < d; c += blockDim.x) {
      float L = 0.f, o = 0.f;
      for (int p = 0; p < parts; ++p) {
        const size_t at = ((size_t)item * parts + p) * g + h;
        const float l = partL[at];
        if (l > 0.f) {
          const float w = expf(partM[at] - M);
          L += w * l;
          o += w * partO[at * d + c];
        }
      }
      out[((size_t)item * g + h) * d + c] = L > 0.f ? o / L : 0.f;
    }
  }
}

// Synthetic clustered K/V for benchmarks, generated on the device (a hash per element, no host
// traffic): row j of item i belongs to cluster clusterOf = j / 16 (clusters of 16 rows); its key is
// centre(cluster) + noise, its value noise. Output type bf16 (bits) or f32.
__device__ __forceinline__ float hash_uniform(unsigned long long x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  x ^= x >> 31;
  return (float)(x >> 40) * (1.0f / 16777216.0f) * 2.f - 1.f;
}

__device__ __forceinline__ unsigned short to_bf16(float f) {
  unsigned b = __float_as_uint(f);
  b += 0x7fffu + ((b >> 16) & 1u);
  return (unsigned short)(b >> 16);
}

__global__ void synth_kv(char* K, char* V, long long rows, int d, int bf16, unsigned long long seed) {
  const long long n = rows * d;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x) {
    const long long row = i / d;
    const int c = (int)(i % d);
    const long long cluster = row / 16;
    const float key = 2.f * hash_uniform(seed ^ (cluster * 1315423911ull + c))
        + 0.5f * hash_uniform(seed * 31 + i);
    const float val = hash_uniform(seed * 7 + 3 * i + 1);
    if (bf16) {
      reinterpret_cast<unsigned short*>(K)[i] = to_bf16(key);
      reinterpret_cast<unsigned short*>(V)[i] = to_bf16(val);
    } else {
      reinterpret_cast<float*>(K)[i] = key;
      reinterpret_cast<float*>(V)[i] = val;
    }
  }
}

// Per cluster (block): centroid = mean of its stored keys, value sum = sum of its stored values.
__global__ void cluster_summaries(const char* K, const char* V, const long long* clusterRow,
                                  const int* clusterSize, long long clusters, int d, int bf16,
                                  float* centroids, float* valueSums) {
  for (long long c = blockIdx.x; c < clusters; c += gridDim.x) {
    const long long r0 = clusterRow[c];
    const int n = clusterSize[c];
    for (int t = threadIdx.x; t < d; t += blockDim.x) {
      float ks = 0.f, vs = 0.f;
      for (int j = 0; j < n; ++j) {
        const long long at = (r0 + j) * d + t;
        if (bf16) {
          ks += __uint_as_float((unsigned)reinterpret_cast<const unsigned short*>(K)[at] << 16);
          vs += __uint_as_float((unsigned)reinterpret_cast<const unsigned short*>(V)[at] << 16);
        } else {
          ks += reinterpret_cast<const float*>(K)[at];
          vs += reinterpret_cast<const float*>(V)[at];
        }
      }
      centroids[c * d + t] = ks / n;
      valueSums[c * d + t] = vs;
    }
  }
}

}  // extern "C"
