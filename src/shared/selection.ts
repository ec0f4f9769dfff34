import { Kind, type FieldNode, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';

/**
 * The names of the fields selected under the current field, following fragments,
 * optionally below a path (`['edges', 'node']` for a connection's nodes). Used to
 * select only the columns an operation asks for.
 */
export function selectedFields(info: GraphQLResolveInfo, path: readonly string[] = []): Set<string> {
  let sets: SelectionSetNode[] = info.fieldNodes.flatMap((n) => (n.selectionSet ? [n.selectionSet] : []));
  for (const step of path) {
    sets = sets.flatMap((s) => collect(s, info).filter((f) => f.name.value === step && f.selectionSet).map((f) => f.selectionSet!));
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
