#include "common/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace pushgate::metrics {
namespace {

void AtomicAdd(std::atomic<double>& target, double d) {
  double old = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(old, old + d, std::memory_order_relaxed)) {
  }
}

bool ValidName(const std::string& name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);  // shortest round-trip form
  return std::string(buf, end);
}

std::string RenderLabels(const Labels& labels, const std::string& extra_key = "",
                         const std::string& extra_value = "") {
  std::string out;
  for (const auto& [k, v] : labels) {
    absl::StrAppend(&out, out.empty() ? "" : ",", k, "=\"", EscapeLabelValue(v), "\"");
  }
  if (!extra_key.empty()) {
    absl::StrAppend(&out, out.empty() ? "" : ",", extra_key, "=\"", extra_value, "\"");
  }
  return out.empty() ? out : absl::StrCat("{", out, "}");
}

std::string EscapeHelp(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

}  // namespace

void Gauge::Add(double d) { AtomicAdd(value_, d); }

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  std::sort(bounds_.begin(), bounds_.end());
  buckets_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
}

void Histogram::Observe(double v) {
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum_, v);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

std::vector<double> LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

Registry::Series& Registry::GetSeries(const std::string& name, const std::string& help, Type type,
                                      const Labels& labels) {
  if (!ValidName(name, true)) {
    std::fprintf(stderr, "metrics: invalid metric name '%s'\n", name.c_str());
    std::abort();
  }
  for (const auto& [k, v] : labels) {
    if (!ValidName(k, false) || k == "le") {
      std::fprintf(stderr, "metrics: invalid label name '%s' on %s\n", k.c_str(), name.c_str());
      std::abort();
    }
  }
  std::lock_guard lock(mu_);
  auto [it, inserted] = families_.try_emplace(name, Family{type, help, {}});
  if (!inserted && it->second.type != type) {
    std::fprintf(stderr, "metrics: %s registered twice with different types\n", name.c_str());
    std::abort();
  }
  std::string key = RenderLabels(labels);
  auto [sit, new_series] = it->second.series.try_emplace(key);
  if (new_series) sit->second.labels = labels;
  return sit->second;
}

Counter& Registry::GetCounter(const std::string& name, const std::string& help,
                              const Labels& labels) {
  Series& s = GetSeries(name, help, Type::kCounter, labels);
  std::lock_guard lock(mu_);
  if (!s.counter) s.counter = std::make_unique<Counter>();
  return *s.counter;
}

Gauge& Registry::GetGauge(const std::string& name, const std::string& help, const Labels& labels) {
  Series& s = GetSeries(name, help, Type::kGauge, labels);
  std::lock_guard lock(mu_);
  if (!s.gauge) s.gauge = std::make_unique<Gauge>();
  return *s.gauge;
}

Histogram& Registry::GetHistogram(const std::string& name, const std::string& help,
                                  std::vector<double> upper_bounds, const Labels& labels) {
  Series& s = GetSeries(name, help, Type::kHistogram, labels);
  std::lock_guard lock(mu_);
  if (!s.histogram) s.histogram = std::make_unique<Histogram>(std::move(upper_bounds));
  return *s.histogram;
}

std::string Registry::Expose() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, family] : families_) {
    const char* type = family.type == Type::kCounter ? "counter"
                       : family.type == Type::kGauge ? "gauge"
                                                     : "histogram";
    absl::StrAppend(&out, "# HELP ", name, " ", EscapeHelp(family.help), "\n");
    absl::StrAppend(&out, "# TYPE ", name, " ", type, "\n");
    for (const auto& [key, series] : family.series) {
      switch (family.type) {
        case Type::kCounter:
          absl::StrAppend(&out, name, key, " ", series.counter->Value(), "\n");
          break;
        case Type::kGauge:
          absl::StrAppend(&out, name, key, " ", FormatValue(series.gauge->Value()), "\n");
          break;
        case Type::kHistogram: {
          const Histogram& h = *series.histogram;
          std::vector<uint64_t> counts = h.CumulativeCounts();
          for (size_t i = 0; i < counts.size(); ++i) {
            std::string le =
                i < h.upper_bounds().size() ? FormatValue(h.upper_bounds()[i]) : "+Inf";
            absl::StrAppend(&out, name, "_bucket", RenderLabels(series.labels, "le", le), " ",
                            counts[i], "\n");
          }
          absl::StrAppend(&out, name, "_sum", key, " ", FormatValue(h.Sum()), "\n");
          absl::StrAppend(&out, name, "_count", key, " ", h.Count(), "\n");
          break;
        }
      }
    }
  }
  return out;
}

Registry& Registry::Default() {
  static Registry* registry = new Registry;
  return *registry;
}

}  // namespace pushgate::metrics
