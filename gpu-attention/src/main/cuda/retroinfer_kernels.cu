// Wave attention on the GPU: the kernels of one decode step, batched over "items"
// (item = one request x one KV head; its g query heads are one query group).
//
// Semantics (ALGORITHM.md; the Java mirror is org.retroinfer.gpu.emulation.KernelEmulator):
//   centroid_logits_*   l[h][c] = scale * q_h . C[c]            (+ per-tile max and sum of exp);
//                       centroids in the K/V type
//   cluster_scores      s[c] = sum_h exp(l[h][c] - M_h) / Z_h   (softmax per head, summed over the group)
//   select_top          top r (retrieved) and next e (estimated) by (score, lower id first), both
//                       listed in ascending cluster id; exec length and each retrieved cluster's row
//                       in the execution buffer (steady zone first, then clusters in id order)
//   gather_tasks        execution-buffer assembly from up to three row sources (steady zone,
//                       block cache, pinned host tier read through a mapped pointer)
//   gather_index        RESIDENT mode: no K/V copied, the execution buffer's row indices into the
//                       device-resident pools instead (steady rows fixed, retrieved clusters' rows)
//   attend_stream_*     split-K exact attention over rows [base, base + len): per split the
//                       softmax state (m, Z, O = sum exp(l - m) v), flash-decoding style
//   attend_stream_indexed_*  the same over rows given by gather_index's row indices
//   estimate_partial_g* the estimation zone: m = max l, Z = sum size * exp(l - m),
//                       O = sum exp(l - m) * valueSum, from the centroid logits
//   merge_partials      the log-sum-exp merge of every partial state of an item: out = O / Z
//
// K/V rows are float32, float16 or bfloat16 (little-endian, the layout of wave-core's VectorStore);
// centroids are in the K/V type, value sums float32. Head dim d: a multiple of 16, at most 256. Each lane owns
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
constexpr int MERGE_THREADS = 256;
constexpr int MERGE_CHUNK = 1024;

struct F32 {
  static constexpr int BYTES = 4;
  static constexpr bool IS_BF16 = false;
};
struct F16 {
  static constexpr int BYTES = 2;
  static constexpr bool IS_BF16 = false;
};
struct BF16 {
  static constexpr int BYTES = 2;
  static constexpr bool IS_BF16 = true;
};

