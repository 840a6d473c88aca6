// loopback.cjs - preloaded (node --require) into test servers that listen on every interface
// (server-everything): every listen() binds 127.0.0.1 instead.
'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const a0 = args[0];
  if (typeof a0 === 'number' || (typeof a0 === 'string' && /^\d+$/.test(a0))) {
    if (typeof args[1] === 'string') args[1] = '127.0.0.1';
    else args.splice(1, 0, '127.0.0.1');
  } else if (a0 && typeof a0 === 'object' && !Array.isArray(a0)) {
    args[0] = { ...a0, host: '127.0.0.1' };
  }
  return listen.apply(this, args);
};
