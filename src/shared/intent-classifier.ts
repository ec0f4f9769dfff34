import { BadInputError } from './errors.js';

/**
 * The built-in intent classifier of prompt governance: deterministic and
 * explainable. Each intent of the vocabulary has cue words; a prompt's words (lower-cased,
 * split on non-letters, light English stemming by suffix stripping) are matched against
 * them and the intent with the most hits wins.
 *
 *   confidence = best / (best + runnerUp + 1), rounded to 3 places, in [0, 1)
 *
 * so one clear cue gives 0.5, three unopposed cues 0.75, and a tie is never confident.
 * No cue at all: GENERAL_CHAT with confidence 0.2. The same prompt always gets the same
 * answer, on every instance, with no model call.
 */
export const INTENT_VOCABULARY: Record<string, readonly string[]> = {
  coding: [
    'code',
    'implement',
    'function',
    'class',
    'refactor',
    'typescript',
    'javascript',
    'python',
    'api',
    'endpoint',
    'compile',
    'build',
    'react',
    'component',
    'write',
    'program',
    'sql',
    'query',
    'method',
  ],
  debugging: [
    'bug',
    'error',
    'exception',
    'crash',
    'fix',
    'debug',
    'stack',
    'trace',
    'fail',
    'broken',
    'issue',
    'wrong',
    'null',
    'undefined',
  ],
  testing: ['test', 'unit', 'integration', 'coverage', 'assert', 'mock', 'vitest', 'jest', 'pytest', 'spec', 'e2e'],
  documentation: [
    'document',
    'doc',
    'readme',
    'comment',
    'explain',
    'guide',
    'tutorial',
    'describe',
    'summary',
    'summarize',
    'changelog',
  ],
  design: ['design', 'ui', 'ux', 'layout', 'wireframe', 'mockup', 'color', 'font', 'style', 'css', 'figma', 'copy'],
  data_analysis: [
    'data',
    'analysis',
    'analyze',
    'chart',
    'metric',
    'statistic',
    'dataset',
    'csv',
    'trend',
    'dashboard',
    'aggregate',
    'average',
  ],
  devops: [
    'deploy',
    'docker',
    'kubernetes',
    'pipeline',
    'ci',
    'cd',
    'server',
    'infrastructure',
    'terraform',
    'container',
    'monitor',
    'release',
  ],
  security: [
    'security',
    'vulnerability',
    'auth',
    'password',
    'encrypt',
    'token',
    'permission',
    'attack',
    'xss',
    'injection',
    'secret',
  ],
  research: ['research', 'compare', 'paper', 'study', 'option', 'alternative', 'evaluate', 'benchmark', 'pros', 'cons'],
  planning: ['plan', 'roadmap', 'estimate', 'schedule', 'milestone', 'priority', 'sprint', 'task', 'deadline', 'scope'],
  creative_writing: ['poem', 'story', 'song', 'novel', 'fiction', 'lyric', 'joke', 'poetry'],
  personal: ['recipe', 'vacation', 'holiday', 'weather', 'movie', 'game', 'sport', 'dating', 'horoscope', 'shopping'],
};

export const GENERAL_CHAT = 'general_chat';

export interface IntentResult {
  intent: string;
  confidence: number;
}

const stem = (w: string) => w.replace(/(ations?|ing|ed|es|s|ly|ment)$/, '') || w;
const CUES = new Map<string, string[]>();
for (const [intent, words] of Object.entries(INTENT_VOCABULARY)) {
  for (const w of words) {
    const k = stem(w);
    CUES.set(k, [...(CUES.get(k) ?? []), intent]);
  }
}

export function classifyIntent(prompt: string): IntentResult {
  const hits = new Map<string, number>();
  for (const raw of prompt.toLowerCase().split(/[^a-z0-9]+/)) {
    if (!raw) continue;
    for (const intent of CUES.get(stem(raw)) ?? []) hits.set(intent, (hits.get(intent) ?? 0) + 1);
  }
  // Ties resolve by vocabulary order, so the answer never depends on Map iteration luck.
  const ranked = Object.keys(INTENT_VOCABULARY)
    .map((intent) => ({ intent, n: hits.get(intent) ?? 0 }))
    .sort((a, b) => b.n - a.n);
  const [best, second] = ranked;
  if (!best || best.n === 0) return { intent: GENERAL_CHAT, confidence: 0.2 };
  return { intent: best.intent, confidence: Math.round((best.n / (best.n + (second?.n ?? 0) + 1)) * 1000) / 1000 };
}

/**
 * The deviation formula (deviation score, 0–100). With a task that lists
 * allowed intents:
 *   - an intent outside them adds 10 × confidence (a confident off-task prompt: up to +10);
 *   - an allowed intent gives 1 point back (never below 0).
 * Without a task, or a task that allows anything, the score does not move.
 */
export function deviationDelta(allowed: readonly string[], result: IntentResult): number {
  if (!allowed.length) return 0;
  if (allowed.includes(result.intent)) return -1;
  return Math.round(10 * result.confidence * 100) / 100;
}

/** The intents a task's `allowedIntents` may name: the classifier's vocabulary. */
export const INTENTS: readonly string[] = [...Object.keys(INTENT_VOCABULARY), GENERAL_CHAT];

/** BAD_USER_INPUT naming the intents the classifier does not know. */
export function validateIntents(intents: readonly string[] | null | undefined, field = 'allowedIntents'): void {
  const unknown = (intents ?? []).filter((i) => !INTENTS.includes(i));
  if (unknown.length)
    throw BadInputError.field(field, `unknown intent ${unknown.join(', ')} (known: ${INTENTS.join(', ')})`);
}
