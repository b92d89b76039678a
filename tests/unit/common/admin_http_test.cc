#include "common/admin_http.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>

namespace pushgate {
namespace {

TEST(AdminServer, ServesMetricsHealthAndReadiness) {
  metrics::Registry registry;
  registry.GetCounter("pushgate_test_total", "A test counter.").Inc(7);
  std::atomic<bool> ready{false};
  AdminServer server(
      registry, [] { return std::string(); },
      [&] { return ready ? std::string() : std::string("registrar not loaded"); });
  auto port = server.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status();

  httplib::Client client("127.0.0.1", *port);
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("pushgate_test_total 7\n"), std::string::npos);
  EXPECT_EQ(metrics->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");

  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  auto not_ready = client.Get("/readyz");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_EQ(not_ready->body, "registrar not loaded\n");
  ready = true;
  auto is_ready = client.Get("/readyz");
  ASSERT_TRUE(is_ready);
  EXPECT_EQ(is_ready->status, 200);

  auto missing = client.Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  server.Stop();
}

TEST(AdminServer, AddedRoutesGetTheQueryAndSetStatusAndType) {
  metrics::Registry registry;
  AdminServer server(registry, nullptr, nullptr);
  server.AddGet("/echo", [](const std::map<std::string, std::string>& query) {
    auto it = query.find("name");
    if (it == query.end()) return AdminServer::Reply{400, "text/plain", "name missing\n"};
    return AdminServer::Reply{200, "application/json", "{\"name\":\"" + it->second + "\"}"};
  });
  auto port = server.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status();
  httplib::Client client("127.0.0.1", *port);
  auto ok = client.Get("/echo?name=sip%3Aalice%40example.org");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "{\"name\":\"sip:alice@example.org\"}");
  EXPECT_EQ(ok->get_header_value("Content-Type"), "application/json");
  auto missing = client.Get("/echo");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 400);
  EXPECT_EQ(missing->body, "name missing\n");
  auto unknown = client.Get("/nothing-here");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
}

TEST(AdminServer, PortInUseIsAClearError) {
  metrics::Registry registry;
  AdminServer first(registry, nullptr, nullptr);
  auto port = first.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok());
  AdminServer second(registry, nullptr, nullptr);
  auto again = second.Start("127.0.0.1", *port);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(again.status().message().find("cannot listen on 127.0.0.1:"), std::string::npos);
}

}  // namespace
}  // namespace pushgate
