// One call's work spread over threads: the calling thread and helpers, each claiming the next
// item. Used by CompressTensors / DecompressTensors (batch.h) and by the server, whose helpers
// are its worker pool's threads.
#pragma once

#include <cstddef>
#include <functional>

#include "absl/functional/function_ref.h"

namespace kvcomp {

// Runs tasks on threads someone else owns (a server's worker pool).
class Executor {
 public:
  virtual ~Executor() = default;
  // Queues `task` to run on another thread; false (and `task` is dropped) when it cannot.
  virtual bool Submit(std::function<void()> task) = 0;
};

struct Parallelism {
  // Threads one call may use, its caller's included. 1, the default, runs everything on the
  // calling thread: the core starts no thread unless asked to.
  int threads = 1;
  // Where helpers run; null: threads started for the call and joined before it returns.
  Executor* executor = nullptr;
};

// Calls body(i) once for every i in [0, n) and returns when all have returned. The calling
// thread claims items too, in index order like every helper, so the call finishes even when no
// helper ever starts (a pool whose threads are all busy, or shutting down): a helper that starts
// late finds nothing left and returns without touching `body`. On an executor, a helper runs one
// item per task and queues itself again behind whatever else waits there, so a big call shares
// a busy pool with other calls instead of holding it. `body` must be thread-safe.
void ParallelFor(size_t n, const Parallelism& parallelism, absl::FunctionRef<void(size_t)> body);

}  // namespace kvcomp
