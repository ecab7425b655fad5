// The umbrella header: everything asyncuv offers.
#pragma once

#include "asyncuv/event_loop.hpp"
#include "asyncuv/events.hpp"
#include "asyncuv/exception_context.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/handle.hpp"
#include "asyncuv/helpers.hpp"
#include "asyncuv/locks.hpp"
#include "asyncuv/log.hpp"
#include "asyncuv/queues.hpp"
#include "asyncuv/taskgroups.hpp"
#include "asyncuv/tasks.hpp"
#include "asyncuv/threads.hpp"
#include "asyncuv/timeouts.hpp"
