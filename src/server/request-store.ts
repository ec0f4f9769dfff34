import { AsyncLocalStorage } from 'node:async_hooks';

import type { RequestMeta } from '../shared/scope.js';

/** The request being served, for code with no context argument (error formatting, logs). */
export const requestStore = new AsyncLocalStorage<RequestMeta>();
export const currentRequest = (): RequestMeta | undefined => requestStore.getStore();
