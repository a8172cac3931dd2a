#include "kvcomp/parallel.h"

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
struct Work {
  explicit Work(size_t n, const absl::FunctionRef<void(size_t)>* body) : n(n), body(body) {}
  const size_t n;
  const absl::FunctionRef<void(size_t)>* body;
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::condition_variable all_done;
  size_t done = 0;  // guarded by mu

  void Drain() {
    size_t ran = 0;
    for (size_t i; (i = next.fetch_add(1)) < n; ++ran) (*body)(i);
    if (ran == 0) return;
    std::lock_guard<std::mutex> lock(mu);
    done += ran;
    if (done == n) all_done.notify_all();
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
  auto work = std::make_shared<Work>(n, &body);
  std::vector<std::thread> own;
  for (size_t h = 0; h < helpers; ++h) {
    if (parallelism.executor != nullptr) {
      if (!parallelism.executor->Submit([work] { work->Drain(); })) break;
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
