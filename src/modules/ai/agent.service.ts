import sql from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import { NotFoundError, requireUuid } from '../../shared/errors.js';
import { and, defineComputed, readModel, selectList } from '../../shared/read-model.js';
import { inTransaction, type Scope, type Viewer } from '../../shared/scope.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import type { AuditService } from '../audit/index.js';
import { OPEN_STATUSES } from '../work/task.entity.js';
import { AgentType } from './agent-type.js';
import { Agent } from './agent.entity.js';

/**
 * An agent's `current_load` (its active task count), computed by PostgreSQL when selected
 * instead of stored: the open tasks (PENDING, ASSIGNED, IN_PROGRESS) that name the agent
 * in tasks.assigned_agents. A stored counter would drift with every task change that
 * forgot it; this cannot. `@>` is the operator a GIN index on assigned_agents serves.
 */
defineComputed(Agent, {
  currentLoad: `(SELECT count(*)::int FROM tasks lt
                  WHERE lt.assigned_agents @> ARRAY[t.type::text] AND lt.deleted_at IS NULL
                    AND lt.status IN (${OPEN_STATUSES.map((s) => `'${s}'`).join(', ')}))`,
});

/** The agents in their canonical order (the six development agents, then the assistant). */
const ORDER = Object.values(AgentType);

const snapshot = (a: Agent) => ({
  name: a.name,
  description: a.description ?? null,
  systemPrompt: a.systemPrompt,
  defaultModel: a.defaultModel,
  active: a.active,
});

export interface AgentDeps {
  db: SqlClient;
  audit: AuditService;
}

/** The seeded agents: everyone signed in reads them; admins edit their names, prompts, models and whether they take work. */
export class AgentService {
  constructor(private readonly deps: AgentDeps) {}

  /** Active agents (admins: inactive ones too, with `includeInactive`), in canonical order. */
  async list(viewer: Viewer, fields: Iterable<string>, includeInactive: boolean): Promise<Record<string, unknown>[]> {
    const all = includeInactive && isHumanAdmin(viewer);
    const rows = await this.deps.db.query<Record<string, unknown>>(
      sql`SELECT ${selectList(readModel(Agent), fields, 't', ['type'])} FROM agents t WHERE ${and([all ? null : sql`t.active`])}`,
    );
    return rows.sort((a, b) => ORDER.indexOf(a.type as AgentType) - ORDER.indexOf(b.type as AgentType));
  }

  /** Admins only (the resolver says so). Every field is optional; what is given replaces what was there. */
  async update(
    scope: Scope,
    input: {
      id: string;
      name?: string | null;
      description?: string | null;
      systemPrompt?: string | null;
      defaultModel?: string | null;
      active?: boolean | null;
    },
  ): Promise<Agent> {
    const id = requireUuid(input.id);
    return inTransaction(scope, async (tx) => {
      const a = await tx.em.findOne(Agent, id);
      if (!a) throw new NotFoundError('Agent', id);
      const before = snapshot(a);
      if (input.name) a.name = input.name.trim();
      if (input.description !== undefined) a.description = input.description?.trim() || null;
      if (input.systemPrompt) a.systemPrompt = input.systemPrompt.trim();
      if (input.defaultModel) a.defaultModel = input.defaultModel.trim();
      if (input.active != null) a.active = input.active;
      this.deps.audit.record(tx, {
        action: 'agent.update',
        entityType: 'Agent',
        entityId: a.id,
        before,
        after: snapshot(a),
      });
      return a;
    });
  }
}
