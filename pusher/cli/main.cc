#include <iostream>
#include <string>
#include <vector>

#include "pusher/cli/push_cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << pushgate::pusher::cli::Usage();
      return 0;
    }
  }
  auto options = pushgate::pusher::cli::ParseArgs(args);
  if (!options.ok()) {
    std::cerr << "pushgate-push: " << options.status().message() << "\n\n"
              << pushgate::pusher::cli::Usage();
    return pushgate::pusher::cli::kExitUsage;
  }
  return pushgate::pusher::cli::Run(*options);
}
