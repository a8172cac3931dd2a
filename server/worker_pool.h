// A fixed pool of threads that runs the codec work, so gRPC's polling threads never do.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kvcomp::server {

class WorkerPool {
 public:
  // Starts `threads` workers (at least one).
  explicit WorkerPool(size_t threads);
  // Runs every task already queued, then joins the workers.
  ~WorkerPool();

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`; false (and `task` is not run) once Shutdown has begun.
  bool Submit(std::function<void()> task);

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
