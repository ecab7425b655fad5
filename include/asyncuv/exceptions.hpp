// Exception types mirroring Python's and asyncio's, so that code ported from asyncio
// catches the same things. Every type derives from std::exception.
#pragma once

#include <stdexcept>
#include <string>

namespace asyncuv {

/// Root of every asyncuv exception (Python's BaseException).
class BaseException : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Mixin marking an exception type as fatal (Python's SystemExit / KeyboardInterrupt family).
/// A fatal exception thrown by a callback is not passed to the exception handler: it
/// propagates out of run_forever() / run_until_complete(), leaving the loop open and the rest
/// of the batch queued. std::bad_alloc is treated as fatal too. Derive your own types from it
/// with multiple inheritance: `struct Abort : std::runtime_error, asyncuv::FatalError {...}`.
class FatalError {
 public:
  virtual ~FatalError() = default;
};

/// Python's SystemExit: fatal.
class SystemExit : public BaseException, public FatalError {
 public:
  explicit SystemExit(int code = 0) : BaseException("SystemExit"), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

/// Python's KeyboardInterrupt: fatal.
class KeyboardInterrupt : public BaseException, public FatalError {
 public:
  KeyboardInterrupt() : BaseException("KeyboardInterrupt") {}
};

/// Python's Exception: the base of everything a program is expected to handle.
class Exception : public BaseException {
 public:
  using BaseException::BaseException;
};

/// API misuse in the wrong state (e.g. "Event loop is closed").
class RuntimeError : public Exception {
 public:
  using Exception::Exception;
};

/// A bad argument value.
class ValueError : public Exception {
 public:
  using Exception::Exception;
};

/// A bad argument type or a wrong kind of object (Python's TypeError).
class TypeError : public Exception {
 public:
  using Exception::Exception;
};

/// Python's LookupError: what ContextVar::get() throws for a variable with no value and no
/// default (the message is the variable's repr, as str(LookupError(var))).
class LookupError : public Exception {
 public:
  using Exception::Exception;
};

/// asyncio.InvalidStateError: a Future or Task is in the wrong state for the operation.
class InvalidStateError : public Exception {
 public:
  using Exception::Exception;
};

/// asyncio.CancelledError. Like Python (3.8+), not an Exception: derives from BaseException.
class CancelledError : public BaseException {
 public:
  CancelledError() : BaseException("") {}
  explicit CancelledError(const std::string& msg) : BaseException(msg) {}
};

/// asyncio.SendfileNotAvailableError (a RuntimeError in asyncio).
class SendfileNotAvailableError : public RuntimeError {
 public:
  using RuntimeError::RuntimeError;
};

/// Python's OSError: carries the errno (positive, POSIX numbering) and the OS message.
/// what() reads "[Errno N] message" like Python's str(OSError).
class OSError : public Exception {
 public:
  /// An OSError with an errno and its message (strerror-like).
  OSError(int errnum, const std::string& strerror);
  /// An OSError that carries only a message (errno 0), e.g. "Multiple exceptions: ...".
  explicit OSError(const std::string& message);

  /// The POSIX errno (0 when the error carries only a message).
  int errnum() const noexcept { return errno_; }
  /// The message without the "[Errno N]" prefix.
  const std::string& strerror() const noexcept { return strerror_; }

 private:
  int errno_;
  std::string strerror_;
};

#define ASYNCUV_OSERROR_SUBCLASS(Name, Base) \
  class Name : public Base {                 \
   public:                                   \
    using Base::Base;                        \
  };

ASYNCUV_OSERROR_SUBCLASS(BlockingIOError, OSError)
ASYNCUV_OSERROR_SUBCLASS(ChildProcessError, OSError)
ASYNCUV_OSERROR_SUBCLASS(ConnectionError, OSError)
ASYNCUV_OSERROR_SUBCLASS(BrokenPipeError, ConnectionError)
ASYNCUV_OSERROR_SUBCLASS(ConnectionAbortedError, ConnectionError)
ASYNCUV_OSERROR_SUBCLASS(ConnectionRefusedError, ConnectionError)
ASYNCUV_OSERROR_SUBCLASS(ConnectionResetError, ConnectionError)
ASYNCUV_OSERROR_SUBCLASS(FileExistsError, OSError)
ASYNCUV_OSERROR_SUBCLASS(FileNotFoundError, OSError)
ASYNCUV_OSERROR_SUBCLASS(InterruptedError, OSError)
ASYNCUV_OSERROR_SUBCLASS(IsADirectoryError, OSError)
ASYNCUV_OSERROR_SUBCLASS(NotADirectoryError, OSError)
ASYNCUV_OSERROR_SUBCLASS(PermissionError, OSError)
ASYNCUV_OSERROR_SUBCLASS(ProcessLookupError, OSError)
/// Python's TimeoutError (asyncio.TimeoutError is the same class since 3.11): an OSError.
ASYNCUV_OSERROR_SUBCLASS(TimeoutError, OSError)

#undef ASYNCUV_OSERROR_SUBCLASS

/// Throws the OSError subclass Python would raise for errno `errnum` (ECONNREFUSED gives
/// ConnectionRefusedError, ENOENT FileNotFoundError, ...). `what` is prefixed to the OS message
/// when non-empty: "[Errno 111] Connect call failed ...".
[[noreturn]] void throw_os_error(int errnum, const std::string& what = {});

/// The same as throw_os_error, for a libuv error code (negative, e.g. UV_ECONNREFUSED).
[[noreturn]] void throw_uv_error(int uv_code, const std::string& what = {});

/// Builds (without throwing) the exception throw_os_error would throw.
std::exception_ptr make_os_error(int errnum, const std::string& what = {});

/// The OSError subclass for `errnum` whose message is exactly `message` (no OS text appended):
/// asyncio's own wording, such as "Connect call failed ('127.0.0.1', 8888)".
std::exception_ptr make_os_error_with_message(int errnum, const std::string& message);

/// Converts a libuv error code (negative) to a positive POSIX errno.
int uv_code_to_errno(int uv_code) noexcept;

}  // namespace asyncuv
