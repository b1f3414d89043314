// Joseph projection along arbitrary LOR endpoint arrays (the lowest projector
// layer, ARCHITECTURE contract 3): the CUDA twins of forward_lors,
// adjoint_lors, forward_lors_tof and adjoint_lors_tof in petrecon/projectors.
//
// xstart, xend: float32 (n, 3) in mm; values: float32 (n,) or (n, n_tof);
// image: float32 (nx, ny, nz) C order; shape int32[3]; origin and voxel size
// float64[3]. One thread per LOR (per LOR and TOF bin for the TOF forward,
// blockIdx.y = TOF bin). The adjoint accumulates with atomicAdd into an image
// the caller has zeroed.

#include "joseph.cuh"

struct LorArrays {
    const float* __restrict__ xstart;
    const float* __restrict__ xend;
    const float* __restrict__ offsets_mm;  // per-LOR TOF centre offset, or null
    long long n_lors;
    long long tof_stride;                  // 1: values are (n, n_tof)
    int n_tof;

    __device__ long long get(long long i, float xs[3], float xe[3], float& offset_mm) const {
        for (int ax = 0; ax < 3; ++ax) {
            xs[ax] = __ldg(xstart + 3 * i + ax);
            xe[ax] = __ldg(xend + 3 * i + ax);
        }
        offset_mm = offsets_mm ? __ldg(offsets_mm + i) : 0.0f;
        return i * n_tof;
    }
};

__device__ inline LorArrays lor_arrays(const float* xstart, const float* xend, const float* offsets_mm,
                                       long long n_lors, int n_tof) {
    LorArrays src;
    src.xstart = xstart;
    src.xend = xend;
    src.offsets_mm = offsets_mm;
    src.n_lors = n_lors;
    src.tof_stride = 1;
    src.n_tof = n_tof;
    return src;
}

extern "C" __global__ void joseph_forward_lors(const float* image, const float* xstart, const float* xend,
                                               long long n_lors, const int* shape, const double* origin_mm,
                                               const double* voxel_mm, float* out) {
    forward_body(lor_arrays(xstart, xend, 0, n_lors, 1), image, make_grid(shape, origin_mm, voxel_mm), out);
}

extern "C" __global__ void joseph_adjoint_lors(const float* values, const float* xstart, const float* xend,
                                               long long n_lors, const int* shape, const double* origin_mm,
                                               const double* voxel_mm, float* image) {
    adjoint_body(lor_arrays(xstart, xend, 0, n_lors, 1), values, make_grid(shape, origin_mm, voxel_mm), image);
}

extern "C" __global__ void joseph_forward_tof_lors(const float* image, const float* xstart, const float* xend,
                                                   const float* offsets_mm, long long n_lors, const int* shape,
                                                   const double* origin_mm, const double* voxel_mm,
                                                   const float* edges_mm, int n_tof, float sigma_mm, float* out) {
    forward_tof_body(lor_arrays(xstart, xend, offsets_mm, n_lors, n_tof), image,
                     make_grid(shape, origin_mm, voxel_mm), edges_mm, n_tof, sigma_mm, out);
}

extern "C" __global__ void joseph_adjoint_tof_lors(const float* values, const float* xstart, const float* xend,
                                                   const float* offsets_mm, long long n_lors, const int* shape,
                                                   const double* origin_mm, const double* voxel_mm,
                                                   const float* edges_mm, int n_tof, float sigma_mm, float* image) {
    adjoint_tof_body(lor_arrays(xstart, xend, offsets_mm, n_lors, n_tof), values,
                     make_grid(shape, origin_mm, voxel_mm), edges_mm, n_tof, sigma_mm, image);
}
