// asyncio's staggered_race over connection attempts, and _interleave_addrinfos (see
// include/asyncuv/detail/staggered_race.hpp for the semantics).
#include "asyncuv/detail/staggered_race.hpp"

#include <algorithm>
#include <memory>
#include <utility>

#include "asyncuv/futures.hpp"
#include "asyncuv/helpers.hpp"
#include "internal.hpp"

namespace asyncuv::detail {

namespace {

/// The state the race shares with its attempts.
struct Race {
  std::vector<std::exception_ptr> exceptions;
  std::optional<Socket> winner;
  std::optional<std::size_t> winner_index;
  std::vector<Task<void>> tasks;
  /// The index of the attempt started last: only its failure starts the next one early.
  std::size_t latest = 0;
  /// What the race awaits between two starts (asyncio's this_failed event and the delay).
  Future<void> wake;

  void wake_up() {
    if (wake && !wake.done()) wake.set_result();
  }
};

/// One attempt as a task of its own (asyncio's run_one_coro). Holds the race weakly: if the
/// race is gone (its loop closed under it) a socket that still connects is simply closed.
Task<void> run_attempt(std::weak_ptr<Race> weak, std::size_t index, SocketAttempt attempt) {
  std::optional<Socket> sock;
  std::exception_ptr error;
  try {
    Task<Socket> coro = attempt();
    sock.emplace(co_await std::move(coro));
  } catch (...) {
    error = std::current_exception();
  }
  std::shared_ptr<Race> race = weak.lock();
  if (error) {
    if (is_fatal(error)) std::rethrow_exception(error);
    if (race) {
      race->exceptions[index] = error;
      if (index == race->latest) race->wake_up();  // start the next attempt now
    }
    co_return;
  }
  if (!race || race->winner_index) co_return;  // another attempt won: this socket closes here
  race->winner_index = index;
  race->winner = std::move(sock);
  for (std::size_t i = 0; i < race->tasks.size(); ++i) {
    if (i != index) race->tasks[i].cancel();
  }
  race->wake_up();
}

/// Cancels a timer when the scope ends (also when a cancellation unwinds the coroutine).
struct CancelTimer {
  TimerHandle& timer;
  ~CancelTimer() { timer.cancel(); }
};

}  // namespace

Task<StaggeredOutcome> staggered_race(EventLoop& loop, std::vector<SocketAttempt> attempts,
                                      std::optional<Seconds> delay) {
  auto race = std::make_shared<Race>();
  std::exception_ptr cancelled;
  try {
    for (std::size_t i = 0; i < attempts.size(); ++i) {
      race->exceptions.emplace_back();
      race->latest = i;
      race->wake = loop.create_future<void>();
      Task<void> coro = run_attempt(race, i, std::move(attempts[i]));
      race->tasks.push_back(loop.create_task(std::move(coro)));
      if (i + 1 == attempts.size()) break;
      TimerHandle timer;
      CancelTimer cancel_timer{timer};
      if (delay) {
        Future<void> wake = race->wake;
        auto fire = [wake] {
          if (!wake.done()) wake.set_result();
        };
        timer = loop.call_later(*delay, fire);
      }
      co_await race->wake;
      if (race->winner_index) break;
    }
  } catch (const CancelledError&) {
    cancelled = std::current_exception();
  }
  // The winner cancelled the others already; a cancelled race cancels every attempt. Either
  // way, wait until every started attempt is finished, so that their sockets are closed.
  if (cancelled) {
    for (const Task<void>& t : race->tasks)
      t.cancel();
  }
  for (;;) {
    std::vector<Task<void>> pending;
    for (const Task<void>& t : race->tasks) {
      if (!t.done()) pending.push_back(t);
    }
    if (pending.empty()) break;
    try {
      co_await asyncuv::wait(std::move(pending));
    } catch (const CancelledError&) {
      if (!cancelled) cancelled = std::current_exception();
      for (const Task<void>& t : race->tasks)
        t.cancel();
    }
  }
  for (const Task<void>& t : race->tasks) {
    if (!t.cancelled()) {
      if (std::exception_ptr e = t.exception()) std::rethrow_exception(e);  // fatal only
    }
  }
  if (cancelled) std::rethrow_exception(cancelled);
  StaggeredOutcome outcome;
  outcome.winner = std::move(race->winner);
  outcome.winner_index = race->winner_index;
  outcome.exceptions = std::move(race->exceptions);
  co_return std::move(outcome);
}

std::vector<AddrInfo> interleave_addrinfos(std::vector<AddrInfo> infos,
                                           int first_address_family_count) {
  // Group by family, in order of first appearance.
  std::vector<std::vector<AddrInfo>> groups;
  std::vector<int> families;
  for (AddrInfo& info : infos) {
    auto it = std::find(families.begin(), families.end(), info.family);
    std::size_t g = static_cast<std::size_t>(it - families.begin());
    if (it == families.end()) {
      families.push_back(info.family);
      groups.emplace_back();
    }
    groups[g].push_back(std::move(info));
  }
  std::vector<AddrInfo> out;
  out.reserve(infos.size());
  std::vector<std::size_t> next(groups.size(), 0);
  if (first_address_family_count > 1 && !groups.empty()) {
    std::size_t lead =
        std::min(static_cast<std::size_t>(first_address_family_count - 1), groups[0].size());
    for (; next[0] < lead; ++next[0])
      out.push_back(std::move(groups[0][next[0]]));
  }
  // Then one of each family in turn (zip_longest, skipping the exhausted ones).
  for (bool any = true; any;) {
    any = false;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      if (next[g] < groups[g].size()) {
        out.push_back(std::move(groups[g][next[g]++]));
        any = true;
      }
    }
  }
  return out;
}

}  // namespace asyncuv::detail
