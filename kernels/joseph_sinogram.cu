// Joseph projection between an image and (some views of) a sinogram, with the
// LOR endpoints computed on the GPU from small tables: never a per-bin
// endpoint table (the mMR span-1 sinogram has 354 M bins).
//
// Tables (float32, exactly the values SinogramLayout.lor_endpoints_mm would
// give, view mashing included):
//   xy1, xy2: (n_views_sel, n_bins, 2), transaxial xstart / xend of each bin;
//   z1, z2:   (n_sinograms,), axial xstart / xend of each sinogram.
// Thread i handles the LOR (view v, bin b, sinogram s) with
//   i = (v * n_bins + b) * n_sinograms + s,
// so the threads of a warp differ only in their axial position and read and
// write neighbouring voxels (z is the fastest image axis). Values are stored
// [TOF bin,] sinogram, view, bin: index ((k * n_sino + s) * n_views_sel + v) * n_bins + b.

#include "joseph.cuh"

struct SinogramLors {
    const float* __restrict__ xy1;
    const float* __restrict__ xy2;
    const float* __restrict__ z1;
    const float* __restrict__ z2;
    int n_sinograms, n_views, n_bins;
    long long n_lors;
    long long tof_stride;  // n_sinograms * n_views * n_bins

    __device__ long long get(long long i, float xs[3], float xe[3], float& offset_mm) const {
        int s = (int)(i % n_sinograms);
        long long vb = i / n_sinograms;  // v * n_bins + b
        xs[0] = __ldg(xy1 + 2 * vb);
        xs[1] = __ldg(xy1 + 2 * vb + 1);
        xs[2] = __ldg(z1 + s);
        xe[0] = __ldg(xy2 + 2 * vb);
        xe[1] = __ldg(xy2 + 2 * vb + 1);
        xe[2] = __ldg(z2 + s);
        offset_mm = 0.0f;
        return (long long)s * n_views * n_bins + vb;
    }
};

__device__ inline SinogramLors sinogram_lors(const float* xy1, const float* xy2, const float* z1, const float* z2,
                                             int n_sinograms, int n_views, int n_bins) {
    SinogramLors src;
    src.xy1 = xy1;
    src.xy2 = xy2;
    src.z1 = z1;
    src.z2 = z2;
    src.n_sinograms = n_sinograms;
    src.n_views = n_views;
    src.n_bins = n_bins;
    src.n_lors = (long long)n_sinograms * n_views * n_bins;
    src.tof_stride = src.n_lors;
    return src;
}

extern "C" __global__ void joseph_forward_sinogram(const float* image, const float* xy1, const float* xy2,
                                                   const float* z1, const float* z2, int n_sinograms, int n_views,
                                                   int n_bins, const int* shape, const double* origin_mm,
                                                   const double* voxel_mm, float* out) {
    forward_body(sinogram_lors(xy1, xy2, z1, z2, n_sinograms, n_views, n_bins), image,
                 make_grid(shape, origin_mm, voxel_mm), out);
}

extern "C" __global__ void joseph_adjoint_sinogram(const float* values, const float* xy1, const float* xy2,
                                                   const float* z1, const float* z2, int n_sinograms, int n_views,
                                                   int n_bins, const int* shape, const double* origin_mm,
                                                   const double* voxel_mm, float* image) {
    adjoint_body(sinogram_lors(xy1, xy2, z1, z2, n_sinograms, n_views, n_bins), values,
                 make_grid(shape, origin_mm, voxel_mm), image);
}

extern "C" __global__ void joseph_forward_tof_sinogram(const float* image, const float* xy1, const float* xy2,
                                                       const float* z1, const float* z2, int n_sinograms,
                                                       int n_views, int n_bins, const int* shape,
                                                       const double* origin_mm, const double* voxel_mm,
                                                       const float* edges_mm, int n_tof, float sigma_mm,
                                                       float* out) {
    forward_tof_body(sinogram_lors(xy1, xy2, z1, z2, n_sinograms, n_views, n_bins), image,
                     make_grid(shape, origin_mm, voxel_mm), edges_mm, n_tof, sigma_mm, out);
}

extern "C" __global__ void joseph_adjoint_tof_sinogram(const float* values, const float* xy1, const float* xy2,
                                                       const float* z1, const float* z2, int n_sinograms,
                                                       int n_views, int n_bins, const int* shape,
                                                       const double* origin_mm, const double* voxel_mm,
                                                       const float* edges_mm, int n_tof, float sigma_mm,
                                                       float* image) {
    adjoint_tof_body(sinogram_lors(xy1, xy2, z1, z2, n_sinograms, n_views, n_bins), values,
                     make_grid(shape, origin_mm, voxel_mm), edges_mm, n_tof, sigma_mm, image);
}
