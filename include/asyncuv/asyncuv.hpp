// The umbrella header: everything asyncuv offers.
#pragma once

#include "asyncuv/event_loop.hpp"
#include "asyncuv/events.hpp"
#include "asyncuv/exception_context.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/handle.hpp"
#include "asyncuv/log.hpp"
#include "asyncuv/tasks.hpp"
#include "asyncuv/threads.hpp"