__device__ __forceinline__ float bf16_lo(unsigned w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float bf16_hi(unsigned w) { return __uint_as_float(w & 0xffff0000u); }
__device__ __forceinline__ float f16_lo(unsigned w) {
  return __half2float(__ushort_as_half((unsigned short)(w & 0xffffu)));
}
__device__ __forceinline__ float f16_hi(unsigned w) {
  return __half2float(__ushort_as_half((unsigned short)(w >> 16)));
}

// Raw 16-byte words of one slot (8 components) of a row: one for 16-bit types, two for float32.
template <typename T>
struct Slot {
  static constexpr int WORDS = T::BYTES == 4 ? 2 : 1;
};

template <typename T>
__device__ __forceinline__ void load_slot(const char* row, int slot, uint4 (&w)[Slot<T>::WORDS]) {
  const uint4* p = reinterpret_cast<const uint4*>(row) + slot * Slot<T>::WORDS;
#pragma unroll
  for (int i = 0; i < Slot<T>::WORDS; ++i) w[i] = __ldg(p + i);
}

template <typename T>
__device__ __forceinline__ void widen(const uint4 (&w)[Slot<T>::WORDS], float (&x)[8]) {
  if constexpr (T::BYTES == 4) {
    x[0] = __uint_as_float(w[0].x); x[1] = __uint_as_float(w[0].y);
    x[2] = __uint_as_float(w[0].z); x[3] = __uint_as_float(w[0].w);
    x[4] = __uint_as_float(w[1].x); x[5] = __uint_as_float(w[1].y);
    x[6] = __uint_as_float(w[1].z); x[7] = __uint_as_float(w[1].w);
  } else if constexpr (T::IS_BF16) {
    x[0] = bf16_lo(w[0].x); x[1] = bf16_hi(w[0].x); x[2] = bf16_lo(w[0].y); x[3] = bf16_hi(w[0].y);
    x[4] = bf16_lo(w[0].z); x[5] = bf16_hi(w[0].z); x[6] = bf16_lo(w[0].w); x[7] = bf16_hi(w[0].w);
  } else {
    x[0] = f16_lo(w[0].x); x[1] = f16_hi(w[0].x); x[2] = f16_lo(w[0].y); x[3] = f16_hi(w[0].y);
    x[4] = f16_lo(w[0].z); x[5] = f16_hi(w[0].z); x[6] = f16_lo(w[0].w); x[7] = f16_hi(w[0].w);
  }
}

// Components [8 * slot, 8 * slot + 8) of the row at `row` (16-byte aligned), widened to float.
template <typename T>
__device__ __forceinline__ void load8(const char* row, int slot, float (&x)[8]) {
  uint4 w[Slot<T>::WORDS];
  load_slot<T>(row, slot, w);
  widen<T>(w, x);
}

__device__ __forceinline__ int team_size(int slots) {
  int t = 1;
  while (t < slots) t <<= 1;
  return t;
}

// Unrolled, with the levels beyond the team's size predicated off (team is warp-uniform): a loop
// over a runtime team size costs several times the shuffles themselves in the hot loops.
__device__ __forceinline__ float team_sum(float v, int team) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    if (off < team) v += __shfl_xor_sync(FULL_MASK, v, off);
  }
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
      const float p = __expf(s_p[h][j] - mNew);
      s_p[h][j] = p;
      sum += s_w == nullptr ? p : p * s_w[j];
    }
    sum = warp_sum(sum);
    if (lane == 0) {
      const float alpha = s_l[h] == 0.f ? 0.f : __expf(mOld - mNew);
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

// Merges softmax state (mo, lo, ao) into (m, l, a): both are (max logit, sum of exp(l - max),
// sum of exp(l - max) v) over disjoint rows.
template <int G>
__device__ __forceinline__ void merge_state(int h, float mo, float lo, float& m, float& l, float (&a)[G][8],
                                            const float (&ao)[8]) {
  const float mNew = fmaxf(m, mo);
  const float ref = mNew == -INFINITY ? 0.f : mNew;
  const float x = expf(m - ref);
  const float y = expf(mo - ref);
  l = l * x + lo * y;
#pragma unroll
  for (int e = 0; e < 8; ++e) a[h][e] = a[h][e] * x + ao[e] * y;
  m = mNew;
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Split-K exact attention: block (split, item) attends rows [base + from, base + to) of K/V. Each
// team of lanes streams its own rows with its own online softmax state, U rows per step, with no
// block-wide barrier until the end, where the teams of a warp merge by shuffles and the warps through
// shared memory into the split's state. The loads are cp.async copies into a shared-memory ring, S
// steps deep: bytes in flight cost no registers, so each warp keeps S - 1 steps of K and V loading
// while it computes one (a variant that loaded into registers one step ahead was 5-7% slower on an
// H200). Every lane reads back only the 16-byte words it copied itself, so a lane's own wait_group
// is the only synchronisation the ring needs.
//
// INDEXED: row j of the item is not K[base + j] but idx[base + j]: r >= 0 is row r of the cluster
// pool (K, V), r < 0 row -r - 1 of the steady pool (Ks, Vs). Wave attention with every cluster in
// GPU memory reads its retrieved clusters in place through it, with no execution-buffer copy. The
// indices of a step are loaded one step before its copies are issued, so their latency is hidden.
template <typename T, int G, bool INDEXED>
__device__ void attend_stream_impl(const char* __restrict__ K, const char* __restrict__ V,
                                   const char* __restrict__ Ks, const char* __restrict__ Vs,
                                   const long long* __restrict__ idx,
                                   const long long* __restrict__ itemBase,
                                   const int* __restrict__ itemLen, const float* __restrict__ Q,
                                   int d, int g, float scale, int rowsPerSplit, int partsPerItem,
                                   int partOffset, float* __restrict__ partM,
                                   float* __restrict__ partL, float* __restrict__ partO) {
  constexpr int W = Slot<T>::WORDS;
  constexpr int U = W == 2 ? 1 : 2;  // rows per team per step
  constexpr int S = 4;               // steps in the ring: S - 1 of them in flight while one computes
  __shared__ uint4 s_buf[S][U][2][W][THREADS];
  __shared__ float s_acc[G][MAX_D];
  __shared__ float s_mw[WARPS][G];
  __shared__ float s_l[G];
  const int item = blockIdx.y;
  const int split = blockIdx.x;
  const Teams tm(d);
  const int len = itemLen[item];
  const int from = min(len, split * rowsPerSplit);
  const int to = min(len, from + rowsPerSplit);
  const size_t rowBytes = (size_t)d * T::BYTES;
  const long long base = itemBase[item];
  float q[G][8];
  float acc[G][8];
  float m[G];
  float l[G];
  load_queries<G>(tm, Q, item, g, d, q);
#pragma unroll
  for (int h = 0; h < G; ++h) {
    m[h] = -INFINITY;
    l[h] = 0.f;
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      q[h][e] *= scale;
      acc[h][e] = 0.f;
    }
  }
  for (int i = threadIdx.x; i < G * MAX_D; i += THREADS) s_acc[i / MAX_D][i % MAX_D] = 0.f;
  if (threadIdx.x < G) s_l[threadIdx.x] = 0.f;

  auto rowAt = [&](int r0, int u) { return r0 + u * tm.perWarp + tm.inWarp; };
  auto fetchIdx = [&](int r0, long long (&x)[U]) {
    if constexpr (INDEXED) {
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int j = rowAt(r0, u);
        x[u] = j < to ? __ldg(idx + base + j) : 0;
      }
    }
  };
  auto issue = [&](int r0, int slot, const long long (&x)[U]) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int j = rowAt(r0, u);
      if (tm.active && j < to) {
        const char* kr;
        const char* vr;
        if constexpr (INDEXED) {
          const long long r = x[u];
          kr = r >= 0 ? K + (size_t)r * rowBytes : Ks + (size_t)(-r - 1) * rowBytes;
          vr = r >= 0 ? V + (size_t)r * rowBytes : Vs + (size_t)(-r - 1) * rowBytes;
        } else {
          kr = K + (size_t)(base + j) * rowBytes;
          vr = V + (size_t)(base + j) * rowBytes;
        }
        const uint4* kp = reinterpret_cast<const uint4*>(kr) + tm.lane * W;
        const uint4* vp = reinterpret_cast<const uint4*>(vr) + tm.lane * W;
#pragma unroll
        for (int w = 0; w < W; ++w) {
          cp_async16(&s_buf[slot][u][0][w][threadIdx.x], kp + w);
          cp_async16(&s_buf[slot][u][1][w][threadIdx.x], vp + w);
        }
      }
    }
    cp_async_commit();  // also when empty: the group count stays the same for every lane
  };
  auto consume = [&](int r0, int slot) {
    uint4 kw[U][W];
    uint4 vw[U][W];
    bool valid[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      valid[u] = rowAt(r0, u) < to;
      const bool mine = valid[u] && tm.active;  // words this lane copied; the rest are stale
#pragma unroll
      for (int w = 0; w < W; ++w) {
        const uint4 z = make_uint4(0u, 0u, 0u, 0u);
        kw[u][w] = mine ? s_buf[slot][u][0][w][threadIdx.x] : z;
        vw[u][w] = mine ? s_buf[slot][u][1][w][threadIdx.x] : z;
      }
    }
    float s[U][G];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float k[8];
      widen<T>(kw[u], k);
#pragma unroll
      for (int h = 0; h < G; ++h) {
        float x = 0.f;
#pragma unroll
        for (int e = 0; e < 8; ++e) x = fmaf(q[h][e], k[e], x);
        x = team_sum(x, tm.size);
        s[u][h] = valid[u] ? x : -INFINITY;
      }
    }
