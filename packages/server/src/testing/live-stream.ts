/**
 * A server-sent events client for tests: opens a live stream over HTTPS with a bearer token and
 * collects its events as they arrive; `ended` resolves when the server closes the stream.
 */
import https from 'node:https';

export interface LiveStream {
  status: number;
  /** The error body when the stream was refused. */
  body: any;
  events: { event: string; data: any }[];
  /** Resolves (with the time, ms) when the server ends the stream. */
  ended: Promise<number>;
  close(): void;
}

export function openLiveStream(port: number, ca: string, path: string, token: string): Promise<LiveStream> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: 'localhost',
        port,
        path,
        method: 'GET',
        ca,
        agent: false,
        headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
      },
      (res) => {
        const events: { event: string; data: any }[] = [];
        let buffer = '';
        let text = '';
        let endedAt: (t: number) => void = () => undefined;
        const ended = new Promise<number>((r) => (endedAt = r));
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (res.statusCode !== 200) return void (text += chunk);
          buffer += chunk;
          for (let cut = buffer.indexOf('\n\n'); cut >= 0; cut = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let event = 'message';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            if (data) events.push({ event, data: JSON.parse(data) });
          }
        });
        res.on('close', () => endedAt(Date.now()));
        res.on('end', () => endedAt(Date.now()));
        const done = () =>
          resolve({
            status: res.statusCode ?? 0,
            body: text ? JSON.parse(text) : null,
            events,
            ended,
            close: () => req.destroy(),
          });
        if (res.statusCode === 200) done();
        else res.on('end', done);
      },
    );
    req.on('error', reject);
    req.end();
  });
}
