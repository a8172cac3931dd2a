#include "client/cli/engine_verdict.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

extern char** environ;

namespace kvcomp::cli {
namespace {

// Runs argv (PATH searched), stderr passed through; its stdout, or why it failed.
absl::StatusOr<std::string> RunCapture(const std::vector<std::string>& argv) {
  int out[2];
  if (pipe(out) != 0) return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot run the engine hook '", argv[0], "': ", std::strerror(rc)));
  }
  std::string text;
  char buf[65536];
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(out[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the engine hook '", argv[0], "' failed (see its message above)"));
  }
  return text;
}

std::vector<std::string> HookWords(const std::string& flag) {
  std::string hook = flag;
  if (hook.empty()) {
    const char* env = std::getenv("KVCOMP_ENGINE_HOOK");
    hook = env && *env ? env : KVCOMP_DEFAULT_ENGINE_HOOK;
  }
  return absl::StrSplit(hook, ' ', absl::SkipEmpty());
}

double Agreement(const v1::EngineVerdict& e) {
  const double free = e.tokens() ? static_cast<double>(e.free_running_agree()) / e.tokens() : 0;
  return std::min(e.top1(), free);
}

std::string Describe(const v1::EngineVerdict& e) {
  return absl::StrFormat("agreement %.3f: top-1 %.3f, %d/%d greedy tokens, max KL %.2e",
                         Agreement(e), e.top1(), e.free_running_agree(), e.tokens(), e.kl_max());
}

}  // namespace

void AddEngineVerdictFlags(CLI::App* app, EngineVerdictFlags* flags) {
  app->add_option("--engine-model", flags->model,
                  "judge the best configurations with this GGUF in llama.cpp (the input must be "
                  "a llama.cpp state of that model): token agreement and KL beside the errors");
  app->add_option("--min-agreement", flags->min_agreement,
                  "with --engine-model: recommend only configurations whose agreement (the "
                  "smaller of teacher-forced top-1 and the greedy tokens kept) is >= this")
      ->check(CLI::Range(0.0, 1.0));
  app->add_option("--engine-candidates", flags->candidates,
                  "with --engine-model: how many of the best passing configurations to judge")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app->add_option("--engine-tokens", flags->tokens, "with --engine-model: tokens judged")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app->add_option("--engine-hook", flags->hook,
                  "the program that judges (words split on spaces; default $KVCOMP_ENGINE_HOOK, "
                  "else `node " KVCOMP_DEFAULT_ENGINE_HOOK_SCRIPT "`; protocol: docs/ENGINES.md)");
}

absl::Status ApplyEngineVerdict(const EngineVerdictFlags& flags, const std::string& state,
                                const std::string& server, bool error_bounds_given,
                                std::optional<uint64_t> budget_bytes,
                                v1::AnalyzeResponse* response) {
  // The best configurations that pass the error thresholds and budget, and the best lossless
  // one, which keeps every token by construction: a threshold always leaves a choice.
  std::vector<v1::CodecAnalysis*> passing;
  for (auto& c : *response->mutable_codecs()) {
    if (!c.error().empty()) continue;
    const bool within_budget = !budget_bytes || c.totals().compressed_bytes() <= *budget_bytes;
    if (c.passes() || (!error_bounds_given && within_budget)) passing.push_back(&c);
  }
  std::stable_sort(passing.begin(), passing.end(),
                   [](auto* a, auto* b) { return a->totals().ratio() > b->totals().ratio(); });
  std::vector<v1::CodecAnalysis*> judged(
      passing.begin(), passing.begin() + std::min<size_t>(passing.size(), flags.candidates));
  for (auto* c : passing) {
    if (!c->lossless()) continue;
    if (std::find(judged.begin(), judged.end(), c) == judged.end()) judged.push_back(c);
    break;
  }
  if (judged.empty()) return absl::OkStatus();
  std::vector<std::string> argv = HookWords(flags.hook);
  std::error_code ec;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  for (const std::string& a :
       {std::string("--state"), state, std::string("--model"), flags.model, std::string("--server"),
        server, std::string("--tokens"), std::to_string(flags.tokens)}) {
    argv.push_back(a);
  }
  if (!self.empty()) argv.insert(argv.end(), {"--cli", self});
  for (auto* c : judged) argv.insert(argv.end(), {"--spec", c->codec()});
  absl::StatusOr<std::string> out = RunCapture(argv);
  if (!out.ok()) return out.status();
  std::map<std::string, v1::EngineVerdict> verdicts;
  try {
    const nlohmann::json j = nlohmann::json::parse(*out);
    for (const auto& r : j.at("results")) {
      v1::EngineVerdict e;
      e.set_judged(true);
      e.set_tokens(r.at("tokens").get<uint32_t>());
      e.set_free_running_agree(r.at("free_running_agree").get<uint32_t>());
      e.set_top1(r.at("top1").get<double>());
      e.set_kl_mean(r.at("kl_mean").get<double>());
      e.set_kl_max(r.at("kl_max").get<double>());
      e.set_file_ratio(r.at("file_ratio").get<double>());
      verdicts[r.at("spec").get<std::string>()] = e;
    }
  } catch (const std::exception& e) {
    return absl::DataLossError(
        absl::StrCat("the engine hook's answer is not its JSON: ", e.what()));
  }
  for (auto* c : judged) {
    auto it = verdicts.find(c->codec());
    if (it == verdicts.end()) {
      return absl::DataLossError(absl::StrCat("the engine hook did not judge ", c->codec()));
    }
    *c->mutable_engine() = it->second;
  }
  if (!flags.min_agreement) return absl::OkStatus();
  // Agreement becomes a threshold, as the cosine bounds are.
  const double min = *flags.min_agreement;
  v1::CodecAnalysis* best = nullptr;
  v1::CodecAnalysis* closest = nullptr;
  for (auto* c : passing) {
    if (!c->engine().judged()) {
      c->set_passes(false);
      c->set_verdict(absl::StrCat("not judged by the engine (the ", flags.candidates,
                                  " best are; --engine-candidates)"));
      continue;
    }
    const double a = Agreement(c->engine());
    if (!closest || a > Agreement(closest->engine())) closest = c;
    c->set_passes(a >= min);
    if (a < min) {
      c->set_verdict(absl::StrFormat("engine: agreement %.3f < %.3f", a, min));
    } else {
      c->set_verdict(
          absl::StrFormat("passes at KV %.3fx, engine agreement %.3f", c->totals().ratio(), a));
      if (!best) best = c;  // `passing` is sorted by ratio
    }
  }
  v1::Recommendation& rec = *response->mutable_recommendation();
  rec.clear_runners_up();
  for (auto* c : passing) {
    if (c == best || !c->engine().judged()) continue;
    auto* r = rec.add_runners_up();
    r->set_codec(c->codec());
    r->set_why(c->passes() ? absl::StrFormat("passes, but KV %.3fx < %.3fx", c->totals().ratio(),
                                             best ? best->totals().ratio() : 0.0)
                           : Describe(c->engine()) + absl::StrFormat(" < %.3f", min));
  }
  if (best) {
    rec.set_found(true);
    rec.set_codec(best->codec());
    rec.set_ratio(best->totals().ratio());
    rec.set_why(absl::StrFormat(
        "best of the judged configurations that meet the thresholds and keep agreement >= %.3f "
        "with the exact cache (%s): KV %.3fx",
        min, Describe(best->engine()), best->totals().ratio()));
  } else {
    rec.set_found(false);
    rec.set_codec(closest->codec());
    rec.set_ratio(closest->totals().ratio());
    rec.set_why(absl::StrFormat("no judged configuration keeps agreement >= %.3f; closest: %s", min,
                                Describe(closest->engine())));
  }
  return absl::OkStatus();
}

std::string EngineVerdictTable(const v1::AnalyzeResponse& response) {
  std::string out = absl::StrFormat(
      "\nEngine verdict (llama.cpp, the restored cache against the exact one):\n%-56s %7s %7s "
      "%9s %7s %9s %9s\n",
      "codec", "KV", "file", "agreement", "top-1", "greedy", "max KL");
  for (const auto& c : response.codecs()) {
    if (!c.engine().judged()) continue;
    const v1::EngineVerdict& e = c.engine();
    const std::string name = c.codec().size() > 56 ? c.codec().substr(0, 53) + "..." : c.codec();
    absl::StrAppend(
        &out, absl::StrFormat("%-56s %6.3fx %6.3fx %9.3f %7.3f %9s %9.2e\n", name,
                              c.totals().ratio(), e.file_ratio(), Agreement(e), e.top1(),
                              absl::StrCat(e.free_running_agree(), "/", e.tokens()), e.kl_max()));
  }
  return out;
}

}  // namespace kvcomp::cli
