import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(__dirname, '..');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|tsx)$/.test(entry.name) && !/\.test\.tsx?$/.test(entry.name) ? [path] : [];
  });
}

// Runtime packages that are served from disk as they are, never imported by the app: the API
// reference page at /api/docs is Swagger UI's own bundle, read by the gateway from node_modules.
const SERVED_AS_FILES = ['swagger-ui-dist'];

describe('package.json', () => {
  it('lists only runtime dependencies that the app imports or serves as files', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const sources = sourceFiles(join(root, 'src')).map((path) => readFileSync(path, 'utf8'));
    const imported = (name: string) => sources.some((text) => text.includes(`from '${name}`) || text.includes(`import('${name}`));
    expect(Object.keys(pkg.dependencies).filter((name) => !imported(name) && !SERVED_AS_FILES.includes(name))).toEqual([]);
  });
});
