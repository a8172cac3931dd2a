// Ends streams that wait on their client too long. A stream holds a call slot for as long as it
// is open, so one that never sends its next chunk, or never reads its answer, would hold it
// (and its answer's memory) forever (issue 25, finding 5).
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace kvcomp::server {

class IdleWatchdog {
 public:
  // What the watchdog watches: a stream reactor, which must stay alive while referenced.
  class Watched {
   public:
    // The timer ran out. Called on the watchdog's thread with no watchdog lock held, between
    // a Ref() and an Unref() the watchdog makes.
    virtual void OnIdle() = 0;
    virtual void Ref() = 0;
    virtual void Unref() = 0;

   protected:
    ~Watched() = default;
  };

  // `timeout` zero or less: nothing is ever timed out (and no thread runs).
  explicit IdleWatchdog(std::chrono::milliseconds timeout);
  ~IdleWatchdog();
  IdleWatchdog(const IdleWatchdog&) = delete;
  IdleWatchdog& operator=(const IdleWatchdog&) = delete;

  // (Re)starts `watched`'s timer: OnIdle() runs if Disarm() does not come within the timeout.
  void Arm(Watched* watched);
  // Stops `watched`'s timer. Once it returns, the watchdog holds no new reference to `watched`
  // (an OnIdle already running keeps the reference it took).
  void Disarm(Watched* watched);

  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  using Clock = std::chrono::steady_clock;
  void Loop();

  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<Watched*, Clock::time_point> deadlines_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace kvcomp::server
