import { connect } from 'node:net';

/**
 * Sends raw bytes to a loopback server; resolves with what came back and whether the server
 * closed the connection within 5 s (generous: a refusal closes at once, a server that reads on
 * waits for its request timeout).
 */
export function raw(url: string, text: string): Promise<{ answer: string; closed: boolean }> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    const timer = setTimeout(() => (socket.destroy(), resolve({ answer, closed: false })), 5_000);
    socket.on('data', (d) => (answer += d));
    socket.on('close', () => (clearTimeout(timer), resolve({ answer, closed: true })));
    socket.on('error', reject);
    socket.write(text);
  });
}
