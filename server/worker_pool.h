// A fixed pool of threads that runs the codec work, so gRPC's polling threads never do. It is
// also the Executor a call's work is spread over (kvcomp/parallel.h): a call runs on one worker,
// and the others help with its tensors when they are free.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/kvcomp/parallel.h"

namespace kvcomp::server {

class WorkerPool final : public Executor {
 public:
  // Starts `threads` workers (at least one).
  explicit WorkerPool(size_t threads);
  // Runs every task already queued, then joins the workers.
  ~WorkerPool() override;

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`; false (and `task` is not run) once Shutdown has begun.
  bool Submit(std::function<void()> task) override;

  // Stops accepting tasks, drains the queue and joins the workers. Idempotent.
  void Shutdown();

  size_t size() const { return threads_.size(); }

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace kvcomp::server
