import type { EntityManager } from '@mikro-orm/postgresql';

import { newId } from '../../shared/ids.js';

/** The four built-in templates. Inserted when missing; an admin's later edits are kept. */
export const PROJECT_TEMPLATES = [
  {
    key: 'react-typescript',
    name: 'React + TypeScript',
    description: 'A single-page React application with TypeScript and Vite.',
    defaults: { language: 'typescript', framework: 'react', buildTool: 'vite', port: 5173 },
  },
  {
    key: 'nextjs-typescript',
    name: 'Next.js + TypeScript',
    description: 'A Next.js application with the app router and TypeScript.',
    defaults: { language: 'typescript', framework: 'nextjs', port: 3000 },
  },
  {
    key: 'python-fastapi',
    name: 'Python FastAPI',
    description: 'A FastAPI service with uvicorn.',
    defaults: { language: 'python', framework: 'fastapi', port: 8000 },
  },
  {
    key: 'fullstack-react-fastapi',
    name: 'Full stack: React + FastAPI',
    description: 'A React front end and a FastAPI back end.',
    defaults: { language: ['typescript', 'python'], framework: ['react', 'fastapi'], ports: { web: 5173, api: 8000 } },
  },
];

export async function seedProjectTemplates(em: EntityManager): Promise<void> {
  for (const t of PROJECT_TEMPLATES) {
    await em.execute(
      `INSERT INTO project_templates (id, key, name, description, defaults) VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
      [newId(), t.key, t.name, t.description, JSON.stringify(t.defaults)],
    );
  }
}
