// KV_VECTOR_CLONES compiles a function twice on x86-64, for the baseline (SSE2) and for
// AVX2, and the loader picks the one the CPU runs (target_clones, GCC
// and Clang). It is for the plain loops the compiler vectorises: twice the lanes, no intrinsics.
// Only the ISA changes ("arch=" would change the tuning too, and GCC then inlines no helper
// into the clone: the helpers would stay baseline code).
// Both clones compute the same results bit for bit: -ffp-contract=off keeps multiplies and adds
// apart, and without -ffast-math no float sum is reassociated, so each lane adds in one order.
// Elsewhere (ARM64: NEON is the baseline) it is nothing.
#pragma once

#if defined(__x86_64__) && !defined(KVCOMP_NO_VECTOR_CLONES)
#define KV_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define KV_VECTOR_CLONES
#endif

// KV_BMI2_CLONES does the same for BMI2, for bit-stream loops whose critical path is a shift by
// a variable count: x86's SHR by CL is 2-3 uops and writes flags, BMI2's SHRX one. Integer
// code only, so the clones agree bit for bit too.
#if defined(__x86_64__) && !defined(KVCOMP_NO_VECTOR_CLONES)
#define KV_BMI2_CLONES __attribute__((target_clones("bmi2", "default")))
#else
#define KV_BMI2_CLONES
#endif
