// bench_jwt: prints an APNs provider token (ES256 JWT, iat = now) for h2load.
//   bench_jwt TEAMID KEYID /path/AuthKey.p8
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/time/clock.h"
#include "pusher/core/jwt.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: bench_jwt TEAMID KEYID KEY.p8\n");
    return 2;
  }
  std::ifstream in(argv[3]);
  std::ostringstream pem;
  pem << in.rdbuf();
  if (!in) {
    std::fprintf(stderr, "bench_jwt: cannot read %s\n", argv[3]);
    return 1;
  }
  auto key = pushgate::pusher::LoadPrivateKeyPem(pem.str());
  if (!key.ok()) {
    std::fprintf(stderr, "bench_jwt: %s\n", std::string(key.status().message()).c_str());
    return 1;
  }
  auto jwt =
      pushgate::pusher::SignJwt(pushgate::pusher::JwtAlg::kEs256, *key, {{"kid", argv[2]}},
                                {{"iss", argv[1]}, {"iat", absl::ToUnixSeconds(absl::Now())}});
  if (!jwt.ok()) {
    std::fprintf(stderr, "bench_jwt: %s\n", std::string(jwt.status().message()).c_str());
    return 1;
  }
  std::printf("%s\n", jwt->c_str());
  return 0;
}
