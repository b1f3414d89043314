// Peak float32 throughput probe for the roofline (petrecon/cuda/roofline.py):
// every thread runs 8 independent FMA chains for n_iterations steps, so the
// SMs' FMA pipes stay busy without memory traffic; 2 flops per FMA.

#define PEAK_CHAINS 8

extern "C" __global__ void fma_peak(float* out, int n_iterations, float multiplier, float addend) {
    float chain[PEAK_CHAINS];
    for (int k = 0; k < PEAK_CHAINS; ++k) chain[k] = threadIdx.x * 1e-3f + k;
    for (int i = 0; i < n_iterations; ++i) {
#pragma unroll
        for (int k = 0; k < PEAK_CHAINS; ++k) chain[k] = fmaf(chain[k], multiplier, addend);
    }
    float total = 0.0f;
    for (int k = 0; k < PEAK_CHAINS; ++k) total += chain[k];
    out[(long long)blockIdx.x * blockDim.x + threadIdx.x] = total;  // keeps the chains alive
}
