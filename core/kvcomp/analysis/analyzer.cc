#include "core/kvcomp/analysis/analyzer.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "core/kvcomp/analysis/recommend.h"
#include "core/kvcomp/analysis/rope_check.h"
#include "core/kvcomp/analysis/sampling.h"
#include "core/kvcomp/internal/status_macros.h"

namespace kvcomp {
namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Compresses and decompresses every tensor once, timing both; a lossless configuration must
// come back bit-exact, or the configuration is marked as failed. Stops early, marked failed,
// when `cancelled` says so: one configuration over a big cache can take many seconds.
ConfigResult RunConfig(const std::string& spec, absl::Span<const TensorView> cache,
                       const std::function<bool()>& cancelled) {
  ConfigResult c;
  c.spec = spec;
  auto codec = MakeCodec(spec);
  if (!codec.ok()) {
    c.error = std::string(codec.status().message());
    return c;
  }
  for (const TensorView& t : cache) {
    if (cancelled && cancelled()) {
      c.error = "cancelled";
      return c;
    }
    TensorResult r;
    auto start = std::chrono::steady_clock::now();
    auto out = (*codec)->Compress(t);
    r.compress_seconds = Seconds(start);
    if (!out.ok()) {
      c.error = absl::StrCat("layer ", t.meta().layer, " ", KindName(t.meta().kind), ": ",
                             out.status().message());
      return c;
    }
    start = std::chrono::steady_clock::now();
    auto back = Decompress(out->frame);
    r.decompress_seconds = Seconds(start);
    if (!back.ok() || (out->report.lossless &&
                       back->bytes != std::vector<uint8_t>(t.bytes().begin(), t.bytes().end()))) {
      c.error = absl::StrCat("layer ", t.meta().layer, " ", KindName(t.meta().kind),
                             ": did not decode back ",
                             back.ok() ? "bit-exact" : std::string(back.status().message()));
      return c;
    }
    r.report = std::move(out->report);
    const bool is_v = t.meta().kind == Kind::kValue;
    (is_v ? c.raw_v : c.raw_k) += r.report.raw_bytes;
    (is_v ? c.packed_v : c.packed_k) += r.report.compressed_bytes;
    if (r.report.error) (is_v ? c.worst_v : c.worst_k).Add(*r.report.error);
    c.lossless = c.lossless && r.report.lossless;
    c.compress_seconds += r.compress_seconds;
    c.decompress_seconds += r.decompress_seconds;
    c.tensors.push_back(std::move(r));
  }
  return c;
}

}  // namespace

void WorstError::Add(const ErrorStats& e) {
  cosine = std::min(cosine, e.cosine);
  mae = std::max(mae, e.mae);
  rel_mae = std::max(rel_mae, e.rel_mae);
  max_abs = std::max(max_abs, e.max_abs);
  rmse = std::max(rmse, e.rmse);
  rel_rmse = std::max(rel_rmse, e.rel_rmse);
  snr_db = std::min(snr_db, e.snr_db);
}

ErrorStats WorstError::AsStats() const {
  ErrorStats e;
  e.cosine = cosine;
  e.mae = mae;
  e.rel_mae = rel_mae;
  e.max_abs = max_abs;
  e.rmse = rmse;
  e.rel_rmse = rel_rmse;
  e.snr_db = snr_db;
  return e;
}

absl::StatusOr<AnalysisReport> AnalyzeCache(absl::Span<const TensorView> cache,
                                            const AnalysisOptions& options) {
  if (cache.empty()) return absl::InvalidArgumentError("analyze needs at least one tensor");
  if (absl::Status s = options.k_bounds.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("K thresholds: ", s.message()));
  }
  if (absl::Status s = options.v_bounds.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("V thresholds: ", s.message()));
  }
  // Sweeps are chosen by dtype; a cache with quantised blocks anywhere (llama.cpp's K in Q8_0
  // beside an F16 V) gets the lossless ones, which every tensor can take.
  DType dtype = cache[0].meta().dtype;
  for (const TensorView& t : cache) {
    if (IsBlockQuantized(t.meta().dtype)) dtype = t.meta().dtype;
  }
  std::vector<std::string> specs = options.specs;
  std::vector<std::string> sweeps = options.sweeps;
  if (sweeps.empty() && specs.empty()) sweeps.push_back("default");
  for (const std::string& sweep : sweeps) {
    KV_ASSIGN_OR_RETURN(auto more, ExpandSweep(sweep, dtype, options));
    specs.insert(specs.end(), more.begin(), more.end());
  }
  // Reject bad specs up front, before any work, naming the spec.
  for (const std::string& spec : specs) {
    auto codec = MakeCodec(spec);
    if (!codec.ok()) return codec.status();
  }

  AnalysisReport report;
  SampledCache sample = SampleCache(cache, options.max_tokens, options.max_layers);
  report.sampling = sample.description;
  report.analysed_raw_bytes = sample.analysed_raw_bytes;
  report.full_raw_bytes = sample.full_raw_bytes;
  for (size_t i = 0; i < specs.size(); ++i) {
    report.configs.push_back(RunConfig(specs[i], sample.views, options.cancelled));
    if (options.cancelled && options.cancelled()) {
      return absl::CancelledError(
          absl::StrCat("analyze cancelled during configuration ", i + 1, " of ", specs.size()));
    }
    if (options.progress) options.progress(i + 1, specs.size());
  }
  const double scale =
      sample.analysed_raw_bytes ? double(sample.full_raw_bytes) / sample.analysed_raw_bytes : 1.0;
  Judge(options, scale, &report.configs);
  report.recommendation = Recommend(options, report.configs);
  if (options.rope_theta) {
    std::vector<TensorView> keys;
    for (size_t i = 0; i < sample.views.size(); ++i) {
      if (sample.views[i].meta().kind == Kind::kKey) keys.push_back(cache[sample.source[i]]);
    }
    KV_ASSIGN_OR_RETURN(report.rope,
                        CheckInverseRope(keys, *options.rope_theta, options.rope_pairs));
  }
  return report;
}

}  // namespace kvcomp
