#include "server/idle_watchdog.h"

#include <algorithm>
#include <vector>

namespace kvcomp::server {

IdleWatchdog::IdleWatchdog(std::chrono::milliseconds timeout) : timeout_(timeout) {
  if (timeout_.count() > 0) thread_ = std::thread([this] { Loop(); });
}

IdleWatchdog::~IdleWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void IdleWatchdog::Arm(Watched* watched) {
  if (timeout_.count() <= 0) return;
  bool earliest = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const Clock::time_point deadline = Clock::now() + timeout_;
    for (const auto& [w, d] : deadlines_) earliest = earliest && deadline < d;
    deadlines_[watched] = deadline;
  }
  if (earliest) cv_.notify_all();
}

void IdleWatchdog::Disarm(Watched* watched) {
  if (timeout_.count() <= 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  deadlines_.erase(watched);
}

void IdleWatchdog::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    const Clock::time_point now = Clock::now();
    Clock::time_point next = Clock::time_point::max();
    std::vector<Watched*> expired;
    for (auto it = deadlines_.begin(); it != deadlines_.end();) {
      if (it->second <= now) {
        it->first->Ref();  // under the lock, so a Disarm in OnDone cannot have run yet
        expired.push_back(it->first);
        it = deadlines_.erase(it);
      } else {
        next = std::min(next, it->second);
        ++it;
      }
    }
    if (!expired.empty()) {
      // OnIdle may finish the call, whose OnDone disarms: never under our lock.
      lock.unlock();
      for (Watched* w : expired) {
        w->OnIdle();
        w->Unref();
      }
      lock.lock();
      continue;
    }
    if (next == Clock::time_point::max()) {
      cv_.wait(lock);
    } else {
      cv_.wait_until(lock, next);
    }
  }
}

}  // namespace kvcomp::server
