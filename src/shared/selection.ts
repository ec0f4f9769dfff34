import { Kind, type FieldNode, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';

/**
 * Answers per field of an operation: `info.fieldNodes` is one array per field of a
 * compiled operation (graphql-jit) or of an execution (graphql-js), and with the
 * operation's fragments it alone decides the answer. Resolvers of list items ask the
 * same question once per row (hundreds of times per request): answered once.
 */
const answers = new WeakMap<readonly FieldNode[], Map<string, ReadonlySet<string>>>();
const given = new WeakSet<object>();

/** Whether `fields` is an answer of selectedFields: the same object for the same question, never changed. */
export const isSelection = (fields: Iterable<string>): fields is ReadonlySet<string> => given.has(fields);

/**
 * The names of the fields selected under the current field, following fragments,
 * optionally below a path (`['edges', 'node']` for a connection's nodes). Used to
 * select only the columns an operation asks for. Shared between calls: copy it to add to it.
 */
export function selectedFields(info: GraphQLResolveInfo, path: readonly string[] = []): ReadonlySet<string> {
  let byPath = answers.get(info.fieldNodes);
  if (!byPath) answers.set(info.fieldNodes, (byPath = new Map()));
  const key = path.join('.');
  let names = byPath.get(key);
  if (!names) {
    byPath.set(key, (names = collectNames(info, path)));
    given.add(names);
  }
  return names;
}

function collectNames(info: GraphQLResolveInfo, path: readonly string[]): Set<string> {
  let sets: SelectionSetNode[] = info.fieldNodes.flatMap((n) => (n.selectionSet ? [n.selectionSet] : []));
  for (const step of path) {
    sets = sets.flatMap((s) =>
      collect(s, info)
        .filter((f) => f.name.value === step && f.selectionSet)
        .map((f) => f.selectionSet!),
    );
  }
  const names = new Set<string>();
  for (const s of sets) for (const f of collect(s, info)) names.add(f.name.value);
  return names;
}

function collect(set: SelectionSetNode, info: GraphQLResolveInfo, out: FieldNode[] = []): FieldNode[] {
  for (const sel of set.selections) {
    if (sel.kind === Kind.FIELD) out.push(sel);
    else if (sel.kind === Kind.INLINE_FRAGMENT) collect(sel.selectionSet, info, out);
    else {
      const frag = info.fragments[sel.name.value];
      if (frag) collect(frag.selectionSet, info, out);
    }
  }
  return out;
}
