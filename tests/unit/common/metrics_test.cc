#include "common/metrics.h"

#include <gtest/gtest.h>

namespace pushgate::metrics {
namespace {

TEST(Metrics, CounterExposition) {
  Registry r;
  r.GetCounter("pushgate_pushes_total", "Pushes sent.", {{"outcome", "accepted"}}).Inc(3);
  r.GetCounter("pushgate_pushes_total", "Pushes sent.", {{"outcome", "token_invalid"}}).Inc();
  // Same name and labels: same counter.
  r.GetCounter("pushgate_pushes_total", "Pushes sent.", {{"outcome", "accepted"}}).Inc();
  EXPECT_EQ(r.Expose(),
            "# HELP pushgate_pushes_total Pushes sent.\n"
            "# TYPE pushgate_pushes_total counter\n"
            "pushgate_pushes_total{outcome=\"accepted\"} 4\n"
            "pushgate_pushes_total{outcome=\"token_invalid\"} 1\n");
}

TEST(Metrics, GaugeWithoutLabels) {
  Registry r;
  Gauge& g = r.GetGauge("pushgate_bindings", "Bindings held.");
  g.Set(10);
  g.Add(-2.5);
  EXPECT_EQ(r.Expose(),
            "# HELP pushgate_bindings Bindings held.\n"
            "# TYPE pushgate_bindings gauge\n"
            "pushgate_bindings 7.5\n");
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Registry r;
  Histogram& h = r.GetHistogram("lat_seconds", "Latency.", {0.01, 0.1}, {{"op", "send"}});
  h.Observe(0.005);
  h.Observe(0.01);  // le is inclusive
  h.Observe(0.05);
  h.Observe(3);
  EXPECT_EQ(r.Expose(),
            "# HELP lat_seconds Latency.\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{op=\"send\",le=\"0.01\"} 2\n"
            "lat_seconds_bucket{op=\"send\",le=\"0.1\"} 3\n"
            "lat_seconds_bucket{op=\"send\",le=\"+Inf\"} 4\n"
            "lat_seconds_sum{op=\"send\"} 3.065\n"
            "lat_seconds_count{op=\"send\"} 4\n");
}

TEST(Metrics, LabelValuesAndHelpAreEscaped) {
  Registry r;
  r.GetCounter("x_total", "a\\b\nc", {{"v", "q\"x\\y\nz"}}).Inc();
  EXPECT_EQ(r.Expose(),
            "# HELP x_total a\\\\b\\nc\n"
            "# TYPE x_total counter\n"
            "x_total{v=\"q\\\"x\\\\y\\nz\"} 1\n");
}

TEST(Metrics, FamiliesSortedByName) {
  Registry r;
  r.GetCounter("b_total", "b").Inc();
  r.GetCounter("a_total", "a").Inc();
  std::string out = r.Expose();
  EXPECT_LT(out.find("a_total"), out.find("b_total"));
}

TEST(MetricsDeathTest, TypeClashAborts) {
  Registry r;
  r.GetCounter("dup", "d");
  EXPECT_DEATH(r.GetGauge("dup", "d"), "registered twice");
  EXPECT_DEATH(r.GetCounter("bad-name", "d"), "invalid metric name");
}

}  // namespace
}  // namespace pushgate::metrics
