// RFC 8305 Happy Eyeballs machinery for create_connection: asyncio's staggered.staggered_race
// over connection attempts, and base_events._interleave_addrinfos.
//
// staggered_race semantics (asyncio 3.13, with 3.14's wait for the losers):
//  - Attempt 1 starts at once (as a task of its own). Attempt k+1 starts as soon as attempt k
//    failed or `delay` seconds after attempt k started, whichever comes first; without a delay,
//    only when attempt k failed.
//  - The first attempt to succeed wins: every other attempt is cancelled (its socket closed)
//    and no further attempt starts. An attempt that succeeds after another one won closes its
//    socket.
//  - The race returns once every started attempt has finished, so no socket but the winner's
//    is open afterwards. Cancelling the race cancels every attempt, waits for them, and
//    rethrows the CancelledError.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <vector>

#include "asyncuv/dns.hpp"
#include "asyncuv/durations.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/socket.hpp"
#include "asyncuv/tasks.hpp"

namespace asyncuv::detail {

/// One connection attempt: called when the race starts it; returns the coroutine that connects.
using SocketAttempt = std::function<Task<Socket>()>;

/// What staggered_race() returns: asyncio's (winner_result, winner_index, exceptions).
struct StaggeredOutcome {
  /// The winning attempt's socket; unset if every attempt failed.
  std::optional<Socket> winner;
  /// Its index in the attempts.
  std::optional<std::size_t> winner_index;
  /// One entry per started attempt, in order: the exception it failed with (CancelledError for
  /// a loser cancelled after the win), null for the winner.
  std::vector<std::exception_ptr> exceptions;
};

/// Coroutine: runs `attempts` with staggered start times and takes the first to succeed (see
/// the file comment). `delay` unset: one after another.
Task<StaggeredOutcome> staggered_race(EventLoop& loop, std::vector<SocketAttempt> attempts,
                                      std::optional<Seconds> delay);

/// asyncio _interleave_addrinfos: groups `infos` by family (in order of first appearance) and
/// interleaves the groups, one address of each in turn; with first_address_family_count > 1,
/// the first (count - 1) addresses of the first family come first. (v6a, v6b, v4a, v4b) with
/// 1 gives (v6a, v4a, v6b, v4b); with 2, (v6a, v6b, v4a, v4b).
std::vector<AddrInfo> interleave_addrinfos(std::vector<AddrInfo> infos,
                                           int first_address_family_count = 1);

}  // namespace asyncuv::detail
