// Small error-propagation macros: Abseil 20220623 (Debian 12) ships no status_macros.h.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define KV_CONCAT_INNER_(a, b) a##b
#define KV_CONCAT_(a, b) KV_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` yields a non-OK absl::Status.
#define KV_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::absl::Status kv_status_ = (expr);      \
    if (!kv_status_.ok()) return kv_status_; \
  } while (0)

// `KV_ASSIGN_OR_RETURN(auto x, MakeX());` binds the value or returns the error.
#define KV_ASSIGN_OR_RETURN(lhs, expr) \
  KV_ASSIGN_OR_RETURN_IMPL_(KV_CONCAT_(kv_statusor_, __LINE__), lhs, expr)
#define KV_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return std::move(tmp).status();  \
  lhs = std::move(tmp).value()
