// Joseph forward and adjoint projection on the GPU: the device functions
// shared by the LOR-array kernels (joseph_lors.cu) and the sinogram kernels
// (joseph_sinogram.cu).
//
// They compute the same function as the numba kernels in
// petrecon/projectors/joseph.py and tof.py (read those docstrings first):
//   * dominant axis a = the largest |direction| in voxel-index units; the LOR
//     is sampled on the planes of voxel centres along a that lie on the
//     segment [xstart, xend] and where the other two index coordinates are in
//     [-1, n]; each sample is a bilinear interpolation in the other two axes,
//     neighbours outside the image weigh 0; weight step_mm = |LOR| / |dp_a|;
//   * TOF: a sample at signed distance t from the LOR midpoint (towards xend)
//     gives TOF bin k the weight 0.5 (erf((e[k+1] - t') / (sqrt 2 sigma))
//     - erf((e[k] - t') / (sqrt 2 sigma))), t' = t - offset, erf taken as +-1
//     beyond CUTOFF_SIGMA sigma.
//
// Precision: the per-LOR set-up (dominant axis, plane range, slopes) runs in
// float64 exactly as on the CPU, so both backends visit the same planes; the
// per-sample arithmetic runs in float32 (positions are < 1e-4 voxel apart
// from the float64 ones, the interpolation is continuous in them). The CPU
// kernel's "inner plane" fast path gives the same weights as the checked
// bilinear interpolation and is not needed here: the checked form costs a few
// integer compares per sample against four gathered loads.
//
// Written for NVRTC (no host headers); compiles with nvcc as well.

#ifndef PETRECON_JOSEPH_CUH
#define PETRECON_JOSEPH_CUH

#define PETRECON_CUTOFF_SIGMA 5.0f

// Image geometry: shape, C-order strides, origin and voxel size (mm).
struct Grid {
    int n[3];
    int stride[3];
    double origin_mm[3];
    double voxel_mm[3];
};

__device__ inline Grid make_grid(const int* shape, const double* origin_mm, const double* voxel_mm) {
    Grid g;
    for (int ax = 0; ax < 3; ++ax) {
        g.n[ax] = shape[ax];
        g.origin_mm[ax] = origin_mm[ax];
        g.voxel_mm[ax] = voxel_mm[ax];
    }
    g.stride[0] = shape[1] * shape[2];
    g.stride[1] = shape[2];
    g.stride[2] = 1;
    return g;
}

// Per-LOR constants of the plane-by-plane traversal (see lor_setup in joseph.py).
struct Lor {
    int a, b, c;          // dominant axis and the other two
    int n_b, n_c;         // image size along b and c
    int stride_a, stride_b, stride_c;
    int i_first, i_last;  // sampled planes, inclusive; empty when i_first > i_last
    float pb_first;       // index coordinate along b at plane i_first
    float pc_first;       // ... along c
    float slope_b, slope_c;
    float step_mm;        // LOR length per plane
    double t_first_mm;    // signed distance from the midpoint at plane i_first
    double dt_mm;         // change of that distance per plane (signed)
};

// v[ax] with a run-time ax, without indexing a local array (keeps v in registers).
__device__ inline double pick(const double v[3], int ax) { return ax == 0 ? v[0] : (ax == 1 ? v[1] : v[2]); }
__device__ inline int pick(const int v[3], int ax) { return ax == 0 ? v[0] : (ax == 1 ? v[1] : v[2]); }

// Narrow [lo, hi] to the planes where p_min <= p0_o + (i - p0_a) * slope_o <= p_max.
__device__ inline void axis_range(double p0_a, double p0_o, double slope_o, double p_min,
                                  double p_max, double& lo, double& hi) {
    if (slope_o == 0.0) {
        if (p0_o < p_min || p0_o > p_max) {
            lo = 1.0;
            hi = 0.0;
        }
        return;
    }
    double t_lo = p0_a + (p_min - p0_o) / slope_o;
    double t_hi = p0_a + (p_max - p0_o) / slope_o;
    if (t_lo > t_hi) {
        double swap = t_lo;
        t_lo = t_hi;
        t_hi = swap;
    }
    lo = fmax(lo, t_lo);
    hi = fmin(hi, t_hi);
}

