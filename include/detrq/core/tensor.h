// Tensor: a dense, row-major, 64-byte aligned n-dimensional array with a dtype, either owning its
// storage or viewing memory owned elsewhere (a memory arena, a memory-mapped file).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace detrq::core {

// Values are ONNX's TensorProto.DataType codes, so conversion to and from ONNX is a cast.
enum class DType : int32_t {
  kUndefined = 0,
  kFloat32 = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kUInt16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,  // not supported for storage; named so that errors can say what a model asked for
  kBool = 9,
  kFloat16 = 10,
  kFloat64 = 11,
  kUInt32 = 12,
  kUInt64 = 13,
  kBFloat16 = 16,
};

// Size in bytes of one element; 0 for kUndefined and kString.
std::size_t dtype_size(DType dtype) noexcept;
// "float32", "int64", ... as numpy spells them.
const char* dtype_name(DType dtype) noexcept;
bool dtype_is_float(DType dtype) noexcept;  // float16, bfloat16, float32, float64

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape) noexcept;
std::string shape_to_string(const Shape& shape);  // "[1, 3, 512, 512]"

// C++ type to DType mapping, for the typed accessors.
template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::kFloat32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::kFloat64; };
template <> struct DTypeOf<int8_t> { static constexpr DType value = DType::kInt8; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::kUInt8; };
template <> struct DTypeOf<int16_t> { static constexpr DType value = DType::kInt16; };
template <> struct DTypeOf<uint16_t> { static constexpr DType value = DType::kUInt16; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::kInt32; };
template <> struct DTypeOf<uint32_t> { static constexpr DType value = DType::kUInt32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::kInt64; };
template <> struct DTypeOf<uint64_t> { static constexpr DType value = DType::kUInt64; };
template <> struct DTypeOf<bool> { static constexpr DType value = DType::kBool; };

inline constexpr std::size_t kTensorAlignment = 64;

// A Tensor is a cheap handle: copies share storage. clone() makes a deep copy.
class Tensor {
 public:
  Tensor() = default;

  // Allocates zero-initialized, aligned storage.
  static Tensor zeros(DType dtype, Shape shape);
  // Allocates aligned storage without initializing it.
  static Tensor empty(DType dtype, Shape shape);
  // Views `data` (not owned); the caller keeps it alive as long as the tensor and its copies.
  static Tensor view(DType dtype, Shape shape, void* data);
  // Views `data` and keeps `keep_alive` (e.g. a mapped file) alive with the tensor.
  static Tensor view(DType dtype, Shape shape, void* data, std::shared_ptr<const void> keep_alive);
  // Copies `values` into a new tensor of the given shape (numel must match).
  template <typename T>
  static Tensor from_vector(Shape shape, const std::vector<T>& values);
  template <typename T>
  static Tensor scalar(T value) { return from_vector<T>({}, std::vector<T>{value}); }

  bool defined() const noexcept { return data_ != nullptr || dtype_ != DType::kUndefined; }
  DType dtype() const noexcept { return dtype_; }
  const Shape& shape() const noexcept { return shape_; }
  int64_t dim(int axis) const { return shape_.at(static_cast<std::size_t>(axis)); }
  int rank() const noexcept { return static_cast<int>(shape_.size()); }
  int64_t numel() const noexcept { return shape_numel(shape_); }
  std::size_t nbytes() const noexcept { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }

  void* raw_data() noexcept { return data_; }
  const void* raw_data() const noexcept { return data_; }

  // Typed access; throws an internal error if T does not match the dtype.
  template <typename T> T* data();
  template <typename T> const T* data() const;
  template <typename T> std::span<T> span() { return {data<T>(), static_cast<std::size_t>(numel())}; }
  template <typename T> std::span<const T> span() const { return {data<T>(), static_cast<std::size_t>(numel())}; }

  // Same storage, new shape with the same number of elements.
  Tensor reshaped(Shape shape) const;
  // Deep copy into fresh owned storage.
  Tensor clone() const;
  // Copies the contents of `other` (same dtype and numel) into this tensor's storage.
  void copy_from(const Tensor& other);
  // Points this handle at `data` (not owned; nullptr to forget it), keeping its dtype and shape and
  // dropping any storage it shared: how a plan binds its input slots each run without allocating.
  void retarget(void* data) noexcept {
    storage_.reset();
    data_ = data;
  }

 private:
  void check_dtype(DType expected) const;

  DType dtype_ = DType::kUndefined;
  Shape shape_;
  void* data_ = nullptr;
  std::shared_ptr<const void> storage_;  // owns data_ when the tensor owns its memory
};

template <typename T>
T* Tensor::data() {
  check_dtype(DTypeOf<T>::value);
  return static_cast<T*>(data_);
}
template <typename T>
const T* Tensor::data() const {
  check_dtype(DTypeOf<T>::value);
  return static_cast<const T*>(data_);
}
[[noreturn]] void throw_size_mismatch(const Shape& shape, std::size_t count);

template <typename T>
Tensor Tensor::from_vector(Shape shape, const std::vector<T>& values) {
  Tensor t = empty(DTypeOf<T>::value, std::move(shape));
  if (static_cast<std::size_t>(t.numel()) != values.size()) throw_size_mismatch(t.shape(), values.size());
  T* out = t.data<T>();
  for (std::size_t i = 0; i < values.size(); ++i) out[i] = values[i];
  return t;
}

// Aligned allocation used by tensors and memory arenas.
void* aligned_alloc_bytes(std::size_t bytes);
void aligned_free_bytes(void* ptr) noexcept;

// IEEE half and bfloat16 conversions.
float half_to_float(uint16_t h) noexcept;
uint16_t float_to_half(float f) noexcept;
float bfloat16_to_float(uint16_t b) noexcept;
uint16_t float_to_bfloat16(float f) noexcept;

}  // namespace detrq::core
