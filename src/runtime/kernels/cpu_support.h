// What this CPU runs, for the kernels that choose their code at run time (each answer is computed once).
#pragma once

namespace detrq::runtime::kernels {

bool cpu_has_avx2_fma();  // AVX2 and FMA (the x86-64-v3 vector paths)
bool cpu_has_avx512f();

}  // namespace detrq::runtime::kernels
