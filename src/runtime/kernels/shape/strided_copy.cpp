// Strided gather-copy with merged dimensions and memcpy inner runs.
#include "runtime/kernels/shape/strided_copy.h"

#include <algorithm>
#include <cstring>

#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

template <typename T>
void copy_run(const T* in, int64_t stride, T* out, int64_t n) {
  if (stride == 0) {
    std::fill_n(out, n, in[0]);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = in[i * stride];
  }
}

void copy_inner(std::size_t elem_size, const uint8_t* in, int64_t stride, uint8_t* out, int64_t n) {
  if (stride == 1) {
    std::memcpy(out, in, static_cast<std::size_t>(n) * elem_size);
    return;
  }
  switch (elem_size) {
    case 1: copy_run(in, stride, out, n); break;
    case 2: copy_run(reinterpret_cast<const uint16_t*>(in), stride, reinterpret_cast<uint16_t*>(out), n); break;
    case 4: copy_run(reinterpret_cast<const uint32_t*>(in), stride, reinterpret_cast<uint32_t*>(out), n); break;
    case 8: copy_run(reinterpret_cast<const uint64_t*>(in), stride, reinterpret_cast<uint64_t*>(out), n); break;
    default:
      for (int64_t i = 0; i < n; ++i) std::memcpy(out + i * elem_size, in + i * stride * static_cast<int64_t>(elem_size), elem_size);
  }
}

// dims x inner (inner gathering with inner_stride) where outer dimension j is contiguous in the input:
// 4-byte elements copied in 16 x 16 tiles over those two dimensions.
void transpose_in_tiles(const DimArray& dims, const DimArray& strides, std::size_t j, int64_t inner,
                        int64_t inner_stride, const uint32_t* src, uint32_t* dst, core::ThreadPool& pool) {
  const int64_t cols = dims[j];   // along the input's contiguous axis
  int64_t out_stride_j = inner;   // the output is dense: stride of dim j in it
  for (std::size_t d = j + 1; d < dims.size(); ++d) out_stride_j *= dims[d];
  // The other outer dimensions, with their input strides and output strides.
  DimArray odims, istr, ostr;
  int64_t out_stride = inner;
  for (std::size_t d = dims.size(); d-- > 0;) {  // innermost first, reversed below
    if (d != j) {
      odims.push_back(dims[d]);
      istr.push_back(strides[d]);
      ostr.push_back(out_stride);
    }
    out_stride *= dims[d];
  }
  std::reverse(odims.begin(), odims.end());
  std::reverse(istr.begin(), istr.end());
  std::reverse(ostr.begin(), ostr.end());
  int64_t planes = 1;
  for (int64_t d : odims) planes *= d;
  constexpr int64_t kTile = 16;
  const int64_t col_tiles = (cols + kTile - 1) / kTile;
  pool.parallel_for(planes * col_tiles, 4, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      int64_t plane = t / col_tiles, in_off = 0, out_off = 0;
      for (std::size_t d = odims.size(); d-- > 0;) {
        const int64_t idx = plane % odims[d];
        plane /= odims[d];
        in_off += idx * istr[d];
        out_off += idx * ostr[d];
      }
      const int64_t c0 = (t % col_tiles) * kTile, c1 = std::min(cols, c0 + kTile);
      for (int64_t i0 = 0; i0 < inner; i0 += kTile) {
        const int64_t i1 = std::min(inner, i0 + kTile);
        for (int64_t c = c0; c < c1; ++c) {
          const uint32_t* s = src + in_off + c;
          uint32_t* o = dst + out_off + c * out_stride_j;
          for (int64_t i = i0; i < i1; ++i) o[i] = s[i * inner_stride];
        }
      }
    }
  });
}

// Rows of `inner` elements, an odometer over the outer dims per chunk of rows.
void copy_rows(std::size_t elem_size, const DimArray& dims, const DimArray& strides, int64_t inner,
               int64_t inner_stride, const uint8_t* in, uint8_t* out, int64_t rows, core::ThreadPool& pool) {
  const auto esize = static_cast<int64_t>(elem_size);
  constexpr int64_t kGrainBytes = 64 * 1024;
  const int64_t grain = std::max<int64_t>(1, kGrainBytes / std::max<int64_t>(1, inner * esize));
  pool.parallel_for(rows, grain, [&](int64_t b, int64_t e) {
    // Odometer over the outer dims, started at row b.
    DimArray idx(dims.size());
    int64_t offset = 0;
    int64_t r = b;
    for (std::size_t d = dims.size(); d-- > 0;) {
      idx[d] = r % dims[d];
      r /= dims[d];
      offset += idx[d] * strides[d];
    }
    for (int64_t row = b; row < e; ++row) {
      copy_inner(elem_size, in + offset * esize, inner_stride, out + row * inner * esize, inner);
      for (std::size_t d = dims.size(); d-- > 0;) {
        offset += strides[d];
        if (++idx[d] < dims[d]) break;
        offset -= strides[d] * dims[d];
        idx[d] = 0;
      }
    }
  });
}

}  // namespace

void strided_copy(std::size_t elem_size, std::span<const int64_t> out_shape, std::span<const int64_t> in_strides,
                  const void* in_v, void* out_v, core::ThreadPool& pool) {
  for (int64_t d : out_shape) {
    if (d == 0) return;
  }
  // Merge: drop size-1 dims; fold dim d into d-1 when stepping d-1 equals a full sweep of d.
  DimArray dims, strides;
  for (std::size_t d = 0; d < out_shape.size(); ++d) {
    if (out_shape[d] == 1) continue;
    if (!dims.empty() && strides.back() == in_strides[d] * out_shape[d]) {
      dims.back() *= out_shape[d];
      strides.back() = in_strides[d];
    } else {
      dims.push_back(out_shape[d]);
      strides.push_back(in_strides[d]);
    }
  }
  const auto* in = static_cast<const uint8_t*>(in_v);
  auto* out = static_cast<uint8_t*>(out_v);
  const auto esize = static_cast<int64_t>(elem_size);
  if (dims.empty()) {
    std::memcpy(out, in, elem_size);
    return;
  }
  const int64_t inner = dims.back();
  const int64_t inner_stride = strides.back();
  dims.pop_back();
  strides.pop_back();
  int64_t rows = 1;
  for (int64_t d : dims) rows *= d;
  constexpr int64_t kGrainBytes = 64 * 1024;
  if (rows == 1) {
    const int64_t grain = std::max<int64_t>(1, kGrainBytes / esize);
    pool.parallel_for(inner, grain, [&](int64_t b, int64_t e) {
      copy_inner(elem_size, in + b * inner_stride * esize, inner_stride, out + b * esize, e - b);
    });
    return;
  }
  // A transpose proper: the inner run gathers (stride > 1) while an outer dimension is contiguous in the
  // input. Copy in square tiles over those two dimensions, so that both reads and writes use whole
  // cache lines instead of one element of each line read.
  const auto contiguous = std::find(strides.begin(), strides.end(), 1);
  if (elem_size == 4 && inner_stride > 1 && contiguous != strides.end() && inner >= 8 &&
      dims[static_cast<std::size_t>(contiguous - strides.begin())] >= 8) {
    transpose_in_tiles(dims, strides, static_cast<std::size_t>(contiguous - strides.begin()), inner, inner_stride,
                       reinterpret_cast<const uint32_t*>(in), reinterpret_cast<uint32_t*>(out), pool);
    return;
  }
  copy_rows(elem_size, dims, strides, inner, inner_stride, in, out, rows, pool);
}

}  // namespace detrq::runtime::kernels
