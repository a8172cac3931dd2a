// qhuff's split of its values into Huffman symbols, bit-sliced low bits and escapes, and the
// inverse (the layout: docs/FORMAT.md#qhuff-id-30). Apart from the stage because each
// direction has a portable path and an AVX-512BW one, chosen at run time; both give the same
// bytes. Internal to qhuff.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kvcomp::qhuff {

constexpr int kEscape = 63;    // the symbol of a value whose quotient is 63 or more
constexpr size_t kSlice = 16;  // values per block of low bits

// Bytes of the low bits of n values at shift k: ceil(n / 16) blocks of k 16-bit words.
inline size_t SlicedBytes(size_t n, int k) {
  return (n + kSlice - 1) / kSlice * static_cast<size_t>(k) * 2;
}

// The symbols min(v_i >> k, 63) of n values at sym, their low k bits, bit-sliced, at low
// (SlicedBytes(n, k)), and the values whose symbol is an escape, in order, appended to escapes.
void Split(const uint16_t* v, size_t n, int k, uint8_t* sym, uint8_t* low,
           std::vector<uint16_t>* escapes);
void Split(const uint8_t* v, size_t n, int k, uint8_t* sym, uint8_t* low,
           std::vector<uint8_t>* escapes);

// out_i = sym_i << k | its low bits, for every i (the caller patches the escapes).
void Unslice(const uint8_t* sym, const uint8_t* low, size_t n, int k, uint16_t* out);
void Unslice(const uint8_t* sym, const uint8_t* low, size_t n, int k, uint8_t* out);

// For tests: the portable paths, whatever the CPU, and the name of the path Split and Unslice
// take on 16-bit values here ("avx512bw" or "portable").
void SplitPortable(const uint16_t* v, size_t n, int k, uint8_t* sym, uint8_t* low,
                   std::vector<uint16_t>* escapes);
void UnslicePortable(const uint8_t* sym, const uint8_t* low, size_t n, int k, uint16_t* out);
const char* SplitPath();

}  // namespace kvcomp::qhuff
