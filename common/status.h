// Status helpers: Abseil 20220623 has no RETURN_IF_ERROR / ASSIGN_OR_RETURN, so they live here.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define PUSHGATE_STATUS_CONCAT_INNER(a, b) a##b
#define PUSHGATE_STATUS_CONCAT(a, b) PUSHGATE_STATUS_CONCAT_INNER(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define RETURN_IF_ERROR(expr)                            \
  do {                                                   \
    ::absl::Status pushgate_status_ = (expr);            \
    if (!pushgate_status_.ok()) return pushgate_status_; \
  } while (false)

// `ASSIGN_OR_RETURN(auto x, Fallible());` declares/assigns the value or returns the error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  PUSHGATE_ASSIGN_OR_RETURN_IMPL(PUSHGATE_STATUS_CONCAT(pushgate_statusor_, __LINE__), lhs, expr)
// NOLINTBEGIN(bugprone-macro-parentheses): `tmp` is a name, `lhs` may declare one (`auto x`).
#define PUSHGATE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return std::move(tmp).status();       \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