#pragma unroll
    for (int h = 0; h < G; ++h) {
      float mx = s[0][h];
#pragma unroll
      for (int u = 1; u < U; ++u) mx = fmaxf(mx, s[u][h]);
      const float mNew = fmaxf(m[h], mx);
      const float ref = mNew == -INFINITY ? 0.f : mNew;
      const float alpha = __expf(m[h] - ref);
      float sum = 0.f;
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const float p = __expf(s[u][h] - ref);
        s[u][h] = p;
        sum += p;
      }
      l[h] = l[h] * alpha + sum;
      m[h] = mNew;
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[h][e] *= alpha;
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float v[8];
      widen<T>(vw[u], v);
#pragma unroll
      for (int h = 0; h < G; ++h)
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[h][e] = fmaf(s[u][h], v[e], acc[h][e]);
    }
  };

  const int step = tm.perWarp * U;
  const int stride = WARPS * step;
  const int r = from + tm.warp * step;  // warp-uniform
  if (r < to) {
    long long xp[S - 1][U];
#pragma unroll
    for (int p = 0; p < S - 1; ++p) fetchIdx(r + p * stride, xp[p]);
#pragma unroll
    for (int p = 0; p < S - 1; ++p) issue(r + p * stride, p, xp[p]);
    long long xn[U];
    fetchIdx(r + (S - 1) * stride, xn);
    for (int it = 0;; ++it) {
      const int rc = r + it * stride;
      cp_async_wait<S - 2>();  // step it has landed
      issue(rc + (S - 1) * stride, (it + S - 1) % S, xn);
      fetchIdx(rc + S * stride, xn);
      consume(rc, it % S);
      if (rc + stride >= to) break;
    }
  }
  cp_async_wait<0>();
  for (int off = tm.size; off < 32; off <<= 1) {
#pragma unroll
    for (int h = 0; h < G; ++h) {
      const float mo = __shfl_xor_sync(FULL_MASK, m[h], off);
      const float lo = __shfl_xor_sync(FULL_MASK, l[h], off);
      float ao[8];
#pragma unroll
      for (int e = 0; e < 8; ++e) ao[e] = __shfl_xor_sync(FULL_MASK, acc[h][e], off);
      merge_state<G>(h, mo, lo, m[h], l[h], acc, ao);
    }
  }
  const int lane32 = threadIdx.x & 31;
  if (lane32 == 0) {
#pragma unroll
    for (int h = 0; h < G; ++h) s_mw[tm.warp][h] = m[h];
  }
  __syncthreads();
