// Generated Llama-shaped KV caches for speed and scale measurements (and the demo fallback when
// no real dump is at hand). Never a substitute for real caches when judging ratios or errors.
//
// The model, and what grounds each part of it:
//  - Token ids: Zipf-like (log-uniform rank) over a 128256-entry vocabulary (Llama 3), BOS first.
//  - Layer 0 is a pure function of the token: K/V = W * RMSNorm(embedding). So in layer 0, V of
//    a repeated token repeats bit for bit (seen in every real dump in ../shared/kv), and K
//    differs only by its rotation.
//  - Deeper layers mix the token with its context: an AR(1) walk over tokens, so neighbouring
//    tokens correlate but never repeat.
//  - K has a few fixed outlier channels, ~5-10x the typical magnitude, concentrated in the
//    low-frequency RoPE pairs (KIVI, Liu et al. 2024; KVQuant, Hooper et al. 2024). V has
//    no channel outliers but per-token scale variation (KIVI: V is per-token structured).
//  - RoPE (HF rotate-half pairs (i, i + d/2), theta 500000 as in Llama 3) is applied to K,
//    as it sits in the cache.
//  - Token 0 is an attention sink (Xiao et al. 2023, StreamingLLM; Sun et al. 2024, massive
//    activations): its K is large and fixed, its V small.
// Magnitudes per layer are rough (K |x| ~ 1-3 typical, V ~ 0.1-1); they shape exponents only.
#pragma once

#include <cstdint>

#include "core/kvcomp/tensor.h"

namespace kvcomp::synth {

struct LlamaShape {
  int layers = 32;
  int kv_heads = 8;
  int head_dim = 128;
  int tokens = 4096;
  double rope_theta = 500000.0;
  DType dtype = DType::kFP16;
  uint64_t seed = 1;
};

// One layer's K or V, head-major [kv_heads, tokens, head_dim], deterministic in (shape, layer,
// kind).
Tensor LlamaKv(const LlamaShape& shape, int layer, Kind kind);

}  // namespace kvcomp::synth
