// asyncio's "Watch a file descriptor for read events" example, in C++: a reader registered
// with add_reader on one end of a socket pair gets the bytes written to the other end.
#include <asyncuv/asyncuv.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

int main() {
  // A pair of connected sockets: what is sent on wsock arrives on rsock.
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
    std::perror("socketpair");
    return 1;
  }
  const int rsock = fds[0];
  const int wsock = fds[1];

  auto loop = asyncuv::new_event_loop();

  auto reader = [&] {
    char data[100];
    ssize_t n = ::recv(rsock, data, sizeof data, 0);
    std::cout << "Received: " << std::string(data, n > 0 ? static_cast<std::size_t>(n) : 0)
              << std::endl;

    // Done: stop watching the socket, then stop the loop.
    loop->remove_reader(rsock);
    loop->stop();
  };

  // Register the socket for read events.
  loop->add_reader(rsock, reader);

  // Simulate data arriving from the network.
  loop->call_soon([&] { (void)::send(wsock, "abc", 3, 0); });

  // Run until the reader stops the loop; then close the sockets and the loop.
  loop->run_forever();
  ::close(rsock);
  ::close(wsock);
  loop->close();
}