#pragma unroll
  for (int h = 0; h < G; ++h) {
    if (h < g) {
      float mb = s_mw[0][h];
#pragma unroll
      for (int w = 1; w < WARPS; ++w) mb = fmaxf(mb, s_mw[w][h]);
      const float f = expf(m[h] - (mb == -INFINITY ? 0.f : mb));
      if (lane32 == 0) atomicAdd(&s_l[h], l[h] * f);
      if (tm.inWarp == 0 && tm.active) {
#pragma unroll
        for (int e = 0; e < 8; ++e) atomicAdd(&s_acc[h][tm.lane * 8 + e], acc[h][e] * f);
      }
    }
  }
  __syncthreads();
  const size_t part = (size_t)item * partsPerItem + partOffset + split;
  for (int i = threadIdx.x; i < g * d; i += THREADS) partO[part * g * d + i] = s_acc[i / d][i % d];
  if (threadIdx.x < g) {
    float mb = s_mw[0][threadIdx.x];
    for (int w = 1; w < WARPS; ++w) mb = fmaxf(mb, s_mw[w][threadIdx.x]);
    partM[part * g + threadIdx.x] = mb;
    partL[part * g + threadIdx.x] = s_l[threadIdx.x];
  }
}

// Centroid logits of tile blockIdx.x (TILE clusters) of item blockIdx.y, plus the tile's max and
// sum of exp per head. Centroids are stored in the K/V type (ranking reads centroids rounded to the
// keys' precision, as wave-core does). Each team streams its rows with every load of a step in
// flight; the logits go to global memory and to shared memory, where one warp per head then takes
// their max and sum of exp (no exponential in the streaming loop).
template <typename T, int G>
__device__ void centroid_logits_impl(const char* __restrict__ C, const long long* __restrict__ centBase,
                                     const int* __restrict__ clusters, const float* __restrict__ Q,
                                     int d, int g, float scale, int cStride, int tiles,
                                     float* __restrict__ logits, float* __restrict__ tileM,
                                     float* __restrict__ tileS) {
  constexpr int W = Slot<T>::WORDS;
  constexpr int U = 8 / W;
  __shared__ float s_l[G][TILE];
  const int item = blockIdx.y;
  const int nc = clusters[item];
  const int c0 = blockIdx.x * TILE;
  const Teams tm(d);
  const int n = max(0, min(TILE, nc - c0));
  const size_t rowBytes = (size_t)d * T::BYTES;
  const char* base = C + (size_t)(centBase[item] + c0) * rowBytes;
  float q[G][8];
  load_queries<G>(tm, Q, item, g, d, q);
#pragma unroll
  for (int h = 0; h < G; ++h)
#pragma unroll
    for (int e = 0; e < 8; ++e) q[h][e] *= scale;
  const int step = tm.perWarp * U;
  for (int r0 = tm.warp * step; r0 < n; r0 += WARPS * step) {
    uint4 kw[U][W];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int j = r0 + u * tm.perWarp + tm.inWarp;
      if (tm.active && j < n) {
        load_slot<T>(base + (size_t)j * rowBytes, tm.lane, kw[u]);
      } else {
#pragma unroll
        for (int i = 0; i < W; ++i) kw[u][i] = make_uint4(0u, 0u, 0u, 0u);
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float k[8];
      widen<T>(kw[u], k);
      const int j = r0 + u * tm.perWarp + tm.inWarp;
#pragma unroll
      for (int h = 0; h < G; ++h) {
        float x = 0.f;
#pragma unroll
        for (int e = 0; e < 8; ++e) x = fmaf(q[h][e], k[e], x);
        x = team_sum(x, tm.size);
        if (tm.lane == 0 && j < n && h < g) {
          logits[((size_t)item * g + h) * cStride + c0 + j] = x;
          s_l[h][j] = x;
        }
      }
    }
  }
  __syncthreads();
  const int lane = threadIdx.x & 31;
  for (int h = threadIdx.x >> 5; h < g; h += WARPS) {
    float mx = -INFINITY;
    for (int j = lane; j < n; j += 32) mx = fmaxf(mx, s_l[h][j]);
    mx = warp_max(mx);
    float sum = 0.f;
    for (int j = lane; j < n; j += 32) sum += expf(s_l[h][j] - mx);
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

__device__ __forceinline__ int warp_isum(int v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(FULL_MASK, v, off);
  return v;
}

// Sum of v over the lanes below this one.
__device__ __forceinline__ int warp_exclusive_isum(int v) {
  const int lane = threadIdx.x & 31;
  int x = v;
  for (int o = 1; o < 32; o <<= 1) {
    const int y = __shfl_up_sync(FULL_MASK, x, o);
    if (lane >= o) x += y;
  }
  return x - v;
}

// N counts, each the same in every lane of a warp: v[i] becomes the sum of count i over the warps
// before this one, total[i] its sum over the block. Block of SELECT_THREADS threads (32 warps);
// s_warp holds N * 32 ints, s_total N.
template <int N>
__device__ __forceinline__ void warps_exclusive(int (&v)[N], int (&total)[N], int* s_warp,
                                                int* s_total) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  if (lane == 0) {
#pragma unroll
    for (int i = 0; i < N; ++i) s_warp[i * 32 + warp] = v[i];
  }
  __syncthreads();
  if (warp == 0) {
#pragma unroll
    for (int i = 0; i < N; ++i) {
      const int x = s_warp[i * 32 + lane];
      int incl = x;
      for (int o = 1; o < 32; o <<= 1) {
        const int y = __shfl_up_sync(FULL_MASK, incl, o);
        if (lane >= o) incl += y;
      }
      s_warp[i * 32 + lane] = incl - x;
      if (lane == 31) s_total[i] = incl;
    }
  }
  __syncthreads();
#pragma unroll
  for (int i = 0; i < N; ++i) {
    v[i] = s_warp[i * 32 + warp];
    total[i] = s_total[i];
  }
  __syncthreads();
}

// Two order statistics of keys[0..n) at once, by a 4-pass 8-bit radix select: the kA-th and the
// kR-th largest (k = 0: not wanted, key and quota 0). `quota` gets how many keys equal to the k-th
// largest belong to the top k (the rest of the top k is strictly larger). Each pass builds both
// histograms in one sweep, one shared atomic per distinct bin per warp (__match_any_sync), and
// finds each bin with one warp (a scan over 8 bins per lane) instead of one thread's walk.
__device__ void radix_select2(const unsigned* keys, int n, int kA, int kR, unsigned* s_hist,
                              unsigned* s_sel, unsigned& keyA, int& quotaA, unsigned& keyR,
                              int& quotaR) {
  unsigned prefA = 0, prefR = 0, mask = 0;
  int kkA = kA, kkR = kR;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 512; i += blockDim.x) s_hist[i] = 0;
    __syncthreads();
    for (int base = 0; base < n; base += blockDim.x) {
      const int i = base + threadIdx.x;
      const unsigned x = i < n ? keys[i] : 0u;
      const unsigned bin = (x >> shift) & 255u;
      const bool inA = i < n && kkA > 0 && (x & mask) == prefA;
      const bool inR = i < n && kkR > 0 && (x & mask) == prefR;
      const unsigned peersA = __match_any_sync(FULL_MASK, inA ? bin : 256u);
      if (inA && lane == __ffs(peersA) - 1) atomicAdd(&s_hist[bin], (unsigned)__popc(peersA));
      const unsigned peersR = __match_any_sync(FULL_MASK, inR ? bin : 256u);
      if (inR && lane == __ffs(peersR) - 1) atomicAdd(&s_hist[256 + bin], (unsigned)__popc(peersR));
    }
    __syncthreads();
    if (warp < 2) {
      const unsigned* hist = s_hist + 256 * warp;
      const int kk = warp == 0 ? kkA : kkR;
      const unsigned pref = warp == 0 ? prefA : prefR;
      int sum = 0;
#pragma unroll
      for (int i = 0; i < 8; ++i) sum += (int)hist[255 - 8 * lane - i];  // bins in descending order
      int incl = sum;
      for (int o = 1; o < 32; o <<= 1) {
        const int y = __shfl_up_sync(FULL_MASK, incl, o);
        if (lane >= o) incl += y;
      }
      const int excl = incl - sum;
      if (kk <= 0) {
        if (lane == 0) {
          s_sel[2 * warp] = pref;
          s_sel[2 * warp + 1] = 0u;
        }
      } else if (excl < kk && (incl >= kk || lane == 31)) {
        // the first bin from the top where the count reaches kk (bin 0 takes the rest)
        int cum = excl;
        int b = 0;
        for (int i = 0; i < 8; ++i) {
          b = 255 - 8 * lane - i;
          const int c = (int)hist[b];
          if (cum + c >= kk || b == 0) break;
          cum += c;
        }
        s_sel[2 * warp] = pref | ((unsigned)b << shift);
        s_sel[2 * warp + 1] = (unsigned)(kk - cum);
      }
    }
    __syncthreads();
    prefA = s_sel[0];
    kkA = (int)s_sel[1];
    prefR = s_sel[2];
    kkR = (int)s_sel[3];
    mask |= 255u << shift;
    __syncthreads();
  }
  keyA = kA > 0 ? prefA : 0u;
  quotaA = kA > 0 ? kkA : 0;
  keyR = kR > 0 ? prefR : 0u;
  quotaR = kR > 0 ? kkR : 0;
}

}  // namespace retroinfer