__device__ inline Lor lor_setup(const float xs[3], const float xe[3], const Grid& g) {
    double p0[3], dp[3];
    double length_sq_mm2 = 0.0;
    for (int ax = 0; ax < 3; ++ax) {
        double s = (double)xs[ax];
        double e = (double)xe[ax];
        p0[ax] = (s - g.origin_mm[ax]) / g.voxel_mm[ax];
        dp[ax] = (e - s) / g.voxel_mm[ax];
        length_sq_mm2 += (e - s) * (e - s);
    }
    double length_mm = sqrt(length_sq_mm2);
    Lor lor;
    int a = 0;
    if (fabs(dp[1]) > fabs(dp[a])) a = 1;
    if (fabs(dp[2]) > fabs(dp[a])) a = 2;
    lor.a = a;
    lor.b = (a + 1) % 3;
    lor.c = (a + 2) % 3;
    lor.n_b = pick(g.n, lor.b);
    lor.n_c = pick(g.n, lor.c);
    lor.stride_a = pick(g.stride, a);
    lor.stride_b = pick(g.stride, lor.b);
    lor.stride_c = pick(g.stride, lor.c);
    // An empty traversal (i_first > i_last) projects to exactly 0: every field is defined.
    lor.i_first = 1;
    lor.i_last = 0;
    lor.pb_first = lor.pc_first = lor.slope_b = lor.slope_c = lor.step_mm = 0.0f;
    lor.t_first_mm = lor.dt_mm = 0.0;
    double p0_a = pick(p0, a), p0_b = pick(p0, lor.b), p0_c = pick(p0, lor.c);
    double dp_a = pick(dp, a);
    if (dp_a == 0.0) return lor;
    double slope_b = pick(dp, lor.b) / dp_a;
    double slope_c = pick(dp, lor.c) / dp_a;
    double lo = fmax(0.0, fmin(p0_a, p0_a + dp_a));
    double hi = fmin(pick(g.n, a) - 1.0, fmax(p0_a, p0_a + dp_a));
    axis_range(p0_a, p0_b, slope_b, -1.0, (double)lor.n_b, lo, hi);
    axis_range(p0_a, p0_c, slope_c, -1.0, (double)lor.n_c, lo, hi);
    if (lo > hi) return lor;
    lor.i_first = (int)ceil(lo);
    lor.i_last = (int)floor(hi);
    double s_first = lor.i_first - p0_a;
    lor.pb_first = (float)(p0_b + s_first * slope_b);
    lor.pc_first = (float)(p0_c + s_first * slope_c);
    lor.slope_b = (float)slope_b;
    lor.slope_c = (float)slope_c;
    lor.step_mm = (float)(length_mm / fabs(dp_a));
    lor.dt_mm = length_mm / dp_a;
    lor.t_first_mm = -0.5 * length_mm + s_first * lor.dt_mm;
    return lor;
}

// The four bilinear neighbours of (p_b, p_c): offsets from the plane start
// and weights; neighbours outside the image weigh 0 and get an in-image offset.
struct Bilinear {
    int o00, o01, o10, o11;
    float w00, w01, w10, w11;
};

__device__ inline Bilinear bilinear(float p_b, float p_c, int n_b, int n_c, int stride_b, int stride_c) {
    float f_b = floorf(p_b);
    float f_c = floorf(p_c);
    float u_b = p_b - f_b;
    float u_c = p_c - f_c;
    int i_b = (int)f_b;
    int i_c = (int)f_c;
    float wb0 = (i_b >= 0 && i_b < n_b) ? 1.0f - u_b : 0.0f;
    float wb1 = (i_b + 1 >= 0 && i_b + 1 < n_b) ? u_b : 0.0f;
    float wc0 = (i_c >= 0 && i_c < n_c) ? 1.0f - u_c : 0.0f;
    float wc1 = (i_c + 1 >= 0 && i_c + 1 < n_c) ? u_c : 0.0f;
    int ob0 = min(max(i_b, 0), n_b - 1) * stride_b;
    int ob1 = min(max(i_b + 1, 0), n_b - 1) * stride_b;
    int oc0 = min(max(i_c, 0), n_c - 1) * stride_c;
    int oc1 = min(max(i_c + 1, 0), n_c - 1) * stride_c;
    Bilinear r;
    r.o00 = ob0 + oc0;
    r.o01 = ob0 + oc1;
    r.o10 = ob1 + oc0;
    r.o11 = ob1 + oc1;
    r.w00 = wb0 * wc0;
    r.w01 = wb0 * wc1;
    r.w10 = wb1 * wc0;
    r.w11 = wb1 * wc1;
    return r;
}

