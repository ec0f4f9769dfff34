import { createParameterDecorator } from 'type-graphql';

import type { Viewer as ViewerShape } from '../shared/scope.js';
import { requireViewer } from '../shared/viewer.js';
import type { Context } from './context.js';

/** Who is calling (the same shape as src/shared/scope.ts's Viewer, so `@Viewer() viewer: Viewer` reads as one word). */
export interface Viewer extends ViewerShape {}

/**
 * The signed-in viewer of an operation, as a resolver parameter: `@Viewer() viewer: Viewer`.
 * It reads `ctx.viewer` (which the subscription fan-out counts as depending on who asks),
 * and throws UNAUTHENTICATED without one, like `@Allow` would have.
 */
export function Viewer(): ReturnType<typeof createParameterDecorator> {
  return createParameterDecorator<Context>(({ context }) => requireViewer(context.viewer));
}