using namespace retroinfer;

extern "C" {

#define ATTEND_STREAM(NAME, T, G, INDEXED)                                                      \
  __global__ void __launch_bounds__(THREADS) NAME(                                               \
      const char* K, const char* V, const char* Ks, const char* Vs, const long long* idx,        \
      const long long* itemBase, const int* itemLen, const float* Q, int d, int g, float scale,  \
      int rowsPerSplit, int partsPerItem, int partOffset, float* partM, float* partL,            \
      float* partO) {                                                                            \
    attend_stream_impl<T, G, INDEXED>(K, V, Ks, Vs, idx, itemBase, itemLen, Q, d, g, scale,      \
                                      rowsPerSplit, partsPerItem, partOffset, partM, partL,      \
                                      partO);                                                    \
  }

ATTEND_STREAM(attend_stream_bf16_g1, BF16, 1, false)
ATTEND_STREAM(attend_stream_bf16_g2, BF16, 2, false)
ATTEND_STREAM(attend_stream_bf16_g4, BF16, 4, false)
ATTEND_STREAM(attend_stream_bf16_g8, BF16, 8, false)
ATTEND_STREAM(attend_stream_f16_g1, F16, 1, false)
ATTEND_STREAM(attend_stream_f16_g2, F16, 2, false)
ATTEND_STREAM(attend_stream_f16_g4, F16, 4, false)
ATTEND_STREAM(attend_stream_f16_g8, F16, 8, false)
ATTEND_STREAM(attend_stream_f32_g1, F32, 1, false)
ATTEND_STREAM(attend_stream_f32_g2, F32, 2, false)
ATTEND_STREAM(attend_stream_f32_g4, F32, 4, false)
ATTEND_STREAM(attend_stream_f32_g8, F32, 8, false)
ATTEND_STREAM(attend_stream_indexed_bf16_g1, BF16, 1, true)
ATTEND_STREAM(attend_stream_indexed_bf16_g2, BF16, 2, true)
ATTEND_STREAM(attend_stream_indexed_bf16_g4, BF16, 4, true)
ATTEND_STREAM(attend_stream_indexed_bf16_g8, BF16, 8, true)
ATTEND_STREAM(attend_stream_indexed_f16_g1, F16, 1, true)
ATTEND_STREAM(attend_stream_indexed_f16_g2, F16, 2, true)
ATTEND_STREAM(attend_stream_indexed_f16_g4, F16, 4, true)
ATTEND_STREAM(attend_stream_indexed_f16_g8, F16, 8, true)
ATTEND_STREAM(attend_stream_indexed_f32_g1, F32, 1, true)
ATTEND_STREAM(attend_stream_indexed_f32_g2, F32, 2, true)
ATTEND_STREAM(attend_stream_indexed_f32_g4, F32, 4, true)
ATTEND_STREAM(attend_stream_indexed_f32_g8, F32, 8, true)

#define CENTROID_LOGITS(NAME, T, G)                                                              \
  __global__ void __launch_bounds__(THREADS) NAME(                                               \
      const char* C, const long long* centBase, const int* clusters, const float* Q, int d, int g, \
      float scale, int cStride, int tiles, float* logits, float* tileM, float* tileS) {          \
    centroid_logits_impl<T, G>(C, centBase, clusters, Q, d, g, scale, cStride, tiles, logits,    \
                               tileM, tileS);                                                    \
  }

CENTROID_LOGITS(centroid_logits_bf16_g1, BF16, 1)
CENTROID_LOGITS(centroid_logits_bf16_g2, BF16, 2)
CENTROID_LOGITS(centroid_logits_bf16_g4, BF16, 4)
CENTROID_LOGITS(centroid_logits_bf16_g8, BF16, 8)
CENTROID_LOGITS(centroid_logits_f16_g1, F16, 1)
CENTROID_LOGITS(centroid_logits_f16_g2, F16, 2)
CENTROID_LOGITS(centroid_logits_f16_g4, F16, 4)
CENTROID_LOGITS(centroid_logits_f16_g8, F16, 8)
CENTROID_LOGITS(centroid_logits_f32_g1, F32, 1)
CENTROID_LOGITS(centroid_logits_f32_g2, F32, 2)
CENTROID_LOGITS(centroid_logits_f32_g4, F32, 4)
CENTROID_LOGITS(centroid_logits_f32_g8, F32, 8)

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
  __shared__ unsigned s_hist[512];
  __shared__ unsigned s_sel[4];
  __shared__ int s_warp[3 * 32];
  __shared__ int s_total[3];
  const int item = blockIdx.x;
  const int nc = clusters[item];
  const int r = rCount[item];
  const int e = eCount[item];
  const unsigned* keys = reinterpret_cast<const unsigned*>(scores + (size_t)item * cStride);
  const int* sizes = clusterSize + centBase[item];
  unsigned keyAll = 0, keyR = 0;
  int quotaAll = 0, quotaR = 0;
  radix_select2(keys, nc, r + e, r, s_hist, s_sel, keyAll, quotaAll, keyR, quotaR);
  // Warp w owns the contiguous clusters [lo, hi) and walks them 32 at a time, coalesced: ranks
  // within a chunk come from ballots, ranks across warps from one exclusive sum over the warps'
  // totals, so ids stay in ascending order with three sweeps whatever the number of clusters.
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const unsigned below = (1u << lane) - 1u;
  const int per = (nc + 31) / 32;
  const int lo = min(nc, warp * per);
  const int hi = min(nc, lo + per);
  const bool wantAll = r + e > 0;
  const bool wantR = r > 0;
  int eqA = 0, eqR = 0;
  for (int c0 = lo; c0 < hi; c0 += 32) {
    const int c = c0 + lane;
    const unsigned x = c < hi ? keys[c] : 0u;
    eqA += __popc(__ballot_sync(FULL_MASK, c < hi && wantAll && x == keyAll));
    eqR += __popc(__ballot_sync(FULL_MASK, c < hi && wantR && x == keyR));
  }
  int eqBefore[2] = {eqA, eqR};
  int eqTotal[2];
  warps_exclusive<2>(eqBefore, eqTotal, s_warp, s_total);
  const int eqABefore = eqBefore[0];
  const int eqRBefore = eqBefore[1];
  // the decisions of the chunk at c0, given the equal keys seen before it
  struct Pick {
    bool ret, est;
    unsigned eqA, eqR;
  };
  auto pick = [&](int c, unsigned x, int seenA, int seenR) {
    const bool in = c < hi;
    const bool eqAll = in && wantAll && x == keyAll;
    const bool eqRet = in && wantR && x == keyR;
    const unsigned bA = __ballot_sync(FULL_MASK, eqAll);
    const unsigned bR = __ballot_sync(FULL_MASK, eqRet);
    const bool selAll = in && wantAll
        && (x > keyAll || (eqAll && seenA + __popc(bA & below) < quotaAll));
    const bool selR = in && wantR && (x > keyR || (eqRet && seenR + __popc(bR & below) < quotaR));
    return Pick{selR, selAll && !selR, bA, bR};
  };
  int nRet = 0, nEst = 0, rows = 0;
  {
    int seenA = eqABefore, seenR = eqRBefore;
    for (int c0 = lo; c0 < hi; c0 += 32) {
      const int c = c0 + lane;
      const unsigned x = c < hi ? keys[c] : 0u;
      const Pick k = pick(c, x, seenA, seenR);
      seenA += __popc(k.eqA);
      seenR += __popc(k.eqR);
      nRet += __popc(__ballot_sync(FULL_MASK, k.ret));
      nEst += __popc(__ballot_sync(FULL_MASK, k.est));
      rows += warp_isum(k.ret ? sizes[c] : 0);
    }
  }
  int pos[3] = {nRet, nEst, rows};
  int totals[3];
  warps_exclusive<3>(pos, totals, s_warp, s_total);
  int retPos = pos[0];
  int estPos = pos[1];
  int rowPos = steadyLen[item] + pos[2];
  const int totalRows = totals[2];
  {
    int seenA = eqABefore, seenR = eqRBefore;
    for (int c0 = lo; c0 < hi; c0 += 32) {
      const int c = c0 + lane;
      const unsigned x = c < hi ? keys[c] : 0u;
      const Pick k = pick(c, x, seenA, seenR);
      seenA += __popc(k.eqA);
      seenR += __popc(k.eqR);
      const unsigned bRet = __ballot_sync(FULL_MASK, k.ret);
      const unsigned bEst = __ballot_sync(FULL_MASK, k.est);
      const int size = k.ret ? sizes[c] : 0;
      const int rowsBefore = warp_exclusive_isum(size);
      if (k.ret) {
        const int i = retPos + __popc(bRet & below);
        retIds[(size_t)item * rStride + i] = c;
        retDst[(size_t)item * rStride + i] = rowPos + rowsBefore;
      }
      if (k.est) estIds[(size_t)item * eStride + estPos + __popc(bEst & below)] = c;
      retPos += __popc(bRet);
      estPos += __popc(bEst);
      rowPos += __shfl_sync(FULL_MASK, rowsBefore + size, 31);
    }
  }
  if (threadIdx.x == 0) execLen[item] = steadyLen[item] + totalRows;
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

// Block (i, item): the execution-buffer row indices of retrieved cluster i of the item, for
// attend_stream_indexed: its rows of the device-resident cluster pool, in place (no K/V copied).
__global__ void __launch_bounds__(THREADS) gather_index(
    const long long* clusterRow, const int* clusterSize, const long long* centBase,
    const int* rCount, const int* retIds, const int* retDst, int rStride, const long long* execBase,
    long long* idx) {
  const int item = blockIdx.y;
  const int i = blockIdx.x;
  if (i >= rCount[item]) return;
  const long long c = centBase[item] + retIds[(size_t)item * rStride + i];
  const long long from = clusterRow[c];
  long long* to = idx + execBase[item] + retDst[(size_t)item * rStride + i];
  const int n = clusterSize[c];
  for (int k = threadIdx.x; k < n; k += THREADS) to[k] = from + k;
}

// Block (item, head), MERGE_THREADS threads: the log-sum-exp merge of the item's `parts` partial
// states of that head (empty ones, Z = 0, are skipped): out = sum_p e^(m_p - M) O_p /
// sum_p e^(m_p - M) Z_p; zeros if all are empty. The weights of up to MERGE_CHUNK parts at a time
// sit in shared memory; the threads form groups of d, each group summing every groups-th part.
__global__ void __launch_bounds__(MERGE_THREADS) merge_partials(const float* partM, const float* partL,
                                                                const float* partO, int parts, int g,
                                                                int d, float* out) {
  __shared__ float s_w[MERGE_CHUNK];
  __shared__ float s_red[MERGE_THREADS / 32];
  __shared__ float s_o[MERGE_THREADS];
  const int item = blockIdx.x;
  const int h = blockIdx.y;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const size_t first = (size_t)item * parts;
  float mx = -INFINITY;
  for (int p = threadIdx.x; p < parts; p += MERGE_THREADS) {
    const size_t at = (first + p) * g + h;
    if (partL[at] > 0.f) mx = fmaxf(mx, partM[at]);
  }
  mx = warp_max(mx);
  if (lane == 0) s_red[warp] = mx;
  __syncthreads();
  float M = s_red[0];
  for (int w = 1; w < MERGE_THREADS / 32; ++w) M = fmaxf(M, s_red[w]);
  const float ref = M == -INFINITY ? 0.f : M;
  const int groups = max(1, MERGE_THREADS / d);
  const int grp = threadIdx.x / d;
  const int c = threadIdx.x - grp * d;
  const bool active = grp < groups && c < d;
  float z = 0.f;
  float o = 0.f;
  for (int p0 = 0; p0 < parts; p0 += MERGE_CHUNK) {
    const int n = min(MERGE_CHUNK, parts - p0);
    __syncthreads();
    for (int j = threadIdx.x; j < n; j += MERGE_THREADS) {
      const size_t at = (first + p0 + j) * g + h;
      const float l = partL[at];
      const float w = l > 0.f ? expf(partM[at] - ref) : 0.f;
      s_w[j] = w;
      z += w * l;
    }
    __syncthreads();
    if (active) {
      for (int j = grp; j < n; j += 4 * groups) {
        float x[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          const int jj = j + u * groups;
          x[u] = (jj < n && s_w[jj] != 0.f) ? partO[((first + p0 + jj) * g + h) * d + c] : 0.f;
        }
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          const int jj = j + u * groups;
          if (jj < n && s_w[jj] != 0.f) o = fmaf(s_w[jj], x[u], o);
        }
      }
    }
  }
  z = warp_sum(z);
  __syncthreads();
  if (lane == 0) s_red[warp] = z;
  s_o[threadIdx.x] = active ? o : 0.f;
  __syncthreads();
  if (grp == 0 && c < d) {
    float Z = 0.f;
    for (int w = 0; w < MERGE_THREADS / 32; ++w) Z += s_red[w];
    float sum = 0.f;
    for (int k = 0; k < groups; ++k) sum += s_o[k * d + c];
    out[((size_t)item * g + h) * d + c] = Z > 0.f ? sum / Z : 0.f;
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

// Per cluster (block): centroid = mean of its stored keys, stored in the K/V type (bf16 rounded to
// nearest even, as wave-core rounds its ranking copy); value sum = sum of its stored values, float32.
__global__ void cluster_summaries(const char* K, const char* V, const long long* clusterRow,
                                  const int* clusterSize, long long clusters, int d, int bf16,
                                  char* centroids, float* valueSums) {
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
      if (bf16) {
        reinterpret_cast<unsigned short*>(centroids)[c * d + t] = to_bf16(ks / n);
      } else {
        reinterpret_cast<float*>(centroids)[c * d + t] = ks / n;
      }
      valueSums[c * d + t] = vs;
    }
  }
}

}  // extern "C"
