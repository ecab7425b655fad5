// The echo server on Node.js's net module (bench/echo/run.sh): every chunk is written straight
// back, with Nagle off.
//
//   node node_server.js [--host 127.0.0.1] [--port 8888]
'use strict';
const net = require('net');

let host = '127.0.0.1';
let port = 8888;
const args = process.argv.slice(2);
for (let i = 0; i + 1 < args.length; i += 2) {
  if (args[i] === '--host') {
    host = args[i + 1];
  } else if (args[i] === '--port') {
    port = Number(args[i + 1]);
  } else {
    console.error('usage: node node_server.js [--host H] [--port P]');
    process.exit(2);
  }
}

const server = net.createServer({noDelay: true}, (socket) => {
  socket.setNoDelay(true);
  socket.on('data', (data) => socket.write(data));
  socket.on('error', () => socket.destroy());
});
server.listen({host, port, backlog: 1024});
