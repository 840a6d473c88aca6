// bench/idle-conns.mjs PORT COUNT HOLD_SECONDS - open COUNT keep-alive connections to
// 127.0.0.1:PORT, send one "GET /healthz" on each and read its response, then keep them all
// idle for HOLD_SECONDS. Prints "ready N" on stdout once every connection is idle, then waits.
import net from 'node:net';

const [port, count, hold] = process.argv.slice(2).map(Number);
const socks = [];
let ready = 0, failed = 0, inflight = 0, next = 0;
const REQ = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';

function open() {
    while (inflight < 500 && next < count) {
        next++;
        inflight++;
        const s = net.connect({ port, host: '127.0.0.1' });
        let buf = '';
        s.setNoDelay(true);
        s.on('connect', () => s.write(REQ));
        s.on('data', (d) => {
            buf += d.toString();
            const end = buf.indexOf('\r\n\r\n');
            if (end < 0) return;
            const m = buf.match(/Content-Length: (\d+)/i);
            if (m && buf.length < end + 4 + Number(m[1])) return;
            if (!buf.startsWith('HTTP/1.1 200')) failed++;
            buf = '';
            s.removeAllListeners('data');
            s.on('data', () => {});
            ready++;
            inflight--;
            if (ready + failed === count) done();
            else open();
        });
        s.on('error', () => {
            failed++;
            inflight--;
            if (ready + failed === count) done();
            else open();
        });
        socks.push(s);
    }
}

function done() {
    console.log(`ready ${ready} failed ${failed}`);
    setTimeout(() => {
        for (const s of socks) s.destroy();
        process.exit(0);
    }, hold * 1000);
}
open();
