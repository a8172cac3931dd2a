#include "core/kvcomp/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace kvcomp {
namespace {

// Shared by the caller and its helpers; a helper may outlive the call (a pool runs it late), so
// it holds this by shared_ptr and reaches `body` only through a claimed item, which the caller
// waits for.
struct Work : std::enable_shared_from_this<Work> {
  Work(size_t n, const absl::FunctionRef<void(size_t)>* body, Executor* executor)
      : n(n), body(body), executor(executor) {}
  const size_t n;
  const absl::FunctionRef<void(size_t)>* body;
  Executor* const executor;
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::condition_variable all_done;
  size_t done = 0;  // guarded by mu

  void Ran(size_t items) {
    if (items == 0) return;
    std::lock_guard<std::mutex> lock(mu);
    done += items;
    if (done == n) all_done.notify_all();
  }
  // The caller, or a helper on a thread of the call's own: every item it can claim.
  void Drain() {
    size_t ran = 0;
    for (size_t i; (i = next.fetch_add(1)) < n; ++ran) (*body)(i);
    Ran(ran);
  }
  // A helper on an executor: one item, then back to the end of the executor's queue, so that
  // other calls waiting for a thread are served between this call's items instead of after all
  // of them (a big call would otherwise hold every worker until it is done).
  void HelpOnce() {
    const size_t i = next.fetch_add(1);
    if (i >= n) return;
    (*body)(i);
    // Queued again before this item counts as done: the call cannot have returned yet, so the
    // executor is still there to take it.
    if (next.load() < n) {
      auto self = shared_from_this();
      if (!executor->Submit([self] { self->HelpOnce(); })) Drain();
    }
    Ran(1);
  }
};

}  // namespace

void ParallelFor(size_t n, const Parallelism& parallelism, absl::FunctionRef<void(size_t)> body) {
  const size_t helpers =
      n < 2 ? 0
            : std::min<size_t>(static_cast<size_t>(std::max(parallelism.threads, 1)) - 1, n - 1);
  if (helpers == 0) {
    for (size_t i = 0; i < n; ++i) body(i);
    return;
  }
  auto work = std::make_shared<Work>(n, &body, parallelism.executor);
  std::vector<std::thread> own;
  for (size_t h = 0; h < helpers; ++h) {
    if (parallelism.executor != nullptr) {
      if (!parallelism.executor->Submit([work] { work->HelpOnce(); })) break;
    } else {
      own.emplace_back([work] { work->Drain(); });
    }
  }
  work->Drain();
  {
    std::unique_lock<std::mutex> lock(work->mu);
    work->all_done.wait(lock, [&] { return work->done == n; });
  }
  for (std::thread& t : own) t.join();
}

}  // namespace kvcomp
