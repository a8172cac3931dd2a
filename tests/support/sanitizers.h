// Whether this build runs under AddressSanitizer. GCC defines __SANITIZE_ADDRESS__; clang 14
// (make test-asan, make fuzz) does not, and answers __has_feature(address_sanitizer) instead.
#pragma once

namespace kvcomp::testing {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

}  // namespace kvcomp::testing