// Bilinear sample of plane i of the LOR (without the step length).
__device__ inline float sample(const float* __restrict__ image, const Lor& lor, int i) {
    float k = (float)(i - lor.i_first);
    Bilinear w = bilinear(lor.pb_first + k * lor.slope_b, lor.pc_first + k * lor.slope_c,
                          lor.n_b, lor.n_c, lor.stride_b, lor.stride_c);
    const float* plane = image + (long long)i * lor.stride_a;
    return w.w00 * __ldg(plane + w.o00) + w.w01 * __ldg(plane + w.o01)
         + w.w10 * __ldg(plane + w.o10) + w.w11 * __ldg(plane + w.o11);
}

// Add value times the bilinear weights of plane i into image.
__device__ inline void scatter(float* image, const Lor& lor, int i, float value) {
    float k = (float)(i - lor.i_first);
    Bilinear w = bilinear(lor.pb_first + k * lor.slope_b, lor.pc_first + k * lor.slope_c,
                          lor.n_b, lor.n_c, lor.stride_b, lor.stride_c);
    float* plane = image + (long long)i * lor.stride_a;
    if (w.w00 != 0.0f) atomicAdd(plane + w.o00, w.w00 * value);
    if (w.w01 != 0.0f) atomicAdd(plane + w.o01, w.w01 * value);
    if (w.w10 != 0.0f) atomicAdd(plane + w.o10, w.w10 * value);
    if (w.w11 != 0.0f) atomicAdd(plane + w.o11, w.w11 * value);
}

// erf((edge - t) * scale), taken as -1 / +1 beyond -cutoff / +cutoff (as _tof_weights).
__device__ inline float clipped_erf(float edge_mm, float t_mm, float scale, float cutoff_mm) {
    float dist_mm = edge_mm - t_mm;
    if (dist_mm < -cutoff_mm) return -1.0f;
    if (dist_mm > cutoff_mm) return 1.0f;
    return erff(dist_mm * scale);
}

// ---------------------------------------------------------------------------
// Kernel bodies, templated on where the LOR endpoints come from. A source
// provides  n_lors, tof_stride  and  __device__ long long get(long long i,
// float xs[3], float xe[3], float& offset_mm)  returning the index of the
// LOR's first value (TOF bin k at  base + k * tof_stride).
// ---------------------------------------------------------------------------

template <class Source>
__device__ inline void forward_body(const Source& src, const float* __restrict__ image, const Grid& g,
                                    float* __restrict__ out) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= src.n_lors) return;
    float xs[3], xe[3], offset_mm;
    long long base = src.get(i, xs, xe, offset_mm);
    Lor lor = lor_setup(xs, xe, g);
    float total = 0.0f;
    for (int p = lor.i_first; p <= lor.i_last; ++p) total += sample(image, lor, p);
    out[base] = total * lor.step_mm;
}

template <class Source>
__device__ inline void adjoint_body(const Source& src, const float* __restrict__ values, const Grid& g,
                                    float* image) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= src.n_lors) return;
    float xs[3], xe[3], offset_mm;
    long long base = src.get(i, xs, xe, offset_mm);
    float value = __ldg(values + base);
    if (value == 0.0f) return;
    Lor lor = lor_setup(xs, xe, g);
    float scaled = lor.step_mm * value;
    for (int p = lor.i_first; p <= lor.i_last; ++p) scatter(image, lor, p, scaled);
}

