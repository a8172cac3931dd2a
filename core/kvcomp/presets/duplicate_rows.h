// How often a tensor's token rows repeat, from a cheap sample: the presets that choose a
// pipeline per tensor put `dedupe` in front only when it pays.
#pragma once

#include "core/kvcomp/tensor.h"

namespace kvcomp {

// Fraction of the first 1024 token rows that repeat an earlier row of the sample. A 1% rate
// already pays for dedupe's row map several times over.
double SampleDuplicateFraction(const TensorView& t);
inline constexpr double kDedupeWorthIt = 0.01;

}  // namespace kvcomp
