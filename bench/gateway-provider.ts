/**
 * The bench's local OpenAI-compatible provider, a child process (its CPU is not
 * Steward's): answers every chat completion at once with a fixed reply and its usage,
 * and counts what it served (asked over IPC), so the bench can check that every answered
 * call is on Steward's record.
 */
import { createServer } from 'node:http';

let served = 0;
const reply = (model: string) =>
  JSON.stringify({
    id: `chatcmpl-bench-${served}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: 'The function looks correct; add a test for negative numbers.',
          refusal: null,
        },
        finish_reason: 'stop',
        logprobs: null,
      },
    ],
    usage: { prompt_tokens: 24, completion_tokens: 12, total_tokens: 36 },
  });

const server = createServer((req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (c: Buffer) => parts.push(c));
  req.on('end', () => {
    if (req.method === 'GET' && req.url?.startsWith('/v1/models')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end('{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":0,"owned_by":"bench"}]}');
    }
    let body: { model?: string; stream?: boolean } = {};
    try {
      body = JSON.parse(Buffer.concat(parts).toString('utf8'));
    } catch {
      /* answered all the same */
    }
    served++;
    const model = body.model ?? 'gpt-4o-mini';
    if (body.stream) {
      const r = JSON.parse(reply(model));
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const base = { id: r.id, object: 'chat.completion.chunk', created: r.created, model };
      res.write(
        `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: r.choices[0].message.content }, finish_reason: null }] })}\n\n`,
      );
      res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
      res.write(`data: ${JSON.stringify({ ...base, choices: [], usage: r.usage })}\n\n`);
      return res.end('data: [DONE]\n\n');
    }
    const text = reply(model);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  process.send!({ url: `http://127.0.0.1:${port}` });
});
process.on('message', (m) => {
  if (m === 'served') process.send!({ served });
});
process.once('disconnect', () => server.close(() => process.exit(0)));