// One thread per (LOR, TOF bin): only the planes whose sample lies within
// CUTOFF_SIGMA sigma of the bin (t' in [e[k] - cutoff, e[k+1] + cutoff]) are
// visited; all others have weight exactly 0 in the CPU kernel too.
template <class Source>
__device__ inline void forward_tof_body(const Source& src, const float* __restrict__ image, const Grid& g,
                                        const float* __restrict__ edges_mm, int n_tof, float sigma_mm,
                                        float* __restrict__ out) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    int k = blockIdx.y;
    if (i >= src.n_lors || k >= n_tof) return;
    float xs[3], xe[3], offset_mm;
    long long base = src.get(i, xs, xe, offset_mm);
    Lor lor = lor_setup(xs, xe, g);
    float cutoff_mm = PETRECON_CUTOFF_SIGMA * sigma_mm;
    float scale = 1.0f / (1.41421356237309515f * sigma_mm);
    float e_lo = edges_mm[k], e_hi = edges_mm[k + 1];
    int p_first = lor.i_first, p_last = lor.i_last;
    if (p_first <= p_last) {
        // Planes p with t(p) - offset in [e_lo - cutoff, e_hi + cutoff], widened by one plane
        // so float rounding never drops a sample; the exact test is inside clipped_erf.
        double t_lo = (double)e_lo - cutoff_mm + offset_mm - lor.t_first_mm;
        double t_hi = (double)e_hi + cutoff_mm + offset_mm - lor.t_first_mm;
        double k_a = t_lo / lor.dt_mm, k_b = t_hi / lor.dt_mm;
        double n_planes = (double)(lor.i_last - lor.i_first);
        // Clamped to [-2, n_planes + 2] before the conversion to int.
        double k_min = fmin(fmax(fmin(k_a, k_b), -2.0), n_planes + 2.0);
        double k_max = fmin(fmax(fmax(k_a, k_b), -2.0), n_planes + 2.0);
        p_first = max(p_first, lor.i_first + (int)floor(k_min) - 1);
        p_last = min(p_last, lor.i_first + (int)ceil(k_max) + 1);
    }
    float total = 0.0f;
    for (int p = p_first; p <= p_last; ++p) {
        float t_mm = (float)(lor.t_first_mm + (p - lor.i_first) * lor.dt_mm) - offset_mm;
        float weight = 0.5f * (clipped_erf(e_hi, t_mm, scale, cutoff_mm) - clipped_erf(e_lo, t_mm, scale, cutoff_mm));
        if (weight != 0.0f) total += weight * sample(image, lor, p);
    }
    out[base + (long long)k * src.tof_stride] = total * lor.step_mm;
}

// One thread per LOR: every plane back-projects the TOF-weighted sum of the
// LOR's bin values; edges beyond the cutoff cost a compare, not an erf.
template <class Source>
__device__ inline void adjoint_tof_body(const Source& src, const float* __restrict__ values, const Grid& g,
                                        const float* __restrict__ edges_mm, int n_tof, float sigma_mm,
                                        float* image) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= src.n_lors) return;
    float xs[3], xe[3], offset_mm;
    long long base = src.get(i, xs, xe, offset_mm);
    bool any = false;
    for (int k = 0; k < n_tof; ++k) any |= __ldg(values + base + (long long)k * src.tof_stride) != 0.0f;
    if (!any) return;
    Lor lor = lor_setup(xs, xe, g);
    float cutoff_mm = PETRECON_CUTOFF_SIGMA * sigma_mm;
    float scale = 1.0f / (1.41421356237309515f * sigma_mm);
    for (int p = lor.i_first; p <= lor.i_last; ++p) {
        float t_mm = (float)(lor.t_first_mm + (p - lor.i_first) * lor.dt_mm) - offset_mm;
        float previous = clipped_erf(__ldg(edges_mm), t_mm, scale, cutoff_mm);
        float tof_sum = 0.0f;
        for (int k = 0; k < n_tof; ++k) {
            float current = clipped_erf(__ldg(edges_mm + k + 1), t_mm, scale, cutoff_mm);
            float weight = 0.5f * (current - previous);
            if (weight != 0.0f) tof_sum += weight * __ldg(values + base + (long long)k * src.tof_stride);
            previous = current;
        }
        if (tof_sum != 0.0f) scatter(image, lor, p, lor.step_mm * tof_sum);
    }
}

#endif  // PETRECON_JOSEPH_CUH
