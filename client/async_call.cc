#include "client/async_call.h"

#include <utility>

namespace kvcomp::client {

void RunDetached(InFlightCalls* calls, std::function<void()> work) {
  auto ticket = std::make_shared<InFlightCalls::Ticket>(calls);
  std::thread([ticket, work = std::move(work)]() mutable {
    work();
    work = nullptr;
    ticket.reset();  // last: ~Client may proceed
  }).detach();
}

}  // namespace kvcomp::client
