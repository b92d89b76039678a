// Reading small files (keys, certificates, config) whole, with errors that name the file.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace pushgate {

// The file's bytes. NOT_FOUND "PATH: cannot read: <reason>" when it cannot be opened or read.
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace pushgate
