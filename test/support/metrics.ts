import { expect } from 'vitest';

import type { TestServer } from './server.js';

export interface Scrape {
  text: string;
  /** The sum of a metric's samples whose labels include all of `labels`. */
  value(name: string, labels?: Record<string, string>): number;
}

/** One scrape of a server's /metrics, in Prometheus' text format. */
export async function scrapeMetrics(s: TestServer): Promise<Scrape> {
  const res = await fetch(`${s.app.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return {
    text,
    value(name, labels = {}) {
      let sum = 0;
      for (const line of text.split('\n')) {
        const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const have = Object.fromEntries(
          [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]),
        );
        if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
      }
      return sum;
    },
  };
}
