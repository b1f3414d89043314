// Histogramming of Siemens PETLINK 32-bit list-mode words into sinograms
// (reference/formats.md; word constants in petrecon/io/petlink.py).
//
// Semantics: the time is 0 ms before the first tag; an elapsed-time tag
// ((w >> 29) == 0b100) sets it to w & 0x1FFFFFFF; an event word (bit 31 = 0)
// is counted when start_ms <= time < end_ms. Its address a (bits 0-29)
// indexes the span-1 list-mode layout: s1 = a / (nv1 * nb), u = (a / nb) % nv1,
// b = a % nb; it lands in sinogram span1_map[s1] (dropped if -1), view
// u / view_mashing, bin b of the prompts (bit 30 = 1) or of the delays.
// In-window addresses >= span1_size are dropped and counted. Other tag words
// (bucket singles, gating, motion, bed) are skipped.
//
// The stream is cut into chunks of chunk_words words, one block per chunk.
// petlink_chunk_last_time finds the last time tag of every chunk; the caller
// turns that into the time in effect at the start of each chunk
// (chunk_start_ms); petlink_histogram then scans its chunk tile by tile, a
// block-wide max-scan of time-tag positions giving every word its time.
// Counts are accumulated with atomicAdd into uint32 sinograms the caller has
// zeroed. Written for NVRTC (no host headers); compiles with nvcc as well.

#define PETLINK_EVENT_FLAG 0x80000000u
#define PETLINK_PROMPT_FLAG 0x40000000u
#define PETLINK_ADDRESS_MASK 0x3FFFFFFFu
#define PETLINK_TIME_MASK 0x1FFFFFFFu
#define PETLINK_TAG_KIND_SHIFT 29
#define PETLINK_TIME_TAG_KIND 4u
#define PETLINK_MAX_WARPS 32

__device__ inline bool is_time_tag(unsigned int w) { return (w >> PETLINK_TAG_KIND_SHIFT) == PETLINK_TIME_TAG_KIND; }

// chunk_last_ms[c] = value of the last time tag in chunk c, or -1 if it has none.
extern "C" __global__ void petlink_chunk_last_time(const unsigned int* __restrict__ words, long long n_words,
                                                   long long chunk_words, int* chunk_last_ms) {
    __shared__ unsigned long long s_last_plus_one;  // position of the last time tag + 1, 0 if none
    if (threadIdx.x == 0) s_last_plus_one = 0;
    __syncthreads();
    long long first = (long long)blockIdx.x * chunk_words;
    long long end = min(first + chunk_words, n_words);
    unsigned long long last_plus_one = 0;
    for (long long i = first + threadIdx.x; i < end; i += blockDim.x)
        if (is_time_tag(__ldg(words + i))) last_plus_one = (unsigned long long)i + 1;
    if (last_plus_one) atomicMax(&s_last_plus_one, last_plus_one);
    __syncthreads();
    if (threadIdx.x == 0)
        chunk_last_ms[blockIdx.x] = s_last_plus_one ? (int)(words[s_last_plus_one - 1] & PETLINK_TIME_MASK) : -1;
}

extern "C" __global__ void petlink_histogram(const unsigned int* __restrict__ words, long long n_words,
                                             long long chunk_words, const int* __restrict__ chunk_start_ms,
                                             long long start_ms, long long end_ms,
                                             const int* __restrict__ span1_map, int n_views_span1, int n_bins,
                                             long long span1_size, int view_mashing, int n_views,
                                             unsigned int* prompts, unsigned int* delays,
                                             unsigned long long* n_dropped) {
    __shared__ unsigned int s_words[PETLINK_MAX_WARPS * 32];
    __shared__ int s_warp_last[PETLINK_MAX_WARPS];
    __shared__ int s_carry_ms;
    __shared__ unsigned int s_dropped;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    if (tid == 0) {
        s_carry_ms = chunk_start_ms[blockIdx.x];
        s_dropped = 0;
    }
    __syncthreads();
    long long first = (long long)blockIdx.x * chunk_words;
    long long end = min(first + chunk_words, n_words);
    long long view_size = (long long)n_views_span1 * n_bins;
    unsigned int dropped = 0;
    for (long long tile = first; tile < end; tile += blockDim.x) {
        long long i = tile + tid;
        bool valid = i < end;
        unsigned int w = valid ? __ldg(words + i) : 0u;
        // Inclusive max-scan of the positions of time tags within the tile.
        int last = (valid && is_time_tag(w)) ? tid : -1;
        for (int offset = 1; offset < 32; offset <<= 1) {
            int other = __shfl_up_sync(0xFFFFFFFFu, last, offset);
            if (lane >= offset) last = max(last, other);
        }
        s_words[tid] = w;
        if (lane == 31) s_warp_last[warp] = last;
        __syncthreads();
        for (int j = 0; j < warp; ++j) last = max(last, s_warp_last[j]);
        int time_ms = last >= 0 ? (int)(s_words[last] & PETLINK_TIME_MASK) : s_carry_ms;
        if (valid && !(w & PETLINK_EVENT_FLAG) && time_ms >= start_ms && time_ms < end_ms) {
            long long address = (long long)(w & PETLINK_ADDRESS_MASK);
            if (address >= span1_size) {
                ++dropped;
            } else {
                int s = __ldg(span1_map + address / view_size);
                if (s >= 0) {
                    long long rest = address % view_size;
                    long long target = ((long long)s * n_views + (rest / n_bins) / view_mashing) * n_bins
                                     + rest % n_bins;
                    atomicAdd(((w & PETLINK_PROMPT_FLAG) ? prompts : delays) + target, 1u);
                }
            }
        }
        __syncthreads();  // everybody has read s_words, s_warp_last and s_carry_ms
        if (tid == blockDim.x - 1) s_carry_ms = time_ms;  // the time after the whole tile
        __syncthreads();
    }
    if (dropped) atomicAdd(&s_dropped, dropped);
    __syncthreads();
    if (tid == 0 && s_dropped) atomicAdd(n_dropped, (unsigned long long)s_dropped);
}
